"""Future-token probes end to end on a loaded model (``interp probe`` runs this through the
experiments layer, :mod:`interp.experiments.probe`).

Order (nothing is written before every check has passed):

1. :func:`prepare`: validate the request against the model (horizon, layers, dataset size,
   vocabulary-probe memory) and tokenise the held-out data;
2. (the experiments layer creates the run directory);
3. :func:`run_probes`: one pass over the fitting and validation blocks, each forward stopped at
   the last hook read (no final norm, no logits): every layer's residual stream and the final
   state go into streamed ridge statistics for all layers × horizons at once (and, for the
   vocabulary probe, the fitting activations into memory);
4. solve each probe, choose λ per (layer, horizon) on the validation blocks;
5. one pass over the test blocks: held-out top-1 / top-5 / cross-entropy per layer × horizon
   with bootstrap intervals, beside the unigram, bigram and (k = 1) model baselines, all over
   the same test positions: every one, or ``test_positions`` of them drawn uniformly (seeded)
   when the test blocks hold more; only those are decoded (:mod:`probes.decode`);
6. (the experiments layer writes ``results.json``, the ``analyses/probe`` copy and reports).

Only the probe kinds asked for are computed (``--probe vocab`` fits no ridge).  The first fitting
batch and a decode of a few rows are timed; from them come the estimated duration (a progress
note) and the bar's weights (% of the estimated work, so a test batch, ~10 decodes of the
vocabulary per position, moves it by its own cost).

Sizes where it matters (GPT-2 small: d_model 768, vocabulary 50257): the ridge products run in
float32 into float64 totals from d_model :data:`FLOAT32_PRODUCTS_FROM` up, and the decode in
bfloat16 when this CPU's native bfloat16 is measured faster (``decode_dtype="auto"``); smaller
models keep float64 products and float32 decoding, so their numbers are unchanged.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from interp import distributed as dist
from interp.config import _Config
from interp.errors import ConfigError, InterpError
from interp.progress import SILENT, Progress, Work
from probes.collect import (
    ActivationBatch,
    BlockSplit,
    held_out_documents,
    horizon_targets,
    human_bytes,
    iter_activations,
    layer_hook,
    layer_label,
    probe_inputs,
    split_blocks,
    stacked_targets,
    text_tokenizer,
    token_blocks,
)
from probes.decode import DTYPES, DecodeChoice, Decoder, choose_dtype
from probes.metrics import METRICS, NgramBaselines, bootstrap
from probes.ridge import RidgeFit, StreamingRidge, fit_with_validation
from probes.vocab import MIN_STEPS, MINIBATCH, fit_vocab_probe, memory_bytes, n_classes

PROBE_KINDS = ("future_lens", "vocab")
FLOAT32_PRODUCTS_FROM = 512  # d_model from which ridge products run in float32
CALIBRATION_ROWS = 128  # final states decoded to time (and check) the decode


@dataclass(frozen=True)
class ProbeConfig(_Config):
    """What ``interp probe`` was asked; inert (``validate`` checks the values, :func:`prepare`
    checks them against a model)."""

    model: str | None = None  # a load_model spec; None = the embedded demo model
    horizon: int = 4
    layers: tuple[int, ...] | None = None  # None = every layer 0..n_layers
    tokens: int = 50_000
    dataset: str | None = None  # a load_corpus spec; None = the model's own held-out documents
    batch_size: int = 16
    seq_len: int | None = None  # None = min(n_ctx, max(128, 4 * horizon))
    seed: int = 0
    device: str = "cpu"
    kinds: tuple[str, ...] = ("future_lens",)
    top_k: int = 256  # vocabulary probe classes (0 = the whole vocabulary)
    vocab_epochs: int = 4
    max_memory_mb: int = 4096  # vocabulary probe budget
    n_boot: int = 1000
    test_positions: int = 4096  # test positions scored (drawn when there are more); 0 = all
    decode_dtype: str = "auto"  # auto | float32 | bfloat16 (see probes.decode)

    def validate(self) -> None:
        def need(ok: bool, msg: str) -> None:
            if not ok:
                raise ConfigError(msg)

        need(self.horizon >= 1, f"horizon must be at least 1, got {self.horizon}")
        need(self.tokens >= 1, f"tokens must be positive, got {self.tokens}")
        need(self.batch_size >= 1, f"batch size must be positive, got {self.batch_size}")
        need(0 <= self.seed < 2**63, f"seed must be in [0, 2**63), got {self.seed}")
        need(self.seq_len is None or self.seq_len >= 2, f"seq-len must be >= 2, got {self.seq_len}")
        need(bool(self.kinds), "choose at least one probe kind")
        for kind in self.kinds:
            need(kind in PROBE_KINDS, f"unknown probe kind {kind!r}; choose from {PROBE_KINDS}")
        need(self.top_k >= 0, f"top-k must be >= 0, got {self.top_k}")
        need(self.vocab_epochs >= 1, f"vocab epochs must be >= 1, got {self.vocab_epochs}")
        need(self.max_memory_mb >= 1, "max memory must be positive")
        need(self.test_positions >= 0, f"test positions must be >= 0, got {self.test_positions}")
        need(
            self.decode_dtype in DTYPES,
            f"unknown decode dtype {self.decode_dtype!r}; choose from {', '.join(DTYPES)}",
        )
        if self.layers is not None:
            need(bool(self.layers), "--layers is empty")
            need(len(set(self.layers)) == len(self.layers), f"repeated layer in {self.layers}")


@dataclass
class Prepared:
    """A validated request: the token blocks and everything derived before any output exists."""

    config: ProbeConfig
    model_spec: str
    layers: list[int]
    seq_len: int
    blocks: torch.Tensor  # [block, pos]
    split: BlockSplit
    data_note: str
    vocab_memory: int | None = None
    notes: list[str] = field(default_factory=list)
    d_model: int = 0  # the model's residual width (the future-lens statistics grow with d^2)
    test_mask: Tensor | None = None  # [test block, probe_pos]: positions scored (None: all)

    @property
    def probe_positions(self) -> int:
        return self.seq_len - self.config.horizon

    @property
    def test_total(self) -> int:
        """Test positions in the test blocks."""
        return int(self.split.test.numel()) * self.probe_positions

    @property
    def test_scored(self) -> int:
        return self.test_total if self.test_mask is None else int(self.test_mask.sum())


def select_test_positions(n_test: int, n_pos: int, limit: int, seed: int) -> Tensor | None:
    """``limit`` of the ``n_test x n_pos`` test positions drawn uniformly without replacement
    (seeded) as a mask, or None when there are no more than ``limit`` (or ``limit`` is 0)."""
    total = n_test * n_pos
    if limit <= 0 or total <= limit:
        return None
    g = torch.Generator().manual_seed(seed + 1)
    pick = torch.randperm(total, generator=g)[:limit]
    mask = torch.zeros(total, dtype=torch.bool)
    mask[pick] = True
    return mask.view(n_test, n_pos)


def gpt2_style_bpe(tokenizer: Any) -> bool:
    """A byte-level BPE (GPT-2's kind): every space of an indentation is a token of its own, so
    source code makes poor held-out text (41% of the standard library's tokens are one space)."""
    hf = getattr(tokenizer, "hf", tokenizer)
    backend = getattr(hf, "backend_tokenizer", None)
    if backend is None:
        return False
    return type(backend.model).__name__ == "BPE" and "ByteLevel" in repr(backend.pre_tokenizer)


def parse_layers(text: str | None) -> tuple[int, ...] | None:
    """``"0,2,4"`` or ``"1-3"`` -> a tuple of ints; ``None``/``"all"`` -> None."""
    if text is None or text.strip().lower() in ("", "all"):
        return None
    out: list[int] = []
    for part in text.split(","):
        part = part.strip()
        span = re.fullmatch(r"(\d+)\s*-\s*(\d+)", part)
        if span:
            from interp.resources import MAX_LIST_VALUES, check_limit, range_size

            n = len(out) + range_size(int(span[1]), int(span[2]))
            check_limit(n, "--layers with", MAX_LIST_VALUES, "values")
        try:
            out.extend(range(int(span[1]), int(span[2]) + 1) if span else [int(part)])
        except ValueError as e:
            raise ConfigError(f"unknown layer {part!r}: give integers like 0,2,4 or 1-3") from e
    return tuple(out)


def model_n_ctx(model: Any) -> int:
    return int(model.cfg.n_ctx)


def prepare(model: Any, config: ProbeConfig, model_spec: str) -> Prepared:
    """Validate ``config`` against ``model`` and tokenise the held-out data (no files written)."""
    config.validate()
    n_layers, n_ctx = int(model.cfg.n_layers), model_n_ctx(model)
    h = config.horizon
    if h > n_ctx - 1:
        raise ConfigError(
            f"horizon {h} is beyond the model context: n_ctx={n_ctx} allows at most {n_ctx - 1}"
        )
    layers = list(config.layers) if config.layers is not None else list(range(n_layers + 1))
    bad = [layer for layer in layers if not 0 <= layer <= n_layers]
    if bad:
        raise ConfigError(
            f"unknown layer {bad[0]}: this model has layers 0 (embeddings) to {n_layers} "
            "(after the last block)"
        )
    hooks = getattr(model, "hook_dict", {})
    missing = [layer_hook(layer) for layer in layers if layer_hook(layer) not in hooks]
    if missing:
        raise InterpError(f"the model has no hook {missing[0]}")
    seq_len = config.seq_len or min(n_ctx, max(128, 4 * h))
    if seq_len > n_ctx:
        raise ConfigError(f"seq-len {seq_len} exceeds the model context n_ctx={n_ctx}")
    if h > seq_len - 1:
        raise ConfigError(f"horizon {h} needs sequences longer than --seq-len {seq_len}")
    tokenizer = text_tokenizer(model)
    default = "builtin:prose" if gpt2_style_bpe(tokenizer) else "builtin"
    docs, note = held_out_documents(
        config.model, config.dataset, config.tokens, config.seed, default=default
    )
    prose_default = config.dataset is None and default != "builtin" and note.startswith(default)
    blocks = token_blocks(docs, tokenizer, seq_len, config.tokens)
    if blocks.numel() and int(blocks.max()) >= int(model.cfg.d_vocab):
        raise InterpError(
            f"the tokenizer produced id {int(blocks.max())} beyond the model vocabulary "
            f"({model.cfg.d_vocab})"
        )
    split = split_blocks(int(blocks.shape[0]), config.seed)
    prepared = Prepared(config, model_spec, layers, seq_len, blocks, split, note)
    prepared.d_model = int(model.cfg.d_model)
    if prose_default:
        prepared.notes.append(
            "held-out text: the built-in prose (docstrings), the default for a byte-level BPE "
            "like GPT-2's, which spends a token on every space of code's indentation; "
            "--dataset builtin for code and prose"
        )
    n_pos = prepared.probe_positions
    prepared.test_mask = select_test_positions(
        int(split.test.numel()), n_pos, config.test_positions, config.seed
    )
    if prepared.test_mask is not None:
        prepared.notes.append(
            f"metrics (probes and baselines alike) average over {prepared.test_scored} test "
            f"positions drawn uniformly from the {prepared.test_total} of the test blocks "
            "(--test-positions; 0 scores every one)"
        )
    if "vocab" in config.kinds:
        rows = int(split.fit.numel()) * n_pos
        c = n_classes(int(model.cfg.d_vocab), config.top_k)
        need = memory_bytes(
            rows, len(layers), int(model.cfg.d_model), h, c, config.batch_size * n_pos
        )
        budget = config.max_memory_mb * 2**20
        if need > budget:
            raise InterpError(
                f"the vocabulary probe would need {human_bytes(need)} ({rows} rows × "
                f"{len(layers)} layers × d_model {model.cfg.d_model}, {c} classes × {h} "
                f"horizons) but --max-memory is {human_bytes(budget)}; use fewer --tokens, "
                "--layers or --top-k, or raise --max-memory"
            )
        prepared.vocab_memory = need
    if blocks.shape[0] * seq_len < config.tokens:
        prepared.notes.append(
            f"the held-out data gave {blocks.shape[0] * seq_len} tokens, fewer than the "
            f"{config.tokens} asked"
        )
    return prepared


# --------------------------------------------------------------------------- fitting


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
    d, h = int(model.cfg.d_model), cfg.horizon
    device = next(model.parameters()).device
    lens = "future_lens" in cfg.kinds
    products = ridge_products(d)
    layers = prep.layers if lens else []
    state = FitState(
        train={layer: StreamingRidge(d, h * d, device, products) for layer in layers},
        val={layer: StreamingRidge(d, h * d, device, products) for layer in layers},
        ngrams=NgramBaselines(int(model.cfg.d_vocab), h),
        products=products,
    )
    keep_vocab = "vocab" in cfg.kinds
    parallel = dist.is_distributed()
    if parallel and keep_vocab:
        raise ConfigError(
            "the vocabulary probe keeps its fitting rows in one process: run --probe vocab "
            "(or both) without torchrun; the future lens runs data-parallel"
        )
    phases = [("train", prep.split.fit)] + ([("val", prep.split.val)] if lens else [])
    for which, idx in phases:
        stats = state.train if which == "train" else state.val
        if parallel:  # this rank's batches (batch i to rank i % world); ranks sum their stats
            if lens and products != torch.float64 and idx.numel():
                _shift_like_one_process(model, prep, prep.blocks[idx[: cfg.batch_size]], stats)
            chunks = idx.split(cfg.batch_size)
            mine = [chunks[i] for i in dist.shard(int(idx.numel()), cfg.batch_size)]
            idx = torch.cat(mine) if mine else idx[:0]
        batches = iter_activations(model, prep.blocks[idx], prep.layers, cfg.batch_size)
        while True:
            t0 = time.perf_counter()
            batch = next(batches, None)
            if batch is None:
                break
            t1 = time.perf_counter()
            if on_first is not None:  # timed apart: the calibration is not this batch's work
                on_first(batch)
                on_first = None
            t1b = time.perf_counter()
            rows = batch.tokens.shape[0] * prep.probe_positions
            state.max_rows_held = max(state.max_rows_held, rows)
            if lens:
                y = stacked_targets(batch.target, h)
                if products == torch.float64:
                    y = y.to(torch.float64)
                for layer in prep.layers:
                    stats[layer].update(probe_inputs(batch.states[layer], h), y)
                del y
            if keep_vocab and which == "train":
                for layer in prep.layers:
                    x = probe_inputs(batch.states[layer], h)
                    state.vocab_x.setdefault(layer, []).append(x.reshape(-1, d).cpu())
            if which == "train" and not parallel:
                state.ngrams.update(batch.tokens)
                if keep_vocab:
                    state.vocab_y.append(
                        torch.stack(
                            [horizon_targets(batch.tokens, k, h, 0) for k in range(1, h + 1)], -1
                        )
                        .reshape(-1, h)
                        .cpu()
                    )
            if on_batch is not None:
                on_batch("fit" if which == "train" else "val", t1 - t0, time.perf_counter() - t1b)
    if parallel:
        _all_reduce_stats(state)
        fit_blocks = prep.blocks[prep.split.fit]  # the n-gram counts need tokens only
        for start in range(0, int(fit_blocks.shape[0]), cfg.batch_size):
            state.ngrams.update(fit_blocks[start : start + cfg.batch_size])
    return state


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
    h, d = cfg.horizon, int(model.cfg.d_model)
    decoder = decoder or Decoder(model)
    n_pos = prep.probe_positions
    fl, vp, uni, big, own = [], [], [], [], []
    weights = {layer: (fit.weight.float(), fit.bias.float()) for layer, fit in fits.items()}
    start = 0
    batches = iter_activations(model, prep.blocks[prep.split.test], prep.layers, cfg.batch_size)
    while True:
        t0 = time.perf_counter()
        batch = next(batches, None)
        if batch is None:
            break
        t1 = time.perf_counter()
        b = batch.tokens.shape[0]
        mask = (
            torch.ones(b, n_pos, dtype=torch.bool)
            if prep.test_mask is None
            else prep.test_mask[start : start + b]
        )
        start += b
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
        fl.append(sums.numpy())
        vp.append(vsums.numpy())
        masked = None if prep.test_mask is None else mask
        u, bg = state.ngrams.metrics(batch.tokens, masked)
        uni.append(u)
        big.append(bg)
        final = probe_inputs(batch.final, h)[seq_d, pos_d]  # the model's own head at t
        own.append(
            _dense_sums(decoder.metrics(final, targets[0]).cpu(), seq, pos, b, n_pos).numpy()
        )
        if on_batch is not None:
            on_batch("test", t1 - t0, time.perf_counter() - t1)
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


def _table(sums: np.ndarray, counts: np.ndarray, n_boot: int, seed: int) -> dict[str, Any]:
    """``{metric: {value, lo, hi}}`` with arrays over the non-sequence axes (``counts``: the
    scored positions of each sequence)."""
    value, lo, hi = bootstrap(sums, counts, n_boot=n_boot, seed=seed)
    return {
        m: {"value": value[..., j].tolist(), "lo": lo[..., j].tolist(), "hi": hi[..., j].tolist()}
        for j, m in enumerate(METRICS)
    }


def _pad_horizons(table: dict[str, Any], horizons: int) -> dict[str, Any]:
    """A k = 1 only table as lists over horizons (``None`` beyond k = 1)."""
    return {
        m: {key: [v, *([None] * (horizons - 1))] for key, v in cells.items()}
        for m, cells in table.items()
    }


# --------------------------------------------------------------------------- estimates


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


def run_probes(
    model: Any,
    prep: Prepared,
    progress: Progress = SILENT,
) -> dict[str, Any]:
    """Fit and evaluate every probe of ``prep``; returns the results dict (JSON-ready)."""
    cfg = prep.config
    torch.manual_seed(cfg.seed)
    work = Work(progress, "probe")
    decode: dict[str, Any] = {}

    def calibrate(batch: ActivationBatch) -> None:
        d = int(model.cfg.d_model)
        states = batch.final[:, :-1].reshape(-1, d)[:CALIBRATION_ROWS]
        targets = batch.tokens[:, 1:].reshape(-1)[:CALIBRATION_ROWS]
        decode["choice"] = choose_dtype(model, cfg.decode_dtype, states, targets)

    first: dict[str, float] = {}

    def batch_done(phase: str, forward_s: float, rest_s: float) -> None:
        if not first:  # the first batch: the plan and its estimate
            first.update(forward=forward_s, rest=rest_s)
            for name, (steps, each) in _phase_costs(
                model, prep, forward_s, rest_s, decode["choice"]
            ).items():
                work.phase(name, steps, each)
            progress.note(f"estimated duration {work.describe()} (from the first batch)")
            work.start()
        work.step(phase)

    t0 = time.perf_counter()
    state = collect_statistics(model, prep, on_batch=batch_done, on_first=calibrate)
    fits = solve_probes(state, cfg.horizon) if state.train else {}
    if fits:
        work.step("solve")
    t_fit = time.perf_counter() - t0
    vocab_probe = None
    t_vocab = 0.0
    if "vocab" in cfg.kinds:
        t1 = time.perf_counter()
        x_by_layer = {layer: torch.cat(xs) for layer, xs in state.vocab_x.items()}
        state.vocab_x.clear()
        targets = torch.cat(state.vocab_y)
        state.vocab_y.clear()
        vocab_probe = fit_vocab_probe(
            x_by_layer,
            targets,
            torch.from_numpy(state.ngrams.unigram),
            cfg.top_k,
            epochs=cfg.vocab_epochs,
            seed=cfg.seed,
        )
        del x_by_layer, targets
        t_vocab = time.perf_counter() - t1
        work.step("vocab")
    t2 = time.perf_counter()
    choice: DecodeChoice = decode["choice"]
    decoder = Decoder(model, choice.dtype)
    sums = evaluate(
        model, prep, fits, state, vocab_probe, on_batch=lambda *a: work.step("test"),
        decoder=decoder,
    )  # fmt: skip
    t_eval = time.perf_counter() - t2
    n_pos = prep.probe_positions
    counts = (
        np.full(int(prep.split.test.numel()), float(n_pos))
        if prep.test_mask is None
        else prep.test_mask.sum(1).double().numpy()
    )
    nb, seed = cfg.n_boot, cfg.seed
    n_layers = int(model.cfg.n_layers)
    fit_tokens = int(prep.split.fit.numel()) * n_pos
    notes = list(prep.notes)
    if choice.dtype != torch.float32:
        check = choice.check or {}
        notes.append(
            f"decoded in {decoder.name} ({choice.reason}); on {int(check.get('rows', 0))} "
            f"timed rows the top-1 token agreed with float32 on "
            f"{check.get('top1_agreement', 0):.1%} and the target's log-probability moved by at "
            f"most {check.get('max_abs_logprob_diff_at_target', 0):.2g} nats"
        )
    results: dict[str, Any] = {
        "kind": "probe",
        "model": prep.model_spec,
        "model_config": {
            k: int(getattr(model.cfg, k)) for k in ("n_layers", "d_model", "n_ctx", "d_vocab")
        },
        "data": prep.data_note,
        "layers": prep.layers,
        "layer_labels": [layer_label(layer, n_layers) for layer in prep.layers],
        "horizons": list(range(1, cfg.horizon + 1)),
        "seq_len": prep.seq_len,
        "tokens": {
            "fit": fit_tokens,
            "val": int(prep.split.val.numel()) * n_pos,
            "test": int(prep.split.test.numel()) * n_pos,
            "blocks": {
                "fit": int(prep.split.fit.numel()),
                "val": int(prep.split.val.numel()),
                "test": int(prep.split.test.numel()),
            },
        },
        "chance": {"top1": 1.0 / int(model.cfg.d_vocab), "ce": float(np.log(model.cfg.d_vocab))},
        "probes": {},
        "baselines": {
            "unigram": _table(sums["unigram"], counts, nb, seed),
            "bigram": _table(sums["bigram"], counts, nb, seed),
            "model": _pad_horizons(_table(sums["model"], counts, nb, seed), cfg.horizon),
        },
        "timing_s": {"collect_and_fit": t_fit, "vocab_fit": t_vocab, "evaluate": t_eval},
        "tokens_per_s": fit_tokens / t_fit if t_fit > 0 else None,
        "notes": notes,
        "evaluation": {
            "test_positions_scored": prep.test_scored,
            "test_positions": prep.test_total,
            "decode_dtype": decoder.name,
            "decode_choice": choice.reason,
            "decode_seconds_per_row": choice.seconds_per_row,
            "decode_check": choice.check,
            "ridge_products": str(state.products).removeprefix("torch."),
            "estimated_seconds": work.total_seconds(),
        },
    }
    if fits:
        results["probes"]["future_lens"] = {
            "description": (
                "ridge map from h_l(t) to the final residual state at t+k-1 (RMS-normalised), "
                "decoded through the model's final norm and unembedding; λ per (layer, "
                "horizon) chosen on validation blocks by squared error"
            ),
            "metrics": _table(sums["future_lens"], counts, nb, seed),
            "lambda_multiplier": [list(fits[layer].lambda_multipliers) for layer in prep.layers],
            "val_r2": [list(fits[layer].val_r2) for layer in prep.layers],
            "stored_activation_rows": state.max_rows_held,
        }
    if vocab_probe is not None:
        c = vocab_probe.n_classes
        results["probes"]["vocab"] = {
            "description": (
                f"softmax over the {c - 1} most frequent target tokens plus 'other' (the other "
                "mass spread over the remaining tokens by unigram frequency)"
                if vocab_probe.has_other
                else f"softmax over the whole vocabulary ({c} tokens)"
            )
            + f"; Adam, {cfg.vocab_epochs} epochs (at least {MIN_STEPS} steps), bias initialised to the log class prior",
            "classes": c,
            "top_k": cfg.top_k if vocab_probe.has_other else None,
            "memory_bytes": prep.vocab_memory,
            "metrics": _table(sums["vocab"], counts, nb, seed),
        }
    return results
