"""Report figures that must not mislead: axis ranges and markers on log axes, log-domain
smoothing, readable evaluation curves."""

from __future__ import annotations

import math

import pytest
import torch
from helpers import tiny_model

from interp.analysis.collapse import CollapseConfig, run_collapse
from interp.report import figures
from interp.report.collapse import distance_figure
from interp.report.grok import curves_figure


def _in_log_range(fig, lo: float, hi: float) -> None:
    for ann in fig.layout.annotations:
        if ann.yref == "paper" and ann.xref in (None, "x"):
            assert lo <= 10**ann.x <= hi, (ann.text, ann.x)


def test_collapse_chart_axis_spans_the_lengths_when_a_collapse_is_marked() -> None:
    torch.manual_seed(0)
    model = tiny_model(n_ctx=12, d_vocab=12)
    cfg = CollapseConfig(formats=("float32", "bfloat16"), every=0, max_length=9, prompt="")
    results = run_collapse(model, cfg)
    final = results["final_layer"]
    marked = [r["collapse_length"][final] for r in results["runs"]]
    assert any(n is not None for n in marked), "the test needs a collapse to mark"
    fig = distance_figure(results)
    lengths = results["lengths"]
    assert fig.layout.xaxis.type == "log"
    assert tuple(fig.layout.xaxis.range) == pytest.approx(
        (math.log10(lengths[0]), math.log10(lengths[-1]))
    )
    assert len(fig.layout.annotations) == sum(n is not None for n in marked)
    _in_log_range(fig, lengths[0], lengths[-1])


def test_grok_step_markers_sit_at_their_step_on_the_log_axis() -> None:
    metrics = [
        {"step": s, "split": sp, "loss": 1.0 / s, "accuracy": 0.5}
        for s in range(1, 600)
        for sp in ("train", "val")
    ]
    fig = curves_figure(metrics, {"memorisation_step": 487, "grokking_step": 550}, "loss", "t")
    texts = {a.text: a.x for a in fig.layout.annotations}
    assert texts["memorised @ 487"] == pytest.approx(math.log10(487))
    _in_log_range(fig, 1, 600)


def test_losses_on_a_log_axis_are_smoothed_in_the_log_domain() -> None:
    steps = list(range(1, 201))
    loss = [10 ** (-6 * s / 200) for s in steps]  # six decades
    rows = [{"step": s, "split": "train", "loss": v} for s, v in zip(steps, loss, strict=True)]
    fig = figures.loss_curves(rows)
    assert fig.layout.yaxis.type == "log"
    ema = next(t for t in fig.data if t.name == "train (EMA)")
    assert list(ema.y) == pytest.approx(figures.log_ema(loss))
    # in the log domain the smoothed curve keeps falling to the end: within a decade of the raw
    # loss at the last step (a linear EMA of six decades lags by orders of magnitude there)
    assert ema.y[-1] < 10 * loss[-1]
    assert figures.ema(loss)[-1] > 50 * loss[-1]


def test_many_evaluations_are_drawn_as_a_line_not_a_band_of_markers() -> None:
    rows = [{"step": s, "split": "val", "loss": 1.0 + 1.0 / s} for s in range(1, 501)]
    fig = figures.loss_curves(rows)
    val = next(t for t in fig.data if t.name == "val")
    assert val.mode == "lines"
    few = figures.loss_curves(rows[:20])
    assert next(t for t in few.data if t.name == "val").mode == "lines+markers"


@pytest.mark.parametrize("n", range(1, 31))
def test_ema_of_every_short_curve_is_finite_and_within_its_range(n: int) -> None:
    """A curve of 5-9 points once gave a negative smoothing weight and divided by zero (the
    training section of a 4-step grok run failed)."""
    from interp.report.figures import ema

    values = [float((i * 7) % 5) for i in range(n)]
    smooth = ema(values)
    assert len(smooth) == n
    assert all(min(values) - 1e-9 <= v <= max(values) + 1e-9 for v in smooth)
