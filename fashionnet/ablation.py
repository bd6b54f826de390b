"""The ablation behind the improved recipe: add its ingredients one at a time, measure validation accuracy.

    python -m fashionnet.ablation --out /work/runs/ablation --epochs 30 [--steps bn_adamw_cosine,flip,flip_garments]

Every step trains on the first 48,000 training images and reports the accuracy on the last 12,000 (the
validation split): the test set is never touched here. Each step is a Recipe (fashionnet/recipes.py);
``flip`` is the improved recipe itself (whose final model then trains on all 60,000 images). Results go to
OUT/ablation.json, one row per step.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from fashionnet import recipes
from fashionnet.config import TrainConfig
from fashionnet.model import flip_averaged
from fashionnet.recipes import AUGMENTED, IMPROVED, MIRROR_SAFE_CLASSES, Augmentation

# The improved recipe's training without its flip-averaged inference: what the other steps change.
_TRAINING = IMPROVED.replace(test_time_flip=False)

# Steps from the assignment to the improved recipe and beyond: (recipe, batch size). Every row's validation
# accuracy is the plain network's (history.json); the flip-averaged one is measured besides it.
STEPS = {
    "assignment": (recipes.ASSIGNMENT, 300),
    "bn": (recipes.ASSIGNMENT.replace(name="bn", batchnorm=True, dense_units=255), 300),
    "bn_adamw_cosine": (_TRAINING.replace(name="bn_adamw_cosine", augmentation=Augmentation()), 128),
    "flip": (IMPROVED.replace(name="flip"), 128),  # = the improved recipe (flips of every class)
    "flip_garments": (
        _TRAINING.replace(name="flip_garments", augmentation=Augmentation(flip=True, flip_classes=MIRROR_SAFE_CLASSES)),
        128,
    ),
    "flip_shift": (_TRAINING.replace(name="flip_shift", augmentation=Augmentation(flip=True, shift=2)), 128),
    "erase": (AUGMENTED.replace(name="erase", label_smoothing=0.0), 128),
    "augmented": (AUGMENTED, 128),  # + random erasing + label smoothing 0.1 (named "improved" in the first runs)
}


def accuracy(model, x, y) -> float:
    p = model.predict(x, batch_size=500, verbose=0)
    return float(np.mean(np.argmax(p, axis=1) == np.argmax(y, axis=1)))


def flip_averaged_accuracy(network, x, y) -> float:
    """Validation accuracy of model.flip_averaged(network): the mean prediction for an image and its mirror image."""
    return accuracy(flip_averaged(network), x, y)


def main(argv=None) -> int:
    from fashionnet.runs import read_json, write_json
    from fashionnet.train import load_training_arrays, train

    p = argparse.ArgumentParser(prog="python -m fashionnet.ablation")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--steps", default=",".join(STEPS), help="comma-separated, from: " + ", ".join(STEPS))
    p.add_argument("--data-dir", type=Path, default=None)
    p.add_argument("--limit", type=int, default=None, help="first N training images only (a quick check)")
    args = p.parse_args(argv)

    from fashionnet.data import load_data

    dataset = load_data(args.data_dir)
    # Every step uses TrainConfig's split (48,000 / 12,000): one validation set for the flip-averaged measurement.
    split_config = TrainConfig(limit=args.limit)
    validation = recipes.split(*load_training_arrays(split_config, dataset=dataset), split_config.validation_split)[1]
    summary_path = args.out / "ablation.json"
    rows = read_json(summary_path) if summary_path.exists() else {}
    for name in args.steps.split(","):
        recipe, batch_size = STEPS[name]
        config = TrainConfig(
            recipe="improved" if recipe.batchnorm else "assignment",
            epochs=args.epochs,
            batch_size=batch_size,
            seed=args.seed,
            optimizer=recipe.optimizer,
            limit=args.limit,
        )
        started = time.perf_counter()
        result = train(config, args.out / name, dataset=dataset, recipe=recipe, verbose=2, force=True)
        h = result.history
        rows[name] = {
            "epochs": args.epochs,
            "seed": args.seed,
            "batch_size": batch_size,
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
