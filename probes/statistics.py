"""Steps 3-4 of ``interp probe``: one pass over the fitting and validation blocks, every layer ×
horizon at once, into streamed ridge statistics (and, for the vocabulary probe, the fitting
activations in memory); then each ridge probe solved with λ chosen on the validation blocks.

Under ``torchrun`` each rank streams its own batches (batch i to rank i % world) and the ranks
sum their float64 statistics before the solve.  The ridge products run in float32 into float64
totals from d_model :data:`FLOAT32_PRODUCTS_FROM` up (smaller models keep float64 products).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from interp import distributed as dist
from interp.errors import ConfigError
from probes.collect import (
    ActivationBatch,
    horizon_targets,
    iter_activations,
    probe_inputs,
    stacked_targets,
)
from probes.metrics import NgramBaselines
from probes.prepare import Prepared
from probes.ridge import RidgeFit, StreamingRidge, fit_with_validation

FLOAT32_PRODUCTS_FROM = 512  # d_model from which ridge products run in float32


def ridge_products(d_model: int) -> torch.dtype:
    """The dtype of the ridge's batch products (see the module docstring)."""
    return torch.float32 if d_model >= FLOAT32_PRODUCTS_FROM else torch.float64


@dataclass
class FitState:
    """Streamed statistics for every layer (targets of all horizons side by side)."""

    train: dict[int, StreamingRidge]
    val: dict[int, StreamingRidge]
    ngrams: NgramBaselines
    max_rows_held: int = 0  # activation rows alive at once (one batch), whatever the token count
    vocab_x: dict[int, list[torch.Tensor]] = field(default_factory=dict)
    vocab_y: list[torch.Tensor] = field(default_factory=list)
    products: torch.dtype = torch.float64


BatchDone = Callable[[str, float, float], None]  # (phase, forward seconds, other seconds)


def timed_activations(
    model: Any, blocks: Tensor, prep: Prepared, batch_size: int
) -> Iterator[tuple[ActivationBatch, float]]:
    """The activations of ``blocks`` batch by batch, each with the seconds its forward took."""
    batches = iter_activations(model, blocks, prep.layers, batch_size)
    while True:
        t0 = time.perf_counter()
        batch = next(batches, None)
        if batch is None:
            return
        yield batch, time.perf_counter() - t0


def collect_statistics(
    model: Any,
    prep: Prepared,
    on_batch: Callable[..., None] | None = None,
    on_first: Callable[[ActivationBatch], None] | None = None,
) -> FitState:
    """One pass over the fitting blocks (and, for the future lens, the validation blocks), all
    layers × horizons at once.  ``on_batch(phase, forward_s, rest_s)`` after every batch,
    ``on_first(batch)`` before the first one is used (the run times its decode there)."""
    cfg = prep.config
    d = int(model.cfg.d_model)
    lens = "future_lens" in cfg.kinds
    state = _empty_state(model, prep, lens)
    parallel = dist.is_distributed()
    if parallel and "vocab" in cfg.kinds:
        raise ConfigError(
            "the vocabulary probe keeps its fitting rows in one process: run --probe vocab "
            "(or both) without torchrun; the future lens runs data-parallel"
        )
    phases = [("train", prep.split.fit)] + ([("val", prep.split.val)] if lens else [])
    for which, idx in phases:
        stats = state.train if which == "train" else state.val
        if parallel:  # this rank's batches (batch i to rank i % world); ranks sum their stats
            shift = lens and state.products != torch.float64
            idx = _this_ranks_blocks(model, prep, idx, stats, shift)
        for batch, forward_s in timed_activations(model, prep.blocks[idx], prep, cfg.batch_size):
            if on_first is not None:  # timed apart: the calibration is not this batch's work
                on_first(batch)
                on_first = None
            t1b = time.perf_counter()
            _absorb(state, stats, batch, prep, d, which == "train", parallel)
            if on_batch is not None:
                on_batch("fit" if which == "train" else "val", forward_s, time.perf_counter() - t1b)
    if parallel:
        _all_reduce_stats(state)
        fit_blocks = prep.blocks[prep.split.fit]  # the n-gram counts need tokens only
        for start in range(0, int(fit_blocks.shape[0]), cfg.batch_size):
            state.ngrams.update(fit_blocks[start : start + cfg.batch_size])
    return state


def _empty_state(model: Any, prep: Prepared, lens: bool) -> FitState:
    """Zeroed statistics: a fitting and a validation ridge per layer (future lens only)."""
    d, h = int(model.cfg.d_model), prep.config.horizon
    device = next(model.parameters()).device
    products = ridge_products(d)
    layers = prep.layers if lens else []
    return FitState(
        train={layer: StreamingRidge(d, h * d, device, products) for layer in layers},
        val={layer: StreamingRidge(d, h * d, device, products) for layer in layers},
        ngrams=NgramBaselines(int(model.cfg.d_vocab), h),
        products=products,
    )


def _this_ranks_blocks(
    model: Any, prep: Prepared, idx: Tensor, stats: dict[int, StreamingRidge], shift: bool
) -> Tensor:
    """The block indices of this rank's batches in one phase (float32 products first shifted
    as one process shifts them)."""
    batch_size = prep.config.batch_size
    if shift and idx.numel():
        _shift_like_one_process(model, prep, prep.blocks[idx[:batch_size]], stats)
    chunks = idx.split(batch_size)
    mine = [chunks[i] for i in dist.shard(int(idx.numel()), batch_size)]
    return torch.cat(mine) if mine else idx[:0]


def _absorb(
    state: FitState,
    stats: dict[int, StreamingRidge],
    batch: ActivationBatch,
    prep: Prepared,
    d: int,
    fitting: bool,
    parallel: bool,
) -> None:
    """One batch into the phase's ridge statistics, and (fitting blocks) into the n-gram counts
    and the vocabulary probe's rows."""
    cfg = prep.config
    h = cfg.horizon
    keep_vocab = "vocab" in cfg.kinds
    rows = batch.tokens.shape[0] * prep.probe_positions
    state.max_rows_held = max(state.max_rows_held, rows)
    if "future_lens" in cfg.kinds:
        y = stacked_targets(batch.target, h)
        if state.products == torch.float64:
            y = y.to(torch.float64)
        for layer in prep.layers:
            stats[layer].update(probe_inputs(batch.states[layer], h), y)
        del y
    if keep_vocab and fitting:
        for layer in prep.layers:
            x = probe_inputs(batch.states[layer], h)
            state.vocab_x.setdefault(layer, []).append(x.reshape(-1, d).cpu())
    if fitting and not parallel:
        state.ngrams.update(batch.tokens)
        if keep_vocab:
            state.vocab_y.append(
                torch.stack([horizon_targets(batch.tokens, k, h, 0) for k in range(1, h + 1)], -1)
                .reshape(-1, h)
                .cpu()
            )


def _shift_like_one_process(
    model: Any, prep: Prepared, first: Tensor, stats: dict[int, StreamingRidge]
) -> None:
    """Every rank shifts its float32 products by the means of the phase's first batch, the
    shift one process takes (so each batch's products are the single process's)."""
    h = prep.config.horizon
    batch = next(iter_activations(model, first, prep.layers, prep.config.batch_size))
    y = stacked_targets(batch.target, h)
    for layer in prep.layers:
        stats[layer].set_shift(probe_inputs(batch.states[layer], h), y)


def _all_reduce_stats(state: FitState) -> None:
    """Sum the float64 sufficient statistics (and row counts) of every rank, in place."""
    ridges = [*state.train.values(), *state.val.values()]
    counts = torch.tensor([r.n for r in ridges], dtype=torch.float64)
    device = ridges[0].xtx.device if ridges else torch.device("cpu")
    counts = counts.to(device)
    dist.all_reduce_sum([t for r in ridges for t in r.sums()] + [counts])
    for r, n in zip(ridges, counts.tolist(), strict=True):
        r.n = int(n)


def solve_probes(state: FitState, horizons: int) -> dict[int, RidgeFit]:
    return {
        layer: fit_with_validation(state.train[layer], state.val[layer], groups=horizons)
        for layer in state.train
    }
