"""What ``interp probe`` will cost before it runs: :func:`estimate_memory` (bytes at the peak
phase, checked by the experiments layer's preflight) and, from the timed first batch and decode,
the seconds of every phase (the estimated duration and the progress bar's weights)."""

from __future__ import annotations

from typing import Any

import torch

from probes.decode import DecodeChoice
from probes.prepare import Prepared
from probes.statistics import ridge_products
from probes.vocab import MIN_STEPS, MINIBATCH, n_classes


def estimate_memory(model: Any, prep: Prepared, decode_bytes: int | None = None) -> int:
    """Bytes the probe allocates beyond the loaded model, at its peak: the largest of its
    phases (fitting, solving, the vocabulary fit, the test pass), each the state held then
    plus one batch's forward and what works on it.  ``decode_bytes``: the decoder's converted
    unembedding (a bfloat16 copy: ``d_vocab x d_model x 2``; default: counted)."""
    cfg = prep.config
    c = model.cfg
    d, h, v = int(c.d_model), cfg.horizon, int(c.d_vocab)
    n_heads = int(getattr(c, "n_heads", 1) or 1)
    d_mlp = int(getattr(c, "d_mlp", 4 * d) or 4 * d)
    n_layers = len(prep.layers)
    lens = "future_lens" in cfg.kinds
    bt, t = cfg.batch_size, prep.seq_len
    rows = bt * prep.probe_positions
    fit_rows = int(prep.split.fit.numel()) * prep.probe_positions
    f = 4
    p = 4 if ridge_products(d) == torch.float32 else 8
    forward = f * bt * t * (len(prep.layers) * d + 2 * d + 8 * d + 3 * d_mlp)  # captured + live
    forward += f * bt * n_heads * t * t * 3 + f * 4 * d * d  # scores, pattern; stacked weights
    blocks = prep.blocks.numel() * 8
    ngrams = fit_rows * h * 8 * 4 + h * v * 5 * 8 + v * 8 * 4
    stats = 2 * n_layers * 8 * (d * d + d * h * d + 2 * d + 3 * h * d) if lens else 0
    per_batch = rows * (d + h * d) * p * 3 if lens else 0  # shifted x, y, their squares
    solve = 8 * (13 * d * h * d + 6 * d * d) if lens else 0
    fits = n_layers * d * h * d * (8 + 4) if lens else 0
    vocab = prep.vocab_memory or 0
    if decode_bytes is None:
        decode_bytes = v * d * 2 if v >= 8192 else 0
    chunk = max(1, (64 * 2**20) // (4 * v))
    decode = decode_bytes + min(chunk, rows) * v * (4 * 3 + 2) + rows * h * d * f * 2
    base = blocks + ngrams + stats
    phases = (
        base + forward + per_batch + vocab,  # fitting (the vocabulary rows grow to their size)
        base + solve + fits + vocab,  # solving
        base + fits + vocab,  # the vocabulary fit (its own needs are in ``vocab``)
        base + fits + forward + decode + vocab // 4,  # the test pass
    )
    return int(max(phases))


def _phase_costs(
    model: Any, prep: Prepared, forward_s: float, ridge_s: float, choice: DecodeChoice
) -> dict[str, tuple[int, float]]:
    """``phase -> (steps, seconds each)`` from the timed first batch and decode."""
    cfg = prep.config
    d, h, n_layers = int(model.cfg.d_model), cfg.horizon, len(prep.layers)
    lens = "future_lens" in cfg.kinds
    n_batches = {
        name: -(-int(idx.numel()) // cfg.batch_size)
        for name, idx in (
            ("fit", prep.split.fit),
            ("val", prep.split.val),
            ("test", prep.split.test),
        )
    }
    n_test = max(1, n_batches["test"])
    rows = prep.test_scored / n_test  # scored rows of one test batch
    per_row = choice.seconds_per_row[str(choice.dtype).removeprefix("torch.")]
    cells = (n_layers * h if lens else 0) + 1
    # ridge work runs at ~ridge_flops / ridge_s; the solve (float64, ~2x slower) and the
    # vocabulary fit (3 minibatch matmuls a step) are priced at that rate
    batch_rows = cfg.batch_size * prep.probe_positions
    ridge_flops = 2 * batch_rows * d * (d + h * d) * n_layers if lens else 0
    rate = ridge_flops / ridge_s if ridge_s > 0 and ridge_flops else 20e9
    costs: dict[str, tuple[int, float]] = {"fit": (n_batches["fit"], forward_s + ridge_s)}
    if lens:
        costs["val"] = (n_batches["val"], forward_s + ridge_s)
        solve_flops = n_layers * (12 * d**3 + 30 * d * d * h * d)
        costs["solve"] = (1, 2 * solve_flops / rate)
    if "vocab" in cfg.kinds:
        fit_rows = int(prep.split.fit.numel()) * prep.probe_positions
        steps = max(cfg.vocab_epochs * -(-fit_rows // MINIBATCH), MIN_STEPS)
        c = n_classes(int(model.cfg.d_vocab), cfg.top_k)
        costs["vocab"] = (1, n_layers * steps * 6 * MINIBATCH * d * h * c / rate * 1.5)
    costs["test"] = (n_test, forward_s + rows * cells * per_row)
    return costs
