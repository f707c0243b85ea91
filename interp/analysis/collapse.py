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

import math
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from interp.analysis.precision import (
    FORMATS,
    FloatFormat,
    bits_equal,
    is_bridge,
    parse_formats,
    precision_context,
    resolve_mode,
)
from interp.config import ModelConfig, _Config
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

PAPER_PROMPT = "How many ones are in the following sequence?"
FAMILIES = ("ones", "digits", "pattern")
METHODS = ("auto", "one-pass", "per-length")
ProgressFn = Callable[[int, int], None]


@dataclass(frozen=True)
class CollapseConfig(_Config):
    """What ``interp collapse`` measures (inert; validated by :func:`run_collapse`)."""

    family: str = "ones"
    prompt: str | None = None  # None: the paper's prompt (models with a tokenizer), else empty
    prompt_tokens: tuple[int, ...] | None = None  # token ids replacing BOS + prompt
    pattern: str | None = None  # text, for family="pattern"
    tokens: tuple[int, ...] | None = None  # token ids, for family="pattern"
    min_length: int = 1
    max_length: int | None = None  # None: as long as the context allows
    formats: tuple[str, ...] = tuple(FORMATS)
    mode: str = "auto"  # auto | emulated | native
    separator: str | int | None = ","  # text (one token) or a token id
    every: int = 3  # separator every k content tokens; 0 = no separator sweep
    method: str = "auto"  # auto = one-pass with per-length fallback | per-length
    seed: int = 0
    batch_tokens: int = 8192  # padded tokens per forward batch
    bos: bool = True  # start with the tokenizer's BOS when it has one
    # tokens the longest sequence may hold; None: the model's context.  Past it only for an
    # interp model whose positions need no trained table (RoPE, ALiBi, none: ``relative``)
    context: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """The fields, ``context`` only when set (a sweep inside the model's context stores
        what it stored before the field existed: its results and resume checks unchanged)."""
        body = super().to_dict()
        if body.get("context") is None:
            body.pop("context", None)
        return body


@dataclass(frozen=True)
class PairFamily:
    """Token pairs (v_n, v*_n) for n in ``lengths``."""

    name: str
    description: str
    prefix: tuple[int, ...]  # BOS + prompt tokens
    content: Callable[[int], list[int]]  # n -> c_1..c_n
    separator: int | None = None
    every: int = 0
    notes: tuple[str, ...] = field(default_factory=tuple)

    def sequence(self, n: int) -> list[int]:
        c = self.content(n)
        if self.separator is None or self.every <= 0:
            body = c
        else:
            body = []
            for i, tok in enumerate(c):
                if i and i % self.every == 0:
                    body.append(self.separator)
                body.append(tok)
        return list(self.prefix) + body

    def pair(self, n: int) -> tuple[list[int], list[int]]:
        v = self.sequence(n)
        return v, v + [v[-1]]

    def tokens_needed(self, n: int) -> int:
        """Tokens of v*_n."""
        extra = (n - 1) // self.every if self.separator is not None and self.every > 0 else 0
        return len(self.prefix) + n + extra + 1

    def with_separator(self, separator: int, every: int) -> PairFamily:
        return PairFamily(
            self.name,
            f"{self.description}, separator every {every}",
            self.prefix,
            self.content,
            separator,
            every,
            self.notes,
        )


# --------------------------------------------------------------------------- tokens


def _encode(tokenizer: Any, text: str) -> list[int]:
    try:
        ids = tokenizer.encode(text, add_special_tokens=False)
    except TypeError:
        ids = tokenizer.encode(text)
    return [int(i) for i in ids]


def _single_token(tokenizer: Any, text: str, what: str) -> int:
    ids = _encode(tokenizer, text)
    if len(ids) != 1:
        raise ConfigError(
            f"{what} {text!r} is {len(ids)} tokens for this tokenizer, not one; "
            "give token ids with --token-ids instead"
        )
    return ids[0]


def _vocab(model: Any) -> int:
    return int(model.cfg.d_vocab)


def _check_ids(ids: Sequence[int], model: Any, what: str) -> None:
    bad = [i for i in ids if not 0 <= int(i) < _vocab(model)]
    if bad:
        raise ConfigError(
            f"{what} token id {bad[0]} is outside the vocabulary (0..{_vocab(model) - 1})"
        )


def build_family(model: Any, cfg: CollapseConfig) -> PairFamily:
    """The pair family of ``cfg`` in the model's tokens (without separators)."""
    if cfg.family not in FAMILIES:
        raise ConfigError(f"unknown family {cfg.family!r}; choose from {', '.join(FAMILIES)}")
    tok = getattr(model, "tokenizer", None)
    notes: list[str] = []
    prefix: list[int] = []
    if tok is not None:
        bos = getattr(tok, "bos_token_id", None)
        if cfg.bos and bos is not None:
            prefix.append(int(bos))
        prompt = PAPER_PROMPT if cfg.prompt is None and cfg.family != "pattern" else cfg.prompt
        if prompt:
            prefix += _encode(tok, prompt)
        digits = [_single_token(tok, str(d), "digit") for d in range(10)]
    else:
        if cfg.prompt:
            raise ConfigError("this model has no tokenizer, so it takes no text prompt; give ids")
        prompt = ""
        digits = [d % _vocab(model) for d in range(10)]
        notes.append("the model has no tokenizer: digit d is token id d and the prompt is empty")
    one = digits[1]
    if cfg.family == "ones":
        desc = f"{prompt!r} + n ones" if prompt else "n ones"

        def content(n: int) -> list[int]:
            return [one] * n

    elif cfg.family == "digits":
        g = torch.Generator().manual_seed(cfg.seed)
        pool = torch.randint(0, 10, (max(context_of(model, cfg), 1),), generator=g).tolist()
        desc = (f"{prompt!r} + " if prompt else "") + "n-1 random digits + 1 (v* ends in 1 1)"

        def content(n: int) -> list[int]:
            return [digits[d] for d in pool[: n - 1]] + [one]

    else:
        if cfg.tokens is not None:
            unit = [int(t) for t in cfg.tokens]
        elif cfg.pattern is not None:
            if tok is None:
                raise ConfigError(
                    "this model has no tokenizer: give the pattern as --token-ids ids"
                )
            unit = _encode(tok, cfg.pattern)
        else:
            raise ConfigError("family 'pattern' needs --pattern TEXT or --token-ids IDS")
        if not unit:
            raise ConfigError("empty pattern: give at least one token")
        _check_ids(unit, model, "pattern")
        shown = cfg.pattern if cfg.tokens is None else ",".join(map(str, unit))
        desc = (f"{prompt!r} + " if prompt else "") + f"pattern {shown!r} repeated to n tokens"

        def content(n: int) -> list[int]:
            return [unit[i % len(unit)] for i in range(n)]

    if cfg.prompt_tokens is not None:
        prefix = [int(t) for t in cfg.prompt_tokens]
        desc = f"prompt ids {','.join(map(str, prefix))} + " + desc
    _check_ids(prefix, model, "prompt")
    return PairFamily(cfg.family, desc, tuple(prefix), content, notes=tuple(notes))


def separator_id(model: Any, separator: str | int | None) -> int | None:
    if separator is None or separator == "":
        return None
    tok = getattr(model, "tokenizer", None)
    if isinstance(separator, int) or (isinstance(separator, str) and separator.strip().isdigit()):
        if tok is None or isinstance(separator, int):
            sid = int(separator)
            _check_ids([sid], model, "separator")
            return sid
    if tok is None:
        return None  # no tokenizer and no id: the separator sweep is skipped
    return _single_token(tok, str(separator), "separator")


# --------------------------------------------------------------------------- passes


def final_state_hook(model: Any) -> str:
    """The hook of the final state (after the final norm, what the unembedding reads).

    On a TransformerBridge ``ln_final.hook_normalized`` is the norm's float32 intermediate
    before its weight (HF norms upcast), so the final state is ``ln_final.hook_out``."""
    if is_bridge(model) and "ln_final.hook_out" in model.hook_dict:
        return "ln_final.hook_out"
    return "ln_final.hook_normalized"


def layer_names(model: Any) -> list[str]:
    names = [f"blocks.{layer}.hook_resid_post" for layer in range(int(model.cfg.n_layers))]
    names.append(final_state_hook(model))
    missing = [n for n in names if n not in model.hook_dict]
    if missing:
        raise ConfigError(f"the model has no hook {missing[0]!r}")
    return names


class _Stop(Exception):
    """Raised by the last capture hook: nothing after the final norm is needed."""


def plan_passes(
    sequences: Sequence[tuple[int, ...]], method: str
) -> tuple[list[tuple[int, ...]], list[tuple[int, int]]]:
    """Group sequences into passes. Returns (roots, where): sequence i is read at ``where[i] =
    (root index, position)``.  ``one-pass``: a sequence that is a prefix of a longer one shares
    its pass; ``per-length``: one pass per sequence."""
    where: list[tuple[int, int]] = [(-1, -1)] * len(sequences)
    roots: list[tuple[int, ...]] = []
    if method == "per-length":
        for i, s in enumerate(sequences):
            where[i] = (len(roots), len(s) - 1)
            roots.append(s)
        return roots, where
    order = sorted(range(len(sequences)), key=lambda i: -len(sequences[i]))
    for i in order:
        s = sequences[i]
        found = -1
        for r in range(len(roots) - 1, -1, -1):  # the latest (shortest) root first
            root = roots[r]
            if len(root) >= len(s) and root[: len(s)] == s:
                found = r
                break
        if found < 0:
            found = len(roots)
            roots.append(s)
        where[i] = (found, len(s) - 1)
    return roots, where


def _batches(
    roots: Sequence[tuple[int, ...]], batch_tokens: int, per_length: bool
) -> list[list[int]]:
    if per_length:
        return [[r] for r in range(len(roots))]
    order = sorted(range(len(roots)), key=lambda r: len(roots[r]))
    batches: list[list[int]] = []
    current: list[int] = []
    for r in order:
        width = len(roots[r])  # sorted ascending: the batch's padded width is this one
        if current and width * (len(current) + 1) > batch_tokens:
            batches.append(current)
            current = []
        current.append(r)
    if current:
        batches.append(current)
    return batches


def batch_costs(
    family: PairFamily, lengths: Sequence[int], method: str, batch_tokens: int, d_model: int
) -> list[float]:
    """Relative cost of each forward batch of :func:`measure_pairs` (same plan): padded tokens
    times ``1 + width / (6 d_model)`` (attention grows with the width, the rest does not)."""
    seqs: dict[tuple[int, ...], None] = {}
    for n in lengths:
        v, vs = family.pair(n)
        seqs.setdefault(tuple(v))
        seqs.setdefault(tuple(vs))
    roots, _ = plan_passes(list(seqs), method)
    costs = []
    for batch in _batches(roots, batch_tokens, method == "per-length"):
        width = max(len(roots[r]) for r in batch)
        costs.append(len(batch) * width * (1 + width / (6 * max(d_model, 1))))
    return costs or [1.0]


def capture_states(
    model: Any,
    sequences: Sequence[tuple[int, ...]],
    names: Sequence[str],
    fmt: FloatFormat,
    mode: str,
    method: str = "one-pass",
    batch_tokens: int = 8192,
    device: str | torch.device = "cpu",
    progress: ProgressFn | None = None,
) -> tuple[dict[str, Tensor], int]:
    """Last-token states ``{name: [sequence, d_model]}`` (float32) and the number of passes."""
    roots, where = plan_passes(sequences, method)
    batches = _batches(roots, batch_tokens, method == "per-length")
    by_root: dict[int, list[int]] = {}
    for i, (r, _) in enumerate(where):
        by_root.setdefault(r, []).append(i)
    out: dict[str, Tensor] = {}
    last_name = names[-1]
    with torch.no_grad(), precision_context(model, fmt, mode) as (run_model, round_hooks):
        for done, batch in enumerate(batches):
            width = max(len(roots[r]) for r in batch)
            tokens = torch.zeros(len(batch), width, dtype=torch.long)
            for b, r in enumerate(batch):
                tokens[b, : len(roots[r])] = torch.tensor(roots[r], dtype=torch.long)
            rows: list[int] = []
            cols: list[int] = []
            targets: list[int] = []
            for b, r in enumerate(batch):
                for i in by_root.get(r, []):
                    rows.append(b)
                    cols.append(where[i][1])
                    targets.append(i)
            row_t, col_t, tgt_t = torch.tensor(rows), torch.tensor(cols), torch.tensor(targets)
            seen: dict[str, Tensor] = {}

            def capture(
                x: Tensor,
                hook: Any,
                name: str,
                seen: dict[str, Tensor] = seen,
                rows: Tensor = row_t,
                cols: Tensor = col_t,
            ) -> None:
                seen[name] = x[rows, cols].detach().to(torch.float32).cpu()
                if name == last_name and len(seen) == len(names):
                    raise _Stop

            capture_hooks = [
                (name, (lambda x, hook, name=name: capture(x, hook, name))) for name in names
            ]
            try:
                with warnings.catch_warnings():
                    # a bridge's norm warns that a hook edited hook_normalized: the rounding did
                    warnings.filterwarnings("ignore", message="A forward hook edited hook_scale")
                    run_model.run_with_hooks(
                        tokens.to(device), fwd_hooks=[*_as_filter(round_hooks), *capture_hooks]
                    )
            except _Stop:
                pass
            missing = [n for n in names if n not in seen]
            if missing:
                raise ConfigError(f"hook {missing[0]!r} did not fire in the forward pass")
            for name in names:
                if name not in out:
                    out[name] = torch.empty(len(sequences), seen[name].shape[-1])
                out[name][tgt_t] = seen[name]
            if progress is not None:
                progress(done + 1, len(batches))
    return out, len(roots)


def _as_filter(
    round_hooks: list[tuple[str, Callable[..., Any]]],
) -> list[tuple[Any, Callable[..., Any]]]:
    """All rounding hooks as one name filter (one sweep over the hook dict, not one per name)."""
    if not round_hooks:
        return []
    names = {n for n, _ in round_hooks}
    fn = round_hooks[0][1]
    return [(lambda name: name in names, fn)]


# --------------------------------------------------------------------------- metrics


def pair_metrics(a: Tensor, b: Tensor, fmt: FloatFormat) -> dict[str, list[float]]:
    """Distances between rows of ``a`` and ``b`` ([pair, d_model], float32)."""
    diff = a.double() - b.double()
    linf = diff.abs().amax(-1)
    l2 = diff.norm(dim=-1)
    ref = a.double().norm(dim=-1)
    scale = a.double().abs().amax(-1)
    rel = torch.where(ref > 0, l2 / ref.clamp_min(1e-300), torch.where(l2 > 0, math.inf, 0.0))
    same = bits_equal(a, b, fmt).double().mean(-1)
    return {
        "linf": linf.tolist(),
        "l2": l2.tolist(),
        "relative": rel.tolist(),
        "identical_fraction": same.tolist(),
        "resolution": (scale * fmt.eps).tolist(),
    }


# the collapse rule: the distance stays at resolution at every length tried from n to the
# longest, and over at least this many of them (one length at resolution at the end is noise)
MIN_RUN = 3
COLLAPSE_RULE = (
    f"at resolution at every length tried from n to the longest, and at least {MIN_RUN} of them"
)


def collapse_lengths(
    lengths: Sequence[int], identical: Sequence[bool], min_run: int = 1
) -> tuple[int | None, int | None]:
    """(collapse length, first identical n): the smallest n from which every later n tried is
    identical, provided that run holds at least ``min_run`` lengths (``None`` otherwise, and
    when the longest is not), and the first identical n (``None`` if none)."""
    collapse: int | None = None
    run = 0
    for n, same in zip(reversed(lengths), reversed(identical), strict=True):
        if not same:
            break
        collapse, run = n, run + 1
    first = next((n for n, same in zip(lengths, identical, strict=True) if same), None)
    return (collapse if run >= min_run else None), first


def measure_pairs(
    model: Any,
    family: PairFamily,
    lengths: Sequence[int],
    fmt: FloatFormat,
    mode: str,
    method: str = "one-pass",
    batch_tokens: int = 8192,
    device: str | torch.device = "cpu",
    progress: ProgressFn | None = None,
) -> dict[str, Any]:
    """Curves and collapse lengths of one family in one format and mode."""
    names = layer_names(model)
    index: dict[tuple[int, ...], int] = {}
    pairs: list[tuple[int, int]] = []
    for n in lengths:
        v, vs = family.pair(n)
        ids = []
        for s in (tuple(v), tuple(vs)):
            ids.append(index.setdefault(s, len(index)))
        pairs.append((ids[0], ids[1]))
    sequences = list(index)
    states, passes = capture_states(
        model, sequences, names, fmt, mode, method, batch_tokens, device, progress
    )
    ia = torch.tensor([p[0] for p in pairs])
    ib = torch.tensor([p[1] for p in pairs])
    curves: dict[str, Any] = {}
    collapse: dict[str, int | None] = {}
    first: dict[str, int | None] = {}
    bitwise: dict[str, int | None] = {}
    for name in names:
        m = pair_metrics(states[name][ia], states[name][ib], fmt)
        curves[name] = m
        resolved = [
            d is not None and d <= r for d, r in zip(m["linf"], m["resolution"], strict=True)
        ]
        collapse[name], first[name] = collapse_lengths(list(lengths), resolved, MIN_RUN)
        identical = [f == 1.0 for f in m["identical_fraction"]]
        bitwise[name], _ = collapse_lengths(list(lengths), identical, MIN_RUN)
    one_pass = method != "per-length"
    if not one_pass:
        how = f"per-length passes: {passes} forward passes (one per sequence)"
    elif passes == 1:
        how = f"one forward pass covers all {len(lengths)} lengths"
    else:
        how = (
            f"{passes} forward passes for {len(sequences)} sequences: "
            f"{passes - 1} sequence(s) are not prefixes of a longer one and got their own pass"
        )
    return {
        "format": fmt.name,
        "mode": mode,
        "method": "per-length"
        if not one_pass
        else ("one-pass" if passes == 1 else "prefix-chains"),
        "passes": passes,
        "sequences": len(sequences),
        "how": how,
        "curves": curves,
        "collapse_length": collapse,
        "first_collapsed": first,
        "identical_length": bitwise,
        "collapse_rule": COLLAPSE_RULE,
    }


# --------------------------------------------------------------------------- the analysis


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


def context_of(model: Any, cfg: CollapseConfig) -> int:
    """The longest sequence the sweep may run: ``cfg.context``, else the model's context.
    Past the model's context only where its positions need no trained table (an interp model
    with a ``relative`` encoding); anything else is refused in one line."""
    n_ctx = int(model.cfg.n_ctx)
    if cfg.context is None:
        return n_ctx
    if isinstance(cfg.context, bool) or not isinstance(cfg.context, int) or cfg.context < 2:
        raise ConfigError(f"context must be a whole number of tokens >= 2, not {cfg.context!r}")
    if cfg.context > n_ctx and not positions_extrapolate(model):
        raise ConfigError(
            f"context {cfg.context} is past the model's {n_ctx} tokens, and its positions are "
            "learned (or unknown) up to there; give at most its context"
        )
    return cfg.context


def positions_extrapolate(model: Any) -> bool:
    """Does ``model`` run past its context: an interp model whose positional encoding adds no
    trained position table (RoPE, ALiBi, none)?"""
    own = getattr(model, "config", None)
    if not isinstance(own, ModelConfig) or getattr(model, "pos_embed", None) is not None:
        return False
    from interp.models.positional.base import _REGISTRY

    cls = _REGISTRY.get(own.positional)
    return bool(cls is not None and cls.relative)


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
    notes = list(family.notes)
    final = plan["names"][-1]
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
