"""The Keras backends bench can measure here: the installed ones, or those --backends names."""

from __future__ import annotations

import importlib.util

from fashionnet.errors import ConfigError

BACKENDS = ("tensorflow", "jax", "torch")


def installed_backends() -> list[str]:
    return [b for b in BACKENDS if importlib.util.find_spec(b) is not None]


def resolve_backends(text: str | None) -> list[str]:
    """--backends, or every installed backend when it is not given."""
    if text is None:
        found = installed_backends()
        if not found:
            raise ConfigError(f"no Keras backend installed: install one of fashionnet[{'], ['.join(BACKENDS)}]")
        return found
    backends = [b.strip() for b in text.split(",") if b.strip()]
    unknown = [b for b in backends if b not in BACKENDS]
    if unknown or not backends:
        raise ConfigError(f"--backends must be a comma-separated subset of {','.join(BACKENDS)}, got {text!r}")
    missing = [b for b in backends if b not in installed_backends()]
    if missing:
        raise ConfigError(f"--backends: {', '.join(missing)} not installed in this environment")
    return list(dict.fromkeys(backends))
