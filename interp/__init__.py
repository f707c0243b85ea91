"""interp: a mechanistic-interpretability toolkit for decoder transformers."""

from __future__ import annotations

from interp.version import __version__

__all__ = ["__version__", "load_model"]


def load_model(spec: str, device: str = "cpu"):  # noqa: ANN201 - returns a hooked model
    """Load a hooked model from a run directory, a local Hugging Face directory or a hub name."""
    from interp.models.loading import load_model as _load

    return _load(spec, device=device)
