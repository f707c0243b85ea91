"""Step 6 of ``interp probe``: the per-sequence metric sums of the test pass as the results dict
(JSON-ready; the experiments layer writes it as ``results.json``): bootstrap tables per probe and
baseline, the token counts, timings and the notes on how the test pass decoded."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from probes.collect import layer_label
from probes.decode import DecodeChoice, Decoder
from probes.metrics import METRICS, bootstrap
from probes.prepare import Prepared
from probes.ridge import RidgeFit
from probes.statistics import FitState
from probes.vocab import MIN_STEPS


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


def probe_results(
    model: Any,
    prep: Prepared,
    state: FitState,
    fits: dict[int, RidgeFit],
    vocab_probe: Any | None,
    sums: Mapping[str, np.ndarray],
    decoder: Decoder,
    choice: DecodeChoice,
    timing: dict[str, float],
    estimated_seconds: float,
) -> dict[str, Any]:
    """The results dict of one probe run (``timing``: collect_and_fit, vocab_fit, evaluate)."""
    cfg = prep.config
    n_pos = prep.probe_positions
    counts = (
        np.full(int(prep.split.test.numel()), float(n_pos))
        if prep.test_mask is None
        else prep.test_mask.sum(1).double().numpy()
    )
    nb, seed = cfg.n_boot, cfg.seed
    n_layers = int(model.cfg.n_layers)
    fit_tokens = int(prep.split.fit.numel()) * n_pos
    t_fit = timing["collect_and_fit"]
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
        "tokens": _token_counts(prep),
        "chance": {"top1": 1.0 / int(model.cfg.d_vocab), "ce": float(np.log(model.cfg.d_vocab))},
        "probes": {},
        "baselines": {
            "unigram": _table(sums["unigram"], counts, nb, seed),
            "bigram": _table(sums["bigram"], counts, nb, seed),
            "model": _pad_horizons(_table(sums["model"], counts, nb, seed), cfg.horizon),
        },
        "timing_s": dict(timing),
        "tokens_per_s": fit_tokens / t_fit if t_fit > 0 else None,
        "notes": [*prep.notes, *_decode_notes(decoder, choice)],
        "evaluation": {
            "test_positions_scored": prep.test_scored,
            "test_positions": prep.test_total,
            "decode_dtype": decoder.name,
            "decode_choice": choice.reason,
            "decode_seconds_per_row": choice.seconds_per_row,
            "decode_check": choice.check,
            "ridge_products": str(state.products).removeprefix("torch."),
            "estimated_seconds": estimated_seconds,
        },
    }
    if fits:
        results["probes"]["future_lens"] = _future_lens_entry(prep, state, fits, sums, counts)
    if vocab_probe is not None:
        results["probes"]["vocab"] = _vocab_entry(prep, vocab_probe, sums, counts)
    return results


def _token_counts(prep: Prepared) -> dict[str, Any]:
    n_pos = prep.probe_positions
    return {
        "fit": int(prep.split.fit.numel()) * n_pos,
        "val": int(prep.split.val.numel()) * n_pos,
        "test": int(prep.split.test.numel()) * n_pos,
        "blocks": {
            "fit": int(prep.split.fit.numel()),
            "val": int(prep.split.val.numel()),
            "test": int(prep.split.test.numel()),
        },
    }


def _decode_notes(decoder: Decoder, choice: DecodeChoice) -> list[str]:
    """How far a decode in another dtype than float32 moved the timed rows (none in float32)."""
    if choice.dtype == torch.float32:
        return []
    check = choice.check or {}
    return [
        f"decoded in {decoder.name} ({choice.reason}); on {int(check.get('rows', 0))} "
        f"timed rows the top-1 token agreed with float32 on "
        f"{check.get('top1_agreement', 0):.1%} and the target's log-probability moved by at "
        f"most {check.get('max_abs_logprob_diff_at_target', 0):.2g} nats"
    ]


def _future_lens_entry(
    prep: Prepared,
    state: FitState,
    fits: dict[int, RidgeFit],
    sums: Mapping[str, np.ndarray],
    counts: np.ndarray,
) -> dict[str, Any]:
    cfg = prep.config
    return {
        "description": (
            "ridge map from h_l(t) to the final residual state at t+k-1 (RMS-normalised), "
            "decoded through the model's final norm and unembedding; λ per (layer, "
            "horizon) chosen on validation blocks by squared error"
        ),
        "metrics": _table(sums["future_lens"], counts, cfg.n_boot, cfg.seed),
        "lambda_multiplier": [list(fits[layer].lambda_multipliers) for layer in prep.layers],
        "val_r2": [list(fits[layer].val_r2) for layer in prep.layers],
        "stored_activation_rows": state.max_rows_held,
    }


def _vocab_entry(
    prep: Prepared, vocab_probe: Any, sums: Mapping[str, np.ndarray], counts: np.ndarray
) -> dict[str, Any]:
    cfg = prep.config
    c = vocab_probe.n_classes
    return {
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
        "metrics": _table(sums["vocab"], counts, cfg.n_boot, cfg.seed),
    }
