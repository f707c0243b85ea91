"""Step 5 of ``interp probe``: one pass over the test blocks.  Held-out top-1 / top-5 /
cross-entropy sums per sequence for every layer × horizon, beside the unigram, bigram and
(k = 1) model baselines, all over the same test positions: every one, or the
``prep.test_mask`` drawn; only those rows are decoded (:mod:`probes.decode`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor

from probes.collect import ActivationBatch, horizon_targets, probe_inputs
from probes.decode import Decoder
from probes.prepare import Prepared
from probes.ridge import RidgeFit
from probes.statistics import FitState, timed_activations

Weights = dict[int, tuple[Tensor, Tensor]]  # layer -> (weight, bias) of its ridge map


def _dense_sums(rows: Tensor, seq: Tensor, pos: Tensor, b: int, n_pos: int) -> Tensor:
    """Per-sequence sums ``[b, 3]`` of per-row metrics ``[m, 3]`` at (seq, pos): summed over
    a dense ``[b, n_pos]`` layout, so that scoring every position adds exactly as before."""
    dense = torch.zeros(3, b, n_pos, dtype=rows.dtype)
    dense[:, seq, pos] = rows.T
    return dense.sum(-1).T


@torch.no_grad()
def evaluate(
    model: Any,
    prep: Prepared,
    fits: dict[int, RidgeFit],
    state: FitState,
    vocab_probe: Any | None = None,
    on_batch: Callable[..., None] | None = None,
    decoder: Decoder | None = None,
) -> dict[str, np.ndarray]:
    """Per-sequence metric sums on the test blocks: ``[seq, layer, horizon, 3]`` per probe kind,
    ``[seq, horizon, 3]`` for the n-gram baselines and ``[seq, 3]`` for the model (k = 1), over
    the scored positions only (``prep.test_mask``); only those rows are decoded."""
    cfg = prep.config
    d = int(model.cfg.d_model)
    decoder = decoder or Decoder(model)
    n_pos = prep.probe_positions
    fl, vp, uni, big, own = [], [], [], [], []
    weights = {layer: (fit.weight.float(), fit.bias.float()) for layer, fit in fits.items()}
    start = 0
    test_blocks = prep.blocks[prep.split.test]
    for batch, forward_s in timed_activations(model, test_blocks, prep, cfg.batch_size):
        t1 = time.perf_counter()
        b = batch.tokens.shape[0]
        mask = (
            torch.ones(b, n_pos, dtype=torch.bool)
            if prep.test_mask is None
            else prep.test_mask[start : start + b]
        )
        start += b
        sums, vsums, model_sums = _score_batch(batch, mask, prep, d, weights, vocab_probe, decoder)
        fl.append(sums.numpy())
        vp.append(vsums.numpy())
        masked = None if prep.test_mask is None else mask
        u, bg = state.ngrams.metrics(batch.tokens, masked)
        uni.append(u)
        big.append(bg)
        own.append(model_sums.numpy())
        if on_batch is not None:
            on_batch("test", forward_s, time.perf_counter() - t1)
    out = {
        "unigram": np.concatenate(uni),
        "bigram": np.concatenate(big),
        "model": np.concatenate(own),
    }
    if fits:
        out["future_lens"] = np.concatenate(fl)
    if vocab_probe is not None:
        out["vocab"] = np.concatenate(vp)
    return out


def _score_batch(
    batch: ActivationBatch,
    mask: Tensor,
    prep: Prepared,
    d: int,
    weights: Weights,
    vocab_probe: Any | None,
    decoder: Decoder,
) -> tuple[Tensor, Tensor, Tensor]:
    """One test batch's per-sequence sums at the scored positions of ``mask``: the future-lens
    ``[b, layer, horizon, 3]``, the vocabulary probe's (same shape) and the model's own head at
    t ``[b, 3]``."""
    h, n_pos = prep.config.horizon, prep.probe_positions
    b = batch.tokens.shape[0]
    seq, pos = mask.nonzero(as_tuple=True)
    seq_d, pos_d = seq.to(batch.tokens.device), pos.to(batch.tokens.device)
    targets = [horizon_targets(batch.tokens, k, h, 0)[seq_d, pos_d] for k in range(1, h + 1)]
    sums = torch.zeros(b, len(prep.layers), h, 3)
    vsums = torch.zeros(b, len(prep.layers), h, 3)
    for i, layer in enumerate(prep.layers):
        x = probe_inputs(batch.states[layer], h)[seq_d, pos_d]  # [rows, d_model]
        if layer in weights:
            w, bias = weights[layer]
            pred = x @ w + bias  # [rows, horizon * d_model]
            for k in range(h):
                rows = decoder.metrics(pred[:, k * d : (k + 1) * d], targets[k])
                sums[:, i, k] = _dense_sums(rows.cpu(), seq, pos, b, n_pos)
            del pred
        if vocab_probe is not None:
            vrows = vocab_probe.metrics(layer, x.cpu(), torch.stack(targets, -1).cpu())
            for k in range(h):
                vsums[:, i, k] = _dense_sums(vrows[:, k], seq, pos, b, n_pos)
    final = probe_inputs(batch.final, h)[seq_d, pos_d]  # the model's own head at t
    model_sums = _dense_sums(decoder.metrics(final, targets[0]).cpu(), seq, pos, b, n_pos)
    return sums, vsums, model_sums
