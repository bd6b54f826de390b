"""Packaging metadata. Users get ranges, CI gets the lock: constraints.txt pins every declared dependency inside its
declared range, and the README's install commands (CI runs them verbatim) install through it. The wheel holds every
subpackage and both commands."""

from __future__ import annotations

import importlib.util
import re
import tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.conftest import REPO

LOCK = REPO / "constraints.txt"


def declared() -> list[Requirement]:
    """Every requirement of pyproject.toml (the package and its extras), as written there."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    texts = project["dependencies"] + [r for extra in project["optional-dependencies"].values() for r in extra]
    return [Requirement(text) for text in texts]


def lock_pins(text: str) -> dict[str, Version]:
    pins = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"constraints.txt: {line!r} is not an exact pin"
            pins[canonicalize_name(name.split("[")[0])] = Version(version)
    return pins


def test_every_declared_dependency_is_a_range_the_lock_pins_inside():
    pins = lock_pins(LOCK.read_text())
    checked = []
    for requirement in declared():
        name = canonicalize_name(requirement.name)
        if name == "fashionnet" or (requirement.marker and not requirement.marker.evaluate()):
            continue  # an extra of itself; another platform's variant (the lock is for CI's Linux x86-64)
        assert name in pins, f"constraints.txt does not pin {name} ({requirement})"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"{name}=={pins[name]} outside {requirement}"
        )
        checked.append(name)
    assert {"keras", "tensorflow-cpu", "onnxruntime", "ai-edge-litert", "scikit-learn"} <= set(checked)


def test_ranges_have_lower_bounds_and_upper_bounds_only_with_a_reason():
    source = (REPO / "pyproject.toml").read_text()
    for requirement in declared():
        if canonicalize_name(requirement.name) == "fashionnet":
            continue
        operators = {spec.operator for spec in requirement.specifier}
        assert operators & {">=", "=="}, f"{requirement}: no lower bound for `tox -e oldest` to prove"
        if "<" in operators:  # the line above the requirement says why
            lines = source.splitlines()
            line = next(i for i, text in enumerate(lines) if re.search(rf'"{requirement.name}[<>=]', text))
            around = lines[line - 1] + lines[line]
            assert "#" in around, f"{requirement}: an upper bound needs its reason in a comment"


def test_the_readme_installs_through_the_lock():
    spec = importlib.util.spec_from_file_location("readme_commands", REPO / ".ci" / "readme_commands.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    commands = module.readme_commands((REPO / "README.md").read_text())
    for name, command in commands.items():
        installs = [part for part in command.split("&&") if " install " in part]
        assert installs and all("-c constraints.txt" in part for part in installs), f"{name}: {installs}"


def test_the_lock_parser_refuses_a_range():
    import pytest

    assert lock_pins("keras==3.15.1\n    # via x\ntorch==2.13.0+cpu\n") == {
        "keras": Version("3.15.1"),
        "torch": Version("2.13.0+cpu"),
    }
    with pytest.raises(AssertionError, match="not an exact pin"):
        lock_pins("keras>=3.10\n")


def test_the_wheel_declares_every_subpackage_and_both_commands():
    """pyproject.toml lists packages by hand: a new subpackage left out would be missing from the wheel."""
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    listed = set(pyproject["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(REPO).parts) for p in (REPO / "fashionnet").rglob("__init__.py")}
    assert found and found <= listed, f"not in [tool.setuptools] packages: {sorted(found - listed)}"
    scripts = pyproject["project"]["scripts"]
    assert scripts == {"fashionnet": "fashionnet.cli:main", "fashionnet-edge": "fashionnet_edge:main"}
