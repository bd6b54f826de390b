"""The ablation behind the improved recipe: add its ingredients one at a time, measure validation accuracy.

    python -m benchmarks.ablation --out /work/runs/ablation --epochs 30 [--steps bn_adamw_cosine,flip,flip_garments]

Every step trains on the first 48,000 training images and reports the accuracy on the last 12,000 (the
validation split): the test set is never touched here. Each step is a registered recipe
(fashionnet/core/recipes.py) with some of its settings changed; ``flip`` is the improved recipe itself (whose final
model then trains on every training image). Results go to OUT/ablation.json, one row per step.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np

from fashionnet.config import TrainConfig
from fashionnet.core import recipes
from fashionnet.core.networks import flip_averaged
from fashionnet.core.recipes import AUGMENTED, MIRROR_SAFE_CLASSES, Recipe, get_recipe
from fashionnet.training.augment import Augmentation

VALIDATION_SPLIT = recipes.ASSIGNMENT.validation_split  # every step is measured on the same validation images


class Step(NamedTuple):
    base: str  # the registered recipe it varies: config.json's "recipe"
    recipe: Recipe  # what it trains (its batch size included); config.json's recipe section


def _vary(base: str, **changes) -> Step:
    return Step(base, get_recipe(base).replace(**changes))


# From the assignment to the improved recipe and beyond; the improved recipe's variations train without its
# flip-averaged inference. Every row's validation accuracy is the plain network's (history.json); the
# flip-averaged one is measured besides it.
STEPS = {
    "assignment": _vary("assignment"),
    "bn": _vary("assignment", name="bn", batchnorm=True, dense_units=255),
    "bn_adamw_cosine": _vary("improved", name="bn_adamw_cosine", augmentation=Augmentation(), test_time_flip=False),
    "flip": _vary("improved", name="flip"),  # the improved recipe (flips of every class)
    "flip_garments": _vary(
        "improved",
        name="flip_garments",
        augmentation=Augmentation(flip=True, flip_classes=MIRROR_SAFE_CLASSES),
        test_time_flip=False,
    ),
    "flip_shift": _vary(
        "improved", name="flip_shift", augmentation=Augmentation(flip=True, shift=2), test_time_flip=False
    ),
    "erase": Step("improved", AUGMENTED.replace(name="erase", label_smoothing=0.0)),
    "augmented": Step("improved", AUGMENTED),  # + random erasing + label smoothing (docs/accuracy.md)
}


def accuracy(model, x, y) -> float:
    p = model.predict(x, batch_size=500, verbose=0)
    return float(np.mean(np.argmax(p, axis=1) == np.argmax(y, axis=1)))


def main(argv=None) -> int:
    from fashionnet.runs import read_json, write_json
    from fashionnet.training.trainer import load_training_arrays, train

    p = argparse.ArgumentParser(prog="python -m benchmarks.ablation")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--steps", default=",".join(STEPS), help="comma-separated, from: " + ", ".join(STEPS))
    p.add_argument("--data-dir", type=Path, default=None)
    p.add_argument("--limit", type=int, default=None, help="first N training images only (a quick check)")
    args = p.parse_args(argv)

    from fashionnet.core.data import load_data

    dataset = load_data(args.data_dir)
    # one validation set for every step's flip-averaged measurement
    split_config = TrainConfig(validation_split=VALIDATION_SPLIT, limit=args.limit)
    validation = recipes.split(*load_training_arrays(split_config, data=dataset), VALIDATION_SPLIT)[1]
    summary_path = args.out / "ablation.json"
    rows = read_json(summary_path) if summary_path.exists() else {}
    for name in args.steps.split(","):
        base, recipe = STEPS[name]
        config = TrainConfig.for_recipe(
            base,
            epochs=args.epochs,
            batch_size=recipe.batch_size,
            validation_split=VALIDATION_SPLIT,
            seed=args.seed,
            limit=args.limit,
        )
        started = time.perf_counter()
        result = train(config, args.out / name, data=dataset, recipe=recipe, force=True)
        h = result.history
        rows[name] = {
            "epochs": args.epochs,
            "seed": args.seed,
            "batch_size": recipe.batch_size,
            "final_val_accuracy": h["val_accuracy"][-1],
            "best_val_accuracy": max(h["val_accuracy"]),
            "final_val_loss": h["val_loss"][-1],
            "final_train_accuracy": h["accuracy"][-1],
            "seconds": time.perf_counter() - started,
            "params": result.model.count_params(),
            "recipe": recipe.to_dict(),
        }
        # a recipe with test_time_flip has saved (and returned) the flip-averaged model already
        averaged = result.model if recipe.test_time_flip else flip_averaged(result.model)
        rows[name]["val_accuracy_flip_averaged"] = accuracy(averaged, *validation)
        write_json(summary_path, rows)
        print(f"ABLATION {name}: val_accuracy {h['val_accuracy'][-1]:.4f} ({rows[name]['seconds']:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
