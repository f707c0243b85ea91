"""What a grokking run logs beside its losses: the Fourier picture of a modular-addition model.

* :func:`fourier_row` (a ``"fourier"`` metrics row at each logged step): embedding and neuron
  spectra, key frequencies, top-k shares, and Nanda's restricted / excluded losses for a
  transformer trained on every pair;
* :func:`fourier_results` (the end of a run): key frequencies, the spectrum, the top-k share
  and the embedding projected on the two strongest frequencies (the circles).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from interp.analysis.fourier import frequency_power, key_frequencies, project_on_frequency
from interp.grok.progress import restricted_excluded_loss
from interp.train.full_batch import FullBatchData


def fourier_row(model: nn.Module, cfg: Any, data: FullBatchData, all_pairs: bool) -> dict[str, Any]:
    """Embedding and neuron spectra, key frequencies, top-k share (and Nanda's losses)."""
    spec = frequency_power(model.embedding)
    neurons = frequency_power(model.neuron_weights())
    keys = key_frequencies(spec, cfg.top_k)
    row: dict[str, Any] = {
        "embed_power": spec.power,
        "neuron_power": neurons.power,
        "key_frequencies": keys,
        "top_k_share": spec.top_share(cfg.top_k),
        "neuron_top_k_share": neurons.top_share(cfg.top_k),
    }
    if cfg.model == "transformer" and all_pairs:
        with torch.no_grad():
            logits = model(data.x.to(cfg.device))
        row |= restricted_excluded_loss(logits, data.y, data.train, cfg.p, keys)
    return row


def fourier_results(model: nn.Module, top_k: int) -> dict[str, Any]:
    """The final Fourier summary of a run's embedding."""
    spec = frequency_power(model.embedding)
    top = spec.top(top_k)
    return {
        "key_frequencies": sorted(top),
        "embed_power": spec.power,
        "top_k_share": spec.top_share(top_k),
        "circles": [
            {"frequency": f, "xy": project_on_frequency(model.embedding, f).tolist()}
            for f in top[:2]
        ],
    }


__all__ = ["fourier_results", "fourier_row"]
