"""Step time of data-parallel training (jax) in one run on one machine: plain, and --distribute on 1 device,
2 virtual devices in 1 process, and 2 processes x 1 device (gloo all-reduce over 127.0.0.1).

    python -m benchmarks.distributed_bench --out DIR [--limit 6000] [--epochs 4] [--batch-size 300] [--rounds 2]

Each configuration trains the assignment's network with the same global batch in its own process(es); the step
time is the median over epochs 2.. (the first compiles) of history.json's epoch_seconds / steps, best of
``--rounds`` interleaved rounds. The ratios are to the plain run of the same round. Writes distributed_bench.json
and distributed_bench.md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
from pathlib import Path

CONFIGURATIONS = {  # name -> (run folder, fashionnet command prefix, extra environment)
    "plain (no --distribute)": ("plain", ["train"], {}),
    "1 process, 1 device": ("1x1", ["train", "--distribute"], {}),
    "1 process, 2 virtual devices": (
        "1x2",
        ["train", "--distribute"],
        {"XLA_FLAGS": "--xla_force_host_platform_device_count=2"},
    ),
    "2 processes x 1 device": ("2x1", ["launch", "--processes", "2", "--", "train"], {}),
}


def step_ms(run: Path, n_train: int, batch: int) -> float:
    seconds = json.loads((run / "history.json").read_text())["epoch_seconds"][1:]
    return statistics.median(seconds) / math.ceil(n_train / batch) * 1e3


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.distributed_bench", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--limit", type=int, default=6000)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    from fashionnet.core.child import module_command, run_child
    from fashionnet.core.machine import cpu_info
    from fashionnet.core.recipes import ASSIGNMENT, split_sizes

    n_train = split_sizes(args.limit, ASSIGNMENT.validation_split)[0]
    # run_child adds to this process's environment: an inherited distribution or device count would skew every run
    for key in [k for k in os.environ if k.startswith("KERAS_DISTRIBUTION_") or k == "XLA_FLAGS"]:
        del os.environ[key]
    env = {"KERAS_BACKEND": "jax"}
    times: dict[str, list[float]] = {name: [] for name in CONFIGURATIONS}
    for round_ in range(args.rounds):
        for name, (folder, command, extra) in CONFIGURATIONS.items():
            run = args.out / f"round{round_ + 1}-{folder}"
            options = ["--out", str(run), "--epochs", str(args.epochs), "--limit", str(args.limit),
                       "--batch-size", str(args.batch_size), "--force"]  # fmt: skip
            done = run_child(module_command("fashionnet", *command, *options), env={**env, **extra})
            if done.returncode:
                print(done.stdout[-2000:], done.stderr[-2000:], file=sys.stderr)
                return done.returncode
            times[name].append(step_ms(run, n_train, args.batch_size))
            print(f"round {round_ + 1}: {name}: {times[name][-1]:.1f} ms/step", flush=True)
    best = {name: min(values) for name, values in times.items()}
    plain = best["plain (no --distribute)"]
    cpu = cpu_info()
    result = {"cpu": cpu, "settings": vars(args) | {"out": str(args.out)}, "ms_per_step": times, "best": best}
    lines = [
        f"Data-parallel step time, jax, {cpu['model_name']} ({cpu['logical_cpus']} logical CPUs); global batch "
        f"{args.batch_size}, {n_train} training images, epochs 2-{args.epochs}, best of {args.rounds} rounds",
        "",
        "| configuration | ms/step | images/s | vs plain |",
        "|---|---:|---:|---:|",
    ]
    for name, ms in best.items():
        lines.append(f"| {name} | {ms:.1f} | {args.batch_size / ms * 1e3:,.0f} | {plain / ms:.2f}x |")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "distributed_bench.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "distributed_bench.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
