"""fashionnet's own exception family: the library raises, only the CLI turns them into exit codes."""


class FashionNetError(Exception):
    """Base class: every error a user can cause or fix."""

    exit_code = 1
    hint: str | None = None  # what to do next, printed by the CLI on a second line (e.g. the command that resumes)


class ConfigError(FashionNetError):
    """An option out of range or inconsistent with the run folder."""

    exit_code = 2


class DataError(FashionNetError):
    """Missing, truncated, corrupt or mismatching Fashion-MNIST files."""

    exit_code = 3


class ModelError(FashionNetError):
    """A model file that is missing, truncated or not a fashionnet model."""

    exit_code = 4


class InputError(FashionNetError):
    """Prediction inputs of the wrong shape, dtype, range or kind."""

    exit_code = 5


class ExportError(FashionNetError):
    """A conversion failed or an exported artifact disagrees with Keras."""

    exit_code = 6


class RunError(FashionNetError):
    """A run folder that is missing, finished, unwritable or inconsistent."""

    exit_code = 7


class MissingDependencyError(FashionNetError):
    """A heavy optional library is not installed; the message names the extra."""

    exit_code = 8


def require(module: str, extra: str):
    """Import a heavy optional dependency, or say which extra brings it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"{module} is not installed ({exc}); install it with: pip install 'fashionnet[{extra}]'"
        ) from exc
