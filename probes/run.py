"""Future-token probes end to end on a loaded model (``interp probe`` runs this through the
experiments layer, :mod:`interp.experiments.probe`).

Order (nothing is written before every check has passed):

1. :func:`prepare`: validate the request against the model (horizon, layers, dataset size,
   vocabulary-probe memory) and tokenise the held-out data;
2. (the experiments layer creates the run directory);
3. :func:`run_probes`: one pass over the fitting and validation blocks: every layer's residual stream and the final
   state go into streamed ridge statistics for all layers × horizons at once (and, for the
   vocabulary probe, the fitting activations into memory);
4. solve each probe, choose λ per (layer, horizon) on the validation blocks;
5. one pass over the test blocks: held-out top-1 / top-5 / cross-entropy per layer × horizon
   with bootstrap intervals, beside the unigram, bigram and (k = 1) model baselines;
6. (the experiments layer writes ``results.json``, the ``analyses/probe`` copy and reports).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from interp.config import _Config
from interp.errors import ConfigError, InterpError
from probes.collect import (
    BlockSplit,
    decode,
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
from probes.metrics import METRICS, NgramBaselines, bootstrap, logit_metrics
from probes.ridge import RidgeFit, StreamingRidge, fit_with_validation
from probes.vocab import MIN_STEPS, fit_vocab_probe, memory_bytes, n_classes

PROBE_KINDS = ("future_lens", "vocab")
ProgressStart = Callable[[int, int], None]
ProgressStep = Callable[[int], None]


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

    @property
    def probe_positions(self) -> int:
        return self.seq_len - self.config.horizon


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
    docs, note = held_out_documents(config.model, config.dataset, config.tokens, config.seed)
    blocks = token_blocks(docs, tokenizer, seq_len, config.tokens)
    if blocks.numel() and int(blocks.max()) >= int(model.cfg.d_vocab):
        raise InterpError(
            f"the tokenizer produced id {int(blocks.max())} beyond the model vocabulary "
            f"({model.cfg.d_vocab})"
        )
    split = split_blocks(int(blocks.shape[0]), config.seed)
    prepared = Prepared(config, model_spec, layers, seq_len, blocks, split, note)
    prepared.d_model = int(model.cfg.d_model)
    if "vocab" in config.kinds:
        rows = int(split.fit.numel()) * prepared.probe_positions
        c = n_classes(int(model.cfg.d_vocab), config.top_k)
        need = memory_bytes(
            rows,
            len(layers),
            int(model.cfg.d_model),
            h,
            c,
            prepared.probe_positions,
            int(model.cfg.d_vocab),
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


@dataclass
class FitState:
    """Streamed statistics for every layer (targets of all horizons side by side)."""

    train: dict[int, StreamingRidge]
    val: dict[int, StreamingRidge]
    ngrams: NgramBaselines
    max_rows_held: int = 0  # activation rows alive at once (one batch), whatever the token count
    vocab_x: dict[int, list[torch.Tensor]] = field(default_factory=dict)
    vocab_y: list[torch.Tensor] = field(default_factory=list)


def collect_statistics(
    model: Any,
    prep: Prepared,
    on_batch: Callable[[], None] | None = None,
) -> FitState:
    """One pass over the fitting and validation blocks, all layers × horizons at once."""
    cfg = prep.config
    d, h = int(model.cfg.d_model), cfg.horizon
    device = next(model.parameters()).device
    state = FitState(
        train={layer: StreamingRidge(d, h * d, device) for layer in prep.layers},
        val={layer: StreamingRidge(d, h * d, device) for layer in prep.layers},
        ngrams=NgramBaselines(int(model.cfg.d_vocab), h),
    )
    keep_vocab = "vocab" in cfg.kinds
    for which, idx in (("train", prep.split.fit), ("val", prep.split.val)):
        stats = state.train if which == "train" else state.val
        for batch in iter_activations(model, prep.blocks[idx], prep.layers, cfg.batch_size):
            y = stacked_targets(batch.target, h).to(torch.float64)
            rows = y.shape[0] * y.shape[1]
            state.max_rows_held = max(state.max_rows_held, rows)
            for layer in prep.layers:
                x = probe_inputs(batch.states[layer], h)
                stats[layer].update(x, y)
                if keep_vocab and which == "train":
                    state.vocab_x.setdefault(layer, []).append(x.reshape(-1, d).cpu())
            if which == "train":
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
                on_batch()
    return state


def solve_probes(state: FitState, horizons: int) -> dict[int, RidgeFit]:
    return {
        layer: fit_with_validation(state.train[layer], state.val[layer], groups=horizons)
        for layer in state.train
    }


@torch.no_grad()
def evaluate(
    model: Any,
    prep: Prepared,
    fits: dict[int, RidgeFit],
    state: FitState,
    vocab_probe: Any | None = None,
    on_batch: Callable[[], None] | None = None,
) -> dict[str, np.ndarray]:
    """Per-sequence metric sums on the test blocks: ``[seq, layer, horizon, 3]`` per probe kind,
    ``[seq, horizon, 3]`` for the n-gram baselines and ``[seq, 3]`` for the model (k = 1)."""
    cfg = prep.config
    h, d = cfg.horizon, int(model.cfg.d_model)
    fl, vp, uni, big, own = [], [], [], [], []
    weights = {layer: (fit.weight.float(), fit.bias.float()) for layer, fit in fits.items()}
    for batch in iter_activations(
        model, prep.blocks[prep.split.test], prep.layers, cfg.batch_size, with_logits=True
    ):
        b = batch.tokens.shape[0]
        n_pos = prep.probe_positions
        tok_targets = [horizon_targets(batch.tokens, k, h, 0) for k in range(1, h + 1)]
        sums = torch.zeros(b, len(prep.layers), h, 3)
        vsums = torch.zeros(b, len(prep.layers), h, 3)
        for i, layer in enumerate(prep.layers):
            x = probe_inputs(batch.states[layer], h)
            w, bias = weights[layer]
            pred = x @ w + bias  # [batch, probe_pos, horizon * d_model]
            for k in range(h):
                logits = decode(model, pred[..., k * d : (k + 1) * d])
                sums[:, i, k] = logit_metrics(logits, tok_targets[k]).cpu()
            if vocab_probe is not None:  # one sequence at a time: [pos, horizon, d_vocab]
                for s in range(b):
                    logp = vocab_probe.vocab_logprobs(layer, x[s].cpu()).unsqueeze(0)
                    for k in range(h):
                        vsums[s, i, k] = logit_metrics(
                            logp[:, :, k], tok_targets[k][s : s + 1].cpu()
                        )[0]
        fl.append(sums.numpy())
        vp.append(vsums.numpy())
        u, bg = state.ngrams.metrics(batch.tokens)
        uni.append(u)
        big.append(bg)
        assert batch.logits is not None
        own.append(logit_metrics(batch.logits[:, :n_pos], tok_targets[0]).cpu().numpy())
        if on_batch is not None:
            on_batch()
    out = {
        "future_lens": np.concatenate(fl),
        "unigram": np.concatenate(uni),
        "bigram": np.concatenate(big),
        "model": np.concatenate(own),
    }
    if vocab_probe is not None:
        out["vocab"] = np.concatenate(vp)
    return out


def _table(sums: np.ndarray, per_seq: int, n_boot: int, seed: int) -> dict[str, Any]:
    """``{metric: {value, lo, hi}}`` with arrays over the non-sequence axes."""
    counts = np.full(sums.shape[0], float(per_seq))
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


def run_probes(
    model: Any,
    prep: Prepared,
    on_start: ProgressStart | None = None,
    on_step: ProgressStep | None = None,
) -> dict[str, Any]:
    """Fit and evaluate every probe of ``prep``; returns the results dict (JSON-ready)."""
    cfg = prep.config
    torch.manual_seed(cfg.seed)
    n_batches = sum(
        -(-int(idx.numel()) // cfg.batch_size)
        for idx in (prep.split.fit, prep.split.val, prep.split.test)
    )
    done = 0

    def tick() -> None:
        nonlocal done
        done += 1
        if on_step is not None:
            on_step(done)

    if on_start is not None:
        on_start(0, n_batches)
    t0 = time.perf_counter()
    state = collect_statistics(model, prep, on_batch=tick)
    fits = solve_probes(state, cfg.horizon)
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
    t2 = time.perf_counter()
    sums = evaluate(model, prep, fits, state, vocab_probe, on_batch=tick)
    t_eval = time.perf_counter() - t2
    n_pos = prep.probe_positions
    nb, seed = cfg.n_boot, cfg.seed
    n_layers = int(model.cfg.n_layers)
    fit_tokens = int(prep.split.fit.numel()) * n_pos
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
        "probes": {
            "future_lens": {
                "description": (
                    "ridge map from h_l(t) to the final residual state at t+k-1 (RMS-normalised), "
                    "decoded through the model's final norm and unembedding; λ per (layer, "
                    "horizon) chosen on validation blocks by squared error"
                ),
                "metrics": _table(sums["future_lens"], n_pos, nb, seed),
                "lambda_multiplier": [
                    list(fits[layer].lambda_multipliers) for layer in prep.layers
                ],
                "val_r2": [list(fits[layer].val_r2) for layer in prep.layers],
                "stored_activation_rows": state.max_rows_held,
            }
        },
        "baselines": {
            "unigram": _table(sums["unigram"], n_pos, nb, seed),
            "bigram": _table(sums["bigram"], n_pos, nb, seed),
            "model": _pad_horizons(_table(sums["model"], n_pos, nb, seed), cfg.horizon),
        },
        "timing_s": {"collect_and_fit": t_fit, "vocab_fit": t_vocab, "evaluate": t_eval},
        "tokens_per_s": fit_tokens / t_fit if t_fit > 0 else None,
        "notes": list(prep.notes),
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
            "metrics": _table(sums["vocab"], n_pos, nb, seed),
        }
    return results
