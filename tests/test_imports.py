"""No module reaches into another's private names: each concept has one owner, and what others use is public.

Checked with ast on the package, the kits and the tests: `from X import _name` and `module._name` where X or
module is fashionnet's own (the package, the kits, a test helper). A failure names the file, line and name.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FIRST_PARTY = ("fashionnet", "fashionnet_edge", "fashionnet_web", "fashionnet_mcu", "benchmarks", "tests", "conftest",
               "export_fixtures", "photos", "fail_writes")  # fmt: skip


def _first_party(module: str | None) -> bool:
    return bool(module) and module.split(".")[0] in FIRST_PARTY


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def private_uses(path: Path, root: Path = REPO) -> list[str]:
    """'file:line: name' for every private name of another first-party module that ``path`` uses."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    modules: set[str] = set()  # local names bound to first-party modules
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if _first_party(alias.name):
                    modules.add(alias.asname or alias.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom) and _first_party(node.module):
            for alias in node.names:
                if _private(alias.name):
                    found.append(f"{path.relative_to(root)}:{node.lineno}: from {node.module} import {alias.name}")
                else:
                    modules.add(alias.asname or alias.name)  # may be a submodule: its attributes are checked below
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in modules:
            if _private(node.attr):
                found.append(f"{path.relative_to(root)}:{node.lineno}: {node.value.id}.{node.attr}")
    return found


def test_no_private_name_is_used_across_modules():
    files = [
        p for folder in ("fashionnet", "export", "benchmarks", "tests", ".ci") for p in (REPO / folder).rglob("*.py")
    ]
    assert len(files) > 40
    offences = [line for path in sorted(files) for line in private_uses(path)]
    assert offences == [], "private names used across modules:\n" + "\n".join(offences)


def test_the_check_finds_both_forms(tmp_path):
    source = tmp_path / "user.py"
    source.write_text("from fashionnet.export import _quantize\nfrom fashionnet import bench\nbench._rate(1)\n")
    assert private_uses(source, tmp_path) == [
        "user.py:1: from fashionnet.export import _quantize",
        "user.py:3: bench._rate",
    ]
