"""How the counting experiments score a model: held-out accuracy at the answer position, the
threshold m_thr(d) where accuracy falls through :data:`THRESHOLD` as m grows (linearly
interpolated), its linear fit against d, and the summary of a grid of cells."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from interp.models.transformer import HookedTransformer
from interp.tasks.counting import _CountTask

THRESHOLD = 0.8


@torch.no_grad()
def evaluate_count_model(
    model: HookedTransformer,
    task: _CountTask,
    samples: int,
    seed: int,
    chunk: int = 256,
    on_chunk: Callable[[int], None] | None = None,
) -> dict[str, float]:
    """Held-out accuracy and loss at the answer position; ``chance`` = best constant guess.
    ``on_chunk(n)`` is told after each chunk of ``n`` sequences."""
    g = torch.Generator().manual_seed(10_000_019 + seed)
    was_training = model.training
    model.eval()
    correct, loss, answers = 0, 0.0, []
    done = 0
    while done < samples:
        size = min(chunk, samples - done)
        tokens, ans = task.labelled(size, g)
        logits = model(tokens.to(model.device))[:, -1, : task.n_classes].to(torch.float64)
        correct += int((logits.argmax(-1).cpu() == ans).sum())
        loss += float(torch.nn.functional.cross_entropy(logits.cpu(), ans, reduction="sum"))
        answers.append(ans)
        done += size
        if on_chunk is not None:
            on_chunk(size)
    model.train(was_training)
    counts = torch.bincount(torch.cat(answers), minlength=task.n_classes)
    return {
        "accuracy": correct / samples,
        "loss": loss / samples,
        "chance": float(counts.max()) / samples,
    }


def m_threshold(
    ms: Sequence[int], accs: Sequence[float], threshold: float = THRESHOLD
) -> dict[str, Any]:
    """Where accuracy first falls below ``threshold`` as m grows, linearly interpolated.

    Returns ``{"m_thr": value or None, "censored": None | "below" | "above"}``: ``below`` when
    the smallest m is already under the threshold, ``above`` when it never falls within the grid.
    """
    pairs = sorted(zip(ms, accs, strict=True))
    if not pairs:
        return {"m_thr": None, "censored": None}
    if pairs[0][1] < threshold:
        return {"m_thr": None, "censored": "below"}
    for (m0, a0), (m1, a1) in zip(pairs, pairs[1:], strict=False):
        if a0 >= threshold > a1:
            m_thr = m0 + (a0 - threshold) / (a0 - a1) * (m1 - m0)
            return {"m_thr": m_thr, "censored": None}
    return {"m_thr": None, "censored": "above"}


def fit_line(xs: Sequence[float], ys: Sequence[float]) -> dict[str, float] | None:
    """Least-squares ``y = slope x + intercept`` with R^2; None with fewer than two points."""
    if len(xs) < 2 or len(set(xs)) < 2:
        return None
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    slope = sxy / sxx
    intercept = my - slope * mx
    ss_tot = sum((y - my) ** 2 for y in ys)
    ss_res = sum((y - slope * x - intercept) ** 2 for x, y in zip(xs, ys, strict=True))
    r2 = 1 - ss_res / ss_tot if ss_tot > 0 else 1.0
    return {"slope": slope, "intercept": intercept, "r2": r2}


def summarise(cells: Sequence[dict[str, Any]], threshold: float = THRESHOLD) -> dict[str, Any]:
    """m_thr per d, the linear fit, and the 'accuracy drops once m > d' comparison."""
    by_d: dict[int, list[dict[str, Any]]] = {}
    for c in cells:
        by_d.setdefault(int(c["d"]), []).append(c)
    thresholds = []
    for d in sorted(by_d):
        rows = sorted(by_d[d], key=lambda c: c["m"])
        thr = m_threshold([c["m"] for c in rows], [c["accuracy"] for c in rows], threshold)
        inside = [c["accuracy"] for c in rows if c["m"] <= d]
        beyond = [c["accuracy"] for c in rows if c["m"] > d]
        thresholds.append(
            {
                "d": d,
                **thr,
                "mean_acc_m_le_d": sum(inside) / len(inside) if inside else None,
                "mean_acc_m_gt_d": sum(beyond) / len(beyond) if beyond else None,
            }
        )
    finite = [t for t in thresholds if t["m_thr"] is not None]
    fit = fit_line([t["d"] for t in finite], [t["m_thr"] for t in finite])
    return {"threshold": threshold, "thresholds": thresholds, "fit": fit}
