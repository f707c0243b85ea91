"""Every registered experiment, by kind.  Importing this module imports each file of the
package (an experiment's file registers itself with
:func:`interp.experiments.base.register_experiment`; nothing else lists it)."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

from interp.errors import ConfigError
from interp.experiments.base import _REGISTRY, Experiment

MACHINERY = frozenset({"base", "execute", "headlines", "registry", "subject"})


def experiment_modules() -> tuple[str, ...]:
    """The modules of ``interp.experiments`` that hold experiments, by name."""
    names = sorted(m.name for m in pkgutil.iter_modules([str(Path(__file__).parent)]))
    return tuple(
        f"interp.experiments.{n}" for n in names if n not in MACHINERY and not n.startswith("_")
    )


for _module in experiment_modules():
    importlib.import_module(_module)


def get_experiment(kind: str) -> Experiment:
    if kind not in _REGISTRY:
        raise ConfigError(
            f"unknown experiment {kind!r}; choose from {', '.join(sorted(_REGISTRY))}"
        )
    return _REGISTRY[kind]


def experiment_kinds() -> tuple[str, ...]:
    return tuple(sorted(_REGISTRY))


__all__ = ["experiment_kinds", "get_experiment"]
