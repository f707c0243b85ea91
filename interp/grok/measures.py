"""What a grokking run logs beside its losses: the Fourier picture of a modular-addition model.

* :func:`fourier_row` (a ``"fourier"`` metrics row at each logged step): embedding and neuron
  spectra, key frequencies, top-k shares, and Nanda's restricted / excluded losses for a
  transformer trained on every pair.  Key frequencies are the top ``top_k`` of the embedding
  spectrum, except for Nanda's transformer on every pair: there they are Nanda's (each neuron's
  dominant frequency, :func:`interp.grok.progress.neuron_key_frequencies`), and the row says so
  (``key_frequency_rule``);
* :func:`fourier_results` (the end of a run): key frequencies, the spectrum, the top-k share
  and the embedding projected on the two strongest frequencies (the circles).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from interp.analysis.fourier import frequency_power, key_frequencies, project_on_frequency
from interp.grok.progress import (
    EXCLUDED_LOSS_RULE,
    KEY_FREQUENCY_RULE,
    neuron_key_frequencies,
    restricted_excluded_loss,
)
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
    if nanda_keys(model, all_pairs):
        x = data.x.to(cfg.device)
        keys = neuron_key_frequencies(model.neuron_acts(x), cfg.p)
        with torch.no_grad():  # the residues' logits (Nanda's take_metrics drops "=")
            logits = model(x)[:, : cfg.p]
        row |= {"key_frequencies": keys, "key_frequency_rule": KEY_FREQUENCY_RULE}
        row |= restricted_excluded_loss(logits, data.y, data.train, cfg.p, keys)
        row["excluded_loss_rule"] = EXCLUDED_LOSS_RULE
    return row


def nanda_keys(model: nn.Module, all_pairs: bool) -> bool:
    """Whether Nanda's key frequencies apply: a model with MLP neurons read on every pair."""
    return all_pairs and hasattr(model, "neuron_acts")


def fourier_results(
    model: nn.Module, top_k: int, data: FullBatchData | None = None, p: int = 0
) -> dict[str, Any]:
    """The final Fourier summary of a run's embedding (with ``data`` on every pair and a
    model with neurons: Nanda's key frequencies)."""
    spec = frequency_power(model.embedding)
    top = spec.top(top_k)
    nanda: dict[str, Any] = {}
    if data is not None and nanda_keys(model, True):
        keys = neuron_key_frequencies(model.neuron_acts(data.x), p)
        nanda = {"key_frequencies": keys, "key_frequency_rule": KEY_FREQUENCY_RULE}
    return {
        "key_frequencies": sorted(top),
        **nanda,
        "embed_power": spec.power,
        "top_k_share": spec.top_share(top_k),
        "circles": [
            {"frequency": f, "xy": project_on_frequency(model.embedding, f).tolist()}
            for f in top[:2]
        ],
    }


__all__ = ["fourier_results", "fourier_row"]
