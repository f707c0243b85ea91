"""The experiments layer: one file per experiment, each a frozen Config, a typed Results, a
``prepare`` and a ``run``; :func:`execute` drives them all the same way (see ``execute.py``).

Importing this package registers every experiment.
"""

# each module registers its experiment when imported
from interp.experiments import collapse, probe, reproduce, squash  # noqa: E402, F401, I001
from interp.experiments.base import (
    Context,
    Estimate,
    Experiment,
    ExperimentConfig,
    Prepared,
    Results,
    experiment_kinds,
    get_experiment,
    register_experiment,
)
from interp.experiments.execute import Outcome, default_out, execute

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
