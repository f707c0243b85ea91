"""Representational collapse (Barbero et al. 2024, Thm 4.2) measured across float formats.

For a family of pairs (v_n, v*_n), where v*_n is v_n with its last token repeated, we measure
at every layer (``blocks.{l}.hook_resid_post`` and the final state: ``ln_final.hook_normalized``,
or ``ln_final.hook_out`` on a TransformerBridge) the distance between the last-token states of
v_n and v*_n as a function of n: the infinity norm, the L2 norm, the relative L2
(``|a - b| / |a|``) and the fraction of coordinates bit-identical in the format; and the
**collapse length**: the smallest n from which (up to the longest n tried) the infinity-norm
distance is within the format's resolution (eps x the largest coordinate: the paper's
criterion), ``None`` when they are still apart at the longest n; beside it the first n at
resolution and the stricter bit-identical length.  :func:`verdicts` states per format which
collapsed, where (per layer), and which did not.

Families (the *content* c_1..c_n follows an optional prompt, which starts with BOS when the
tokenizer has one):

* ``ones``: the paper's prompt "How many ones are in the following sequence?" + n ones;
* ``digits``: n-1 random digits (fixed by the seed) then one "1"; v* ends in two ones;
* ``pattern``: a user text or token pattern repeated cyclically to n tokens.

With a separator (``every = k > 0``) a separator token is inserted after every k content
tokens (never at the end); v*_n still repeats the last content token.  The separator sweep
measures the lengths n that are not multiples of k (for k > 1): there v*_n continues the
separated pattern, so every pair of the sweep is read off one forward pass, as the plain one;
at a multiple of k, v*_n would put a content token where the pattern puts a separator, a
sequence no longer one extends, so each such n would cost a pass of its own (GPT-2, k = 3:
~340 passes, ~140x the plain sweep).

One forward pass covers every length (the causal prefix trick): in a causal model the state
at position t depends only on tokens 0..t, so the last-token state of a sequence that is a
prefix of a longer one is read off the longer one's pass.  Sequences are grouped into chains
of prefixes; each chain costs one pass (``ones``: a single pass for the whole curve).  When a
sequence is not a prefix of another (``digits``: every v_n ends in a 1 that the longer
sequences replace by a random digit; a pattern's v*_n; a separator after the n-th token) it
gets its own pass; the result reports the number of passes and says so.  Chains are batched
with right padding (harmless under a causal mask).  ``method="per-length"`` runs every
sequence on its own: the slow, obvious reference the tests and the benchmark compare with.

Token units (digits, ``1``, the separator) must each be one token of the model's tokenizer.
A model without a tokenizer (a synthetic-task run, a test model) uses token ids: digit d is
id d, the separator is given as an id, and the prompt is empty.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import torch

from interp.analysis.collapse_inputs import (  # noqa: F401  (re-exported: where they always were)
    FAMILIES,
    METHODS,
    PAPER_PROMPT,
    CollapseConfig,
    PairFamily,
    _encode,
    _single_token,
    build_family,
    context_of,
    positions_extrapolate,
    separator_id,
)
from interp.analysis.collapse_metrics import (  # noqa: F401  (re-exported)
    COLLAPSE_RULE,
    MIN_RUN,
    collapse_lengths,
    measure_pairs,
    pair_metrics,
)
from interp.analysis.collapse_passes import (  # noqa: F401  (re-exported)
    batch_costs,
    capture_states,
    final_state_hook,
    layer_names,
    plan_passes,
)
from interp.analysis.precision import (
    is_bridge,
    parse_formats,
    resolve_mode,
)
from interp.config import ModelConfig
from interp.errors import ConfigError
from interp.progress import SILENT, Progress, Work

__all__ = [
    "FAMILIES",
    "PAPER_PROMPT",
    "CollapseConfig",
    "PairFamily",
    "build_family",
    "collapse_lengths",
    "layer_names",
    "measure_pairs",
    "run_collapse",
]


def _short(name: str) -> str:
    return (
        name.replace(".hook_resid_post", "")
        .replace(".hook_normalized", "")
        .replace(".hook_out", "")
    )


def verdicts(runs: Sequence[dict[str, Any]], names: Sequence[str]) -> list[str]:
    """One plain line per format (and variant): did it collapse, from which n, at which layers."""
    final = names[-1]
    lines = []
    for r in runs:
        lengths = r["lengths"]
        span = f"n = {lengths[0]}..{lengths[-1]}"
        label = f"{r['format']} ({r['mode']})" + (
            ", with separator" if r["variant"] == "separator" else ""
        )
        n = r["collapse_length"][final]
        first = r["first_collapsed"][final]
        if n is not None:
            head = f"{label}: COLLAPSED at {_short(final)} from n = {n} on (within {span})"
            if first is not None and first < n:
                head += f"; first at resolution at n = {first}"
        elif first is not None:
            head = (
                f"{label}: did NOT collapse at {_short(final)} within {span}: at resolution "
                f"first at n = {first}, apart again at larger n"
            )
        else:
            head = (
                f"{label}: did NOT collapse at {_short(final)} within {span} (never at resolution)"
            )
        if r["identical_length"][final] is not None:
            head += f"; bit-identical from n = {r['identical_length'][final]}"
        layers = ", ".join(
            f"{_short(name)} {r['collapse_length'][name] if r['collapse_length'][name] is not None else '-'}"
            for name in names
        )
        lines.append(f"{head}. Collapse n by layer: {layers}")
    return lines


def _model_info(model: Any) -> dict[str, Any]:

    cfg = model.cfg
    own = getattr(model, "config", None)  # interp's ModelConfig (a bridge's .config is HF's)
    own = own if isinstance(own, ModelConfig) else None
    positional = own.positional if own else getattr(cfg, "positional_embedding_type", None)
    relative: bool | None = None
    if own is not None:
        from interp.models.positional.base import _REGISTRY

        cls = _REGISTRY.get(own.positional)
        relative = bool(cls.relative) if cls is not None else None
    elif positional is not None:
        relative = str(positional) not in ("standard", "absolute", "learned")
    return {
        "class": type(model).__name__,
        "bridge": is_bridge(model),
        "n_layers": int(cfg.n_layers),
        "d_model": int(cfg.d_model),
        "n_ctx": int(cfg.n_ctx),
        "d_vocab": int(cfg.d_vocab),
        "positional": str(positional) if positional is not None else None,
        "positions_fade": relative,
    }


def _lengths(family: PairFamily, cfg: CollapseConfig, n_ctx: int) -> list[int]:
    if cfg.min_length < 1:
        raise ConfigError(f"lengths start at 1, not {cfg.min_length}")
    fit = 0
    while family.tokens_needed(fit + 1) <= n_ctx:
        fit += 1
    if cfg.max_length is None:
        if fit < cfg.min_length:
            raise ConfigError(
                f"the prompt leaves no room: length {cfg.min_length} needs "
                f"{family.tokens_needed(cfg.min_length)} tokens, the model context is {n_ctx}"
            )
        top = fit
    else:
        top = cfg.max_length
        if top < cfg.min_length:
            raise ConfigError(f"empty length range {cfg.min_length}..{top}")
        if family.tokens_needed(top) > n_ctx:
            raise ConfigError(
                f"length {top} needs {family.tokens_needed(top)} tokens with the prompt, beyond "
                f"the model context {n_ctx} (longest possible: {fit})"
            )
    return list(range(cfg.min_length, top + 1))


def validate(model: Any, cfg: CollapseConfig, device: str | torch.device = "cpu") -> dict[str, Any]:
    """Check ``cfg`` against ``model`` (raises ``ConfigError``); returns the resolved plan."""
    formats = parse_formats(list(cfg.formats))
    modes = {f.name: resolve_mode(cfg.mode, f, device) for f in formats}
    if cfg.method not in METHODS:
        raise ConfigError(f"unknown method {cfg.method!r}; choose from {', '.join(METHODS)}")
    if cfg.every < 0:
        raise ConfigError(f"--every must be >= 0, not {cfg.every}")
    if cfg.batch_tokens < 1:
        raise ConfigError("batch_tokens must be positive")
    family = build_family(model, cfg)
    context = context_of(model, cfg)
    lengths = _lengths(family, cfg, context)
    sep = separator_id(model, cfg.separator) if cfg.every > 0 else None
    sep_family = family.with_separator(sep, cfg.every) if sep is not None else None
    sep_lengths: list[int] = []
    if sep_family is not None:
        sep_lengths = [n for n in lengths if sep_family.tokens_needed(n) <= context]
        if cfg.every > 1:
            # at a multiple of k, v*_n puts a content token where the pattern puts a separator:
            # not a prefix of any longer sequence, one pass each (k = 3 on GPT-2: 340 passes)
            sep_lengths = [n for n in sep_lengths if n % cfg.every != 0]
    return {
        "formats": formats,
        "modes": modes,
        "family": family,
        "lengths": lengths,
        "separator": sep,
        "sep_family": sep_family,
        "sep_lengths": sep_lengths,
        "names": layer_names(model),
    }


def run_collapse(
    model: Any,
    cfg: CollapseConfig,
    device: str | torch.device = "cpu",
    progress: Progress = SILENT,
    plan: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The full sweep: every format x (plain, separated) -> curves and collapse lengths."""
    plan = plan or validate(model, cfg, device)
    method = "per-length" if cfg.method == "per-length" else "one-pass"
    family: PairFamily = plan["family"]
    units: list[tuple[str, PairFamily, list[int]]] = [("plain", family, plan["lengths"])]
    if plan["sep_family"] is not None and plan["sep_lengths"]:
        units.append(("separator", plan["sep_family"], plan["sep_lengths"]))
    d_model = int(model.cfg.d_model)
    work = Work(progress, "collapse sweep")
    jobs = []
    for fmt in plan["formats"]:
        for variant, fam, lengths in units:
            costs = batch_costs(fam, lengths, method, cfg.batch_tokens, d_model)
            jobs.append((fmt, variant, fam, lengths, f"{fmt.short} {variant}", costs))
    timed: dict[str, float] = {}  # seconds per unit of cost, measured on the first batch

    def batch_done(name: str, costs: list[float], done: int, t_start: float) -> None:
        if not timed:
            timed["rate"] = (time.perf_counter() - t_start) / max(costs[0], 1e-9)
            for *_, job_name, job_costs in jobs:
                work.phase(
                    job_name, len(job_costs), timed["rate"] * sum(job_costs) / len(job_costs)
                )
            progress.note(
                f"estimated duration {work.describe()} (from the first batch; another format's "
                "speed can differ: the bar follows each as it runs)"
            )
            work.start()
        work.step(name)

    runs = []
    for fmt, variant, fam, lengths, name, costs in jobs:
        t_start = time.perf_counter()
        result = measure_pairs(
            model,
            fam,
            lengths,
            fmt,
            plan["modes"][fmt.name],
            method,
            cfg.batch_tokens,
            device,
            progress=lambda done, _total, name=name, costs=costs, t=t_start: batch_done(
                name, costs, done, t
            ),
        )
        result["variant"] = variant
        result["lengths"] = lengths
        runs.append(result)
        if timed:  # this unit's own speed for what is left (its bar weight stays as planned)
            timed["measured_s"] = timed.get("measured_s", 0.0) + time.perf_counter() - t_start
    timing = {"estimated_seconds": work.total_seconds(), "seconds": timed.get("measured_s")}
    info = _model_info(model)
    notes = _notes(cfg, plan, family, info, runs)
    return _results(cfg, plan, family, info, runs, notes, timing)


def _notes(
    cfg: CollapseConfig,
    plan: dict[str, Any],
    family: PairFamily,
    info: dict[str, Any],
    runs: list[dict[str, Any]],
) -> list[str]:
    """What a reader of the sweep must know: the family's notes, then the model's and the
    plan's (positions that may not fade, a bridge's emulation, shared pass plans, the
    separator sweep's lengths)."""
    notes = list(family.notes)
    if info["positions_fade"] is False:
        notes.append(
            f"positional encoding {info['positional']!r}: learned absolute positions can keep "
            "lengths n and n+1 apart, so this model may not collapse at all"
        )
    if info["bridge"] and any(m == "emulated" for m in plan["modes"].values()):
        notes.append(
            "TransformerBridge model: emulated rounding covers only the hooks the bridge "
            "exposes; computations inside HF modules between hooks stay float32"
        )
    shared: dict[str, list[str]] = {}  # the same pass plan in every format: one note
    for r in runs:
        if r["passes"] > 1 and r["method"] != "per-length":
            shared.setdefault(f"{r['variant']}: {r['how']}", []).append(r["format"])
    for how, fmts in shared.items():
        notes.append(f"{how} ({', '.join(fmts)})")
    sep_lengths = plan["sep_lengths"]
    if plan["sep_family"] is not None and cfg.every > 1:
        notes.append(
            f"the separator sweep measures the lengths that are not multiples of {cfg.every} "
            "(there v* continues the separated pattern, so one forward pass covers them all)"
        )
    if plan["sep_family"] is not None and sep_lengths and sep_lengths[-1] < plan["lengths"][-1]:
        notes.append(
            f"the separator sweep stops at n = {sep_lengths[-1]} "
            "(its sequences are longer and must fit the context)"
        )
    if cfg.every > 0 and plan["separator"] is None:
        notes.append("no separator sweep: the model has no tokenizer and no separator id was given")
    return notes


def _results(
    cfg: CollapseConfig,
    plan: dict[str, Any],
    family: PairFamily,
    info: dict[str, Any],
    runs: list[dict[str, Any]],
    notes: list[str],
    timing: dict[str, Any],
) -> dict[str, Any]:
    """The sweep's results: the curves of every run, the collapse lengths at the final layer
    with and without separators, the verdict lines."""
    final = plan["names"][-1]
    verdict_lines = verdicts(runs, plan["names"])
    plain_final = {
        r["format"]: r["collapse_length"][final] for r in runs if r["variant"] == "plain"
    }
    sep_final = {
        r["format"]: r["collapse_length"][final] for r in runs if r["variant"] == "separator"
    }
    return {
        "kind": "collapse",
        "config": cfg.to_dict(),
        "model": info,
        "family": family.description,
        "separator": {"token": plan["separator"], "every": cfg.every}
        if plan["separator"] is not None
        else None,
        "layers": plan["names"],
        "final_layer": final,
        "lengths": plan["lengths"],
        "runs": runs,
        "summary": {
            "collapse_length": plain_final,
            "collapse_length_separator": sep_final,
            "collapsed": [f for f, n in plain_final.items() if n is not None],
            "not_collapsed": [f for f, n in plain_final.items() if n is None],
        },
        "verdicts": verdict_lines,
        "notes": notes,
        "timing": timing,
    }
