"""interp: a mechanistic-interpretability toolkit for decoder transformers.

``interp.load_model(spec)`` loads a hooked model; the notebook API (``interp.probe``,
``interp.collapse``, ``interp.squash``, ...) runs an analysis on a model object and returns
its typed results (see :mod:`interp.api`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from interp.version import __version__

__all__ = [
    "__version__",
    "collapse",
    "count_sweep",
    "grokking",
    "load_model",
    "precache",
    "probe",
    "squash",
]

DEMO = "demo"  # load_model("demo"): the cached default model (trained once on first use)
_API = ("collapse", "count_sweep", "grokking", "precache", "probe", "squash")


def load_model(spec: str | Path, device: str = "cpu") -> Any:
    """Load a hooked model from a run directory, a local Hugging Face directory, a hub name, or
    ``"demo"`` (the cached default model; a folder called ``demo`` wins if there is one)."""
    from interp.models.loading import load_model as _load

    if str(spec) == DEMO and not Path(DEMO).exists():
        from interp.experiments.subject import default_model_run

        spec = default_model_run()
    return _load(spec, device=device)


def __getattr__(name: str) -> Any:  # the notebook API, imported on first use (torch is heavy)
    if name in _API:
        from interp import api

        return getattr(api, name)
    raise AttributeError(f"module 'interp' has no attribute {name!r}")
