"""The README's two commands, read out of README.md so that CI runs exactly what a newcomer types.

    python .ci/readme_commands.py main     # the main job: set-up + `fashionnet reproduce ...`
    python .ci/readme_commands.py tests    # the test command: set-up + tox

They are the two ```bash blocks of the section "## The two commands", in that order, one line each.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
SECTION = "## The two commands"
NAMES = ("main", "tests")


def readme_commands(text: str) -> dict[str, str]:
    """{'main': ..., 'tests': ...}; ValueError naming what is missing when the README does not hold them."""
    start = text.find(SECTION + "\n")
    if start < 0:
        raise ValueError(f"README.md has no section {SECTION!r}")
    body = text[start + len(SECTION) :]
    body = body[: m.start()] if (m := re.search(r"^## ", body, flags=re.M)) else body
    blocks = [b.strip() for b in re.findall(r"^```bash\n(.*?)^```", body, flags=re.M | re.S)]
    if len(blocks) != 2 or any("\n" in b for b in blocks):
        raise ValueError(f"{SECTION!r} must hold exactly two one-line ```bash blocks, found {len(blocks)}: {blocks}")
    return dict(zip(NAMES, blocks, strict=True))


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in NAMES:
        print(f"usage: python .ci/readme_commands.py {'|'.join(NAMES)}", file=sys.stderr)
        return 2
    try:
        print(readme_commands(README.read_text(encoding="utf-8"))[argv[0]])
    except ValueError as exc:
        print(f"readme_commands: {README}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
