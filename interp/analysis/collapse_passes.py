"""The collapse analysis's forward passes: which lengths run in which pass, the hooks that stop
at the last layer needed, and the captured last-token states (see :mod:`interp.analysis.collapse`)."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from interp.analysis.collapse_inputs import PairFamily, ProgressFn
from interp.analysis.precision import (
    FloatFormat,
    is_bridge,
    precision_context,
)
from interp.errors import ConfigError


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
