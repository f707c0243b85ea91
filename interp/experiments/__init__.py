"""The experiments layer: one file per experiment, each a frozen Config, a typed Results, a
``prepare`` and a ``run``; :func:`execute` drives them all the same way (see ``execute.py``).

Importing this package registers every experiment (``registry.py`` imports each file).
"""

from interp.experiments.base import (
    Context,
    Estimate,
    Experiment,
    ExperimentConfig,
    Prepared,
    Results,
    register_experiment,
)
from interp.experiments.execute import Outcome, default_out, execute
from interp.experiments.registry import experiment_kinds, get_experiment

__all__ = [
    "Context",
    "Estimate",
    "Experiment",
    "ExperimentConfig",
    "Outcome",
    "Prepared",
    "Results",
    "default_out",
    "execute",
    "experiment_kinds",
    "get_experiment",
    "register_experiment",
]
