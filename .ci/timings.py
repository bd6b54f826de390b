"""The end of a CI run: how long each stage, each tox env (and each wheel-env extra) took, and the slowest tests.

    python .ci/timings.py STAGES_FILE TOX_LOG

STAGES_FILE holds one `SECONDS NAME` line per stage of .ci/run; TOX_LOG is the test command's output. The tox envs'
times are tox's own summary lines; the tests' are pytest's --durations lines (pyproject.toml asks for the 15
slowest of each env), attributed to the env whose `commands[...]>` line came last before them.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

SLOWEST = 15
ENV_SUMMARY = re.compile(r"^\s+(\S+): (OK|FAIL|SKIP)[^(]*\(([\d.]+)=setup\[([\d.]+)\]\+cmd\[([\d.,]*)\] seconds\)")
ENV_COMMAND = re.compile(r"^(\S+): (?:commands|commands_pre)\[\d+\]> ")
DURATION = re.compile(r"^([\d.]+)s (call|setup|teardown)\s+(\S+)")
EXTRA = re.compile(r"^ok \[(.+?)\]: .*'seconds': ([\d.]+)")


def parse_tox_log(text: str) -> tuple[list[tuple], list[tuple], list[tuple]]:
    """(env, status, total, setup, commands) rows, (seconds, env, phase, test) rows, (extra, seconds) rows."""
    envs, tests, extras = [], [], []
    current = "?"
    for line in text.splitlines():
        if found := ENV_SUMMARY.match(line):
            name, status, total, setup, commands = found.groups()
            envs.append((name, status, float(total), float(setup), sum(float(c) for c in commands.split(",") if c)))
        elif found := ENV_COMMAND.match(line):
            current = found.group(1)
        elif found := DURATION.match(line):
            tests.append((float(found.group(1)), current, found.group(2), found.group(3)))
        elif found := EXTRA.match(line):
            extras.append((found.group(1), float(found.group(2))))
    return envs, sorted(tests, reverse=True)[:SLOWEST], extras


def table(header: tuple[str, ...], rows: list[tuple]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def main(stages_file: Path, tox_log: Path) -> int:
    stages = []
    if stages_file.is_file():
        for line in stages_file.read_text().splitlines():
            seconds, name = line.split(" ", 1)
            stages.append((name, int(seconds)))
    print("\n== CI time table")
    print(table(("stage", "wall s"), stages + [("total", sum(s for _, s in stages))]))
    envs, tests, extras = parse_tox_log(tox_log.read_text(errors="replace") if tox_log.is_file() else "")
    if envs:
        print()
        rows = [(n, st, f"{t:.0f}", f"{s:.0f}", f"{c:.0f}") for n, st, t, s, c in envs]
        print(table(("tox env", "status", "wall s", "setup s", "commands s"), rows))
    if extras:
        print()
        print(table(("wheel env: extra", "install + use s"), [(f"[{e}]", f"{s:.0f}") for e, s in extras]))
    if tests:
        print()
        print(f"{len(tests)} slowest tests (pytest --durations, every env):")
        print(table(("s", "env", "phase", "test"), [(f"{s:.1f}", e, p, t) for s, e, p, t in tests]))
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
