"""The collapse analysis's metrics: distances of v and v* states in a format, and the collapse
rule (the lengths at resolution; see :mod:`interp.analysis.collapse`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from interp.analysis.collapse_inputs import PairFamily, ProgressFn
from interp.analysis.collapse_passes import capture_states, layer_names
from interp.analysis.precision import (
    FloatFormat,
    bits_equal,
)


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
