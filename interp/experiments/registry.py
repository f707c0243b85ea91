"""Every registered experiment, by kind.  Importing this module imports each experiment's file
(each registers itself with :func:`interp.experiments.base.register_experiment`)."""

from __future__ import annotations

from interp.errors import ConfigError
from interp.experiments import (  # noqa: F401  (registration)
    collapse,
    count_construct,
    count_sweep,
    demo,
    grok,
    grok_sweep,
    pe_bench,
    precache,
    probe,
    reproduce,
    squash,
    train,
)
from interp.experiments.base import _REGISTRY, Experiment


def get_experiment(kind: str) -> Experiment:
    if kind not in _REGISTRY:
        raise ConfigError(
            f"unknown experiment {kind!r}; choose from {', '.join(sorted(_REGISTRY))}"
        )
    return _REGISTRY[kind]


def experiment_kinds() -> tuple[str, ...]:
    return tuple(sorted(_REGISTRY))


__all__ = ["experiment_kinds", "get_experiment"]
