"""One sentence per result, with its numbers, guarded by the trivial baseline.

Each experiment's ``run`` stores ``headline`` in its results; the CLI prints it first and the
report's first screen lists it, linked to its section.  A headline never claims a finding the
run did not earn: where the numbers do not clear the stated baseline by the stated margin it
says "inconclusive" and what did not happen.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

SHORT_FORMATS = {
    "float32": "fp32",
    "float16": "fp16",
    "bfloat16": "bf16",
    "float8_e4m3fn": "fp8 e4m3",
    "float8_e5m2": "fp8 e5m2",
}
SQUASH_MARGIN = 0.05  # share of the sensitivity the first quarter must lead the last one by
QUARTER = 0.25  # each quarter's share if sensitivity were uniform


def _layer(name: str) -> str:
    for suffix in (".hook_resid_post", ".hook_normalized", ".hook_out"):
        name = name.removesuffix(suffix)
    return name


def _fmt(name: str) -> str:
    return SHORT_FORMATS.get(name, name)


def collapse_headline(results: Mapping[str, Any]) -> str:
    """Where each format collapses at the final layer (baseline: fp32, no rounding beyond it),
    and whether separators delayed it."""
    final, lengths = results["final_layer"], results["lengths"]
    span = f"n = {lengths[0]}..{lengths[-1]}"
    runs = {(r["format"], r["variant"]): r["collapse_length"][final] for r in results["runs"]}
    formats = list(dict.fromkeys(f for f, v in runs if v == "plain"))
    hit = [(f, runs[(f, "plain")]) for f in formats if runs[(f, "plain")] is not None]
    if not hit:
        return (
            f"No collapse: at {_layer(final)} the last-token states of v and v* stay apart in "
            f"every format tried ({', '.join(_fmt(f) for f in formats)}) within {span}."
        )
    never = [_fmt(f) for f in formats if runs[(f, "plain")] is None]
    text = f"Collapse at {_layer(final)}: " + ", ".join(f"{_fmt(f)} from n = {n}" for f, n in hit)
    if never:
        text += f"; {', '.join(never)} not within {span}"
    delayed = [(f, n, runs.get((f, "separator"))) for f, n in hit if (f, "separator") in runs]
    if delayed:
        helped = [
            f"{_fmt(f)} {'never' if s is None else f'n = {s}'}"
            for f, n, s in delayed
            if s is None or s > n
        ]
        text += (
            f"; with separators: {', '.join(helped)}" if helped else "; separators did not delay it"
        )
    return text + "."


def squash_headline(results: Mapping[str, Any]) -> str:
    """Share of the last token's sensitivity carried by the first vs the last quarter of the
    positions (baseline: uniform, a quarter each), averaged over the prompts."""
    final = results["final_layer"]
    shares = [p["shares"][final] for p in results["prompts"].values()]
    first = sum(s["first_quarter"] for s in shares) / len(shares)
    last = sum(s["last_quarter_excl_last"] for s in shares) / len(shares)
    numbers = (
        f"the first quarter of the positions carries {first:.2f} of the last token's "
        f"sensitivity at {_layer(final)}, the last quarter (before the last token) {last:.2f} "
        f"(uniform: {QUARTER:.2f} each; {len(shares)} prompt(s))"
    )
    if first > last + SQUASH_MARGIN:
        return f"Over-squashing: {numbers}."
    return (
        f"Inconclusive: no over-squashing signal, {numbers}; the theorem predicts the early "
        f"positions to lead by more than {SQUASH_MARGIN:.2f}."
    )


def _best(rows: Sequence[Sequence[float]], h: int) -> tuple[int, float]:
    values = [row[h] for row in rows]
    i = max(range(len(values)), key=values.__getitem__)
    return i, values[i]


PROBE_TRY = "try a trained --model, more --tokens, or the vocab --probe"


def probe_headline(results: Mapping[str, Any]) -> str:
    """The best layer's top-1 at each horizon against the bigram baseline (the token at t
    predicting the token at t+k from counts, computed on the same data): a layer beats it only
    when the lower end of its 95% bootstrap interval lies above the baseline (the margin)."""
    kind = "future_lens" if "future_lens" in results["probes"] else next(iter(results["probes"]))
    metrics = results["probes"][kind]["metrics"]["top1"]
    value, lo = metrics["value"], metrics["lo"]
    bigram = results["baselines"]["bigram"]["top1"]["value"]
    labels, horizons = results["layer_labels"], results["horizons"]
    beaten, parts = [], []
    for h, k in enumerate(horizons):
        i, best = _best(value, h)
        parts.append(f"k = {k}: {best:.3f} ({labels[i]}) vs bigram {bigram[h]:.3f}")
        if any(row[h] > bigram[h] for row in lo):  # some layer's interval clears it
            beaten.append(k)
    head = f"Future-token probes ({kind.replace('_', ' ')}, top-1 of the best layer): " + "; ".join(
        parts
    )
    margin = "(a layer's 95% interval must lie above it)"
    missed = ", ".join(str(k) for k in horizons if k not in beaten)
    future = [k for k in beaten if k >= 2]
    if not beaten:
        return (
            f"{head}. Inconclusive: no layer beats the bigram baseline at k = {missed} "
            f"{margin}; {PROBE_TRY}."
        )
    if future:
        rest = f"; not at k = {missed}" if missed else ""
        return f"{head}. Beyond token statistics at k = {', '.join(map(str, future))}{rest}."
    if len(horizons) > 1:
        return (
            f"{head}. Inconclusive beyond the next token: no layer beats the bigram baseline at "
            f"k = {missed} {margin}; {PROBE_TRY}."
        )
    return f"{head}. Above the bigram baseline at k = 1 (the next token only)."


__all__ = ["collapse_headline", "probe_headline", "squash_headline"]
