"""The package's import rules, checked with ast: a failure names the file, line and name.

* No module reaches into another's private names: `from X import _name` and `module._name` where X or module is
  fashionnet's own (the package, the kits, a test helper), in the package, the kits, the tests and the scripts.
* No import cycle among fashionnet's modules, counting imports inside functions (they run too, only later) and
  leaving out `if TYPE_CHECKING:` blocks (they never run).
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


# --------------------------------------------------------------------------------------------------------------
# Import cycles
# --------------------------------------------------------------------------------------------------------------


def module_names(package_dir: Path) -> dict[str, Path]:
    """{dotted module name: file} of every module of the package in ``package_dir``."""
    names = {}
    for path in package_dir.rglob("*.py"):
        parts = path.relative_to(package_dir.parent).with_suffix("").parts
        names[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return names


def _type_checking_lines(tree: ast.AST) -> set[int]:
    lines = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for inner in node.body:
                lines.update(range(inner.lineno, inner.end_lineno + 1))
    return lines


def import_edges(name: str, path: Path, modules: dict[str, Path]) -> list[tuple[str, int]]:
    """(imported first-party module, line) for every import of ``path`` that runs, at the top or in a function."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    skipped = _type_checking_lines(tree)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    edges = []
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skipped:
            continue
        if isinstance(node, ast.Import):
            edges += [(alias.name, node.lineno) for alias in node.names if alias.name in modules]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from . import x, from .y import z
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            for alias in node.names:
                target = f"{base}.{alias.name}"
                if target in modules:
                    edges.append((target, node.lineno))  # a submodule
                elif base in modules:
                    edges.append((base, node.lineno))  # a name the module (or the package's __init__) defines
    return [(target, line) for target, line in edges if target != name]


def import_cycles(package_dir: Path, root: Path = REPO) -> list[str]:
    """One line per cycle found, each step as 'module (file:line)'."""
    modules = module_names(package_dir)
    graph = {name: import_edges(name, path, modules) for name, path in modules.items()}
    cycles, state = [], {}  # state: 1 = on the current path, 2 = done

    def visit(name: str, trail: list[tuple[str, int]]) -> None:
        state[name] = 1
        for target, line in graph[name]:
            step = trail + [(name, line)]
            if state.get(target) == 1:
                start = next(i for i, (module, _) in enumerate(step) if module == target)
                loop = step[start:]
                cycles.append(
                    " -> ".join(f"{m} ({modules[m].relative_to(root)}:{n})" for m, n in loop) + f" -> {target}"
                )
            elif target not in state:
                visit(target, step)
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [])
    return cycles


def test_the_package_has_no_import_cycle():
    modules = module_names(REPO / "fashionnet")
    assert len(modules) > 40
    cycles = import_cycles(REPO / "fashionnet")
    assert cycles == [], "import cycles:\n" + "\n".join(cycles)


def test_the_cycle_check_finds_a_cycle_through_a_function_and_skips_type_checking(tmp_path):
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    (package / "a.py").write_text("from pkg.sub import b\n")
    (package / "sub" / "b.py").write_text("def f():\n    from pkg import c\n")
    (package / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import b\n"
                                  "from pkg.a import something\n")  # fmt: skip
    (package / "d.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import a\n")
    (package / "sub" / "e.py").write_text("from .. import d\n")
    assert import_cycles(package, tmp_path) == [
        "pkg.a (pkg/a.py:1) -> pkg.sub.b (pkg/sub/b.py:2) -> pkg.c (pkg/c.py:4) -> pkg.a"
    ]
