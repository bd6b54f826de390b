"""The README's two commands are what CI runs (.ci/run reads them with .ci/readme_commands.py): they must parse."""

from __future__ import annotations

import importlib.util
import shlex

import pytest

from fashionnet.cli import build_parser
from tests.conftest import REPO


def _readme_commands_module():
    spec = importlib.util.spec_from_file_location("readme_commands", REPO / ".ci" / "readme_commands.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _steps(command: str) -> list[list[str]]:
    """`a && B=1 b && c` -> [[a...], [b...], [c...]] without the leading VAR=value assignments."""
    steps = []
    for part in command.split("&&"):
        words = shlex.split(part)
        while words and "=" in words[0] and not words[0].startswith("-"):
            words.pop(0)
        steps.append(words)
    return steps


def test_the_readme_holds_a_main_job_and_a_test_command():
    commands = _readme_commands_module().readme_commands((REPO / "README.md").read_text())
    main_job, tests = _steps(commands["main"]), _steps(commands["tests"])
    # the main job installs the package with the export extra, then runs `fashionnet reproduce` from that venv
    install = next(step for step in main_job if "install" in step)
    assert any(arg.startswith(".[") and "export" in arg for arg in install), install
    program, *arguments = main_job[-1]
    assert program.endswith("/fashionnet") and arguments[0] == "reproduce"
    # every option it passes is one fashionnet accepts, also with CI's quick-size override appended
    args = build_parser().parse_args([*arguments, "--epochs", "1", "--limit", "6000"])
    assert args.command == "reproduce" and args.quantize == "int8" and not args.no_export
    assert "FASHIONNET_DATA=" in commands["main"] and "FASHIONNET_DATA=" in commands["tests"]
    assert tests[-1][0].endswith("/tox")


def test_ci_runs_the_readme_commands_it_reads():
    ci = (REPO / ".ci" / "run").read_text()
    assert "readme_commands.py main" in ci and "readme_commands.py tests" in ci
    assert "FASHIONNET_DATA=" not in ci  # the README's commands must find the data on their own


@pytest.mark.parametrize(
    ("readme", "message"),
    [
        ("# x\n", "no section"),
        ("## The two commands\n\n```bash\na\n```\n\n## Next\n\n```bash\nb\n```\n", "found 1"),
        ("## The two commands\n\n```bash\na\nb\n```\n```bash\nc\n```\n", "one-line"),
    ],
)
def test_a_readme_without_the_two_commands_is_refused(readme, message):
    with pytest.raises(ValueError, match=message):
        _readme_commands_module().readme_commands(readme)
