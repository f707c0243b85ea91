"""Pure figure builders: metrics rows -> ``go.Figure``.

Every function accepts the rows of ``metrics.jsonl`` (any sequence of mappings), never
raises on empty or partial input, and returns a figure with a "no data yet" annotation
when there is nothing to draw.  Rows with a missing or non-finite value are skipped.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go

__all__ = [
    "FONT_FAMILY",
    "accuracy_curves",
    "as_finite",
    "ema",
    "empty_figure",
    "grad_norm_curve",
    "loss_curves",
    "lr_schedule",
    "per_position_loss",
    "rows_for_split",
    "series",
    "style_figure",
]

FONT_FAMILY = 'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif'

TRAIN_COLOR = "#2563eb"
VAL_COLOR = "#dc2626"
TRAIN_EVAL_COLOR = "#7c3aed"
NEUTRAL_COLOR = "#0f766e"


def style_figure(
    fig: go.Figure,
    *,
    title: str | None = None,
    x_title: str | None = None,
    y_title: str | None = None,
    height: int = 380,
    hovermode: str | bool = "x unified",
) -> go.Figure:
    """Apply the report's house style (``plotly_white``, compact margins, top legend)."""
    fig.update_layout(
        template="plotly_white",
        title={"text": title, "x": 0.01, "xanchor": "left"} if title else None,
        height=height,
        margin={"l": 64, "r": 24, "t": 56 if title else 28, "b": 48},
        font={"family": FONT_FAMILY, "size": 13},
        hovermode=hovermode,
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.0, "xanchor": "right", "x": 1.0},
    )
    if x_title is not None:
        fig.update_xaxes(title_text=x_title)
    if y_title is not None:
        fig.update_yaxes(title_text=y_title)
    return fig


def empty_figure(title: str | None = None, message: str = "no data yet") -> go.Figure:
    """A blank figure with a centred annotation."""
    fig = go.Figure()
    fig.add_annotation(
        text=message,
        x=0.5,
        y=0.5,
        xref="paper",
        yref="paper",
        showarrow=False,
        font={"size": 16, "color": "#656d76"},
    )
    style_figure(fig, title=title, height=220, hovermode=False)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return fig


# --------------------------------------------------------------------------- data helpers


def as_finite(value: Any) -> float | None:
    """``value`` as a float if it is a finite number (not a bool), else ``None``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def rows_for_split(metrics: Sequence[Mapping[str, Any]], split: str) -> list[Mapping[str, Any]]:
    """Rows of one split that have an integer-like step, sorted by step (stable)."""
    rows = [
        r
        for r in metrics
        if isinstance(r, Mapping)
        and r.get("split") == split
        and as_finite(r.get("step")) is not None
    ]
    return sorted(rows, key=lambda r: float(r["step"]))


def series(
    metrics: Sequence[Mapping[str, Any]], split: str, key: str
) -> tuple[list[float], list[float]]:
    """``(steps, values)`` for ``key`` in rows of ``split``; non-finite values are dropped."""
    xs: list[float] = []
    ys: list[float] = []
    for r in rows_for_split(metrics, split):
        y = as_finite(r.get(key))
        if y is not None:
            xs.append(r["step"])
            ys.append(y)
    return xs, ys


def ema(values: Sequence[float], smoothing: float | None = None) -> list[float]:
    """Debiased exponential moving average (as in TensorBoard).

    With ``smoothing=None`` the weight is chosen from the number of points so that the
    effective window is about a tenth of the curve (at most ~50 points).
    """
    n = len(values)
    if n == 0:
        return []
    if smoothing is None:
        smoothing = max(0.0, min(0.98, 1.0 - 10.0 / n))  # none up to 10 points
    out: list[float] = []
    acc = 0.0
    weight = 0.0
    for v in values:
        acc = smoothing * acc + (1.0 - smoothing) * v
        weight = smoothing * weight + (1.0 - smoothing)
        out.append(acc / weight)
    return out


def _spans_decade(values: Sequence[float]) -> bool:
    positive = [v for v in values if v > 0]
    if not positive or len(positive) < len(values):
        return False
    return max(positive) / min(positive) > 10.0


# --------------------------------------------------------------------------- figures


def line_trace(
    x: Sequence[Any],
    y: Sequence[Any],
    name: str,
    color: str,
    width: float,
    *,
    dash: str | None = None,
    markers: bool | int = False,
    opacity: float | None = None,
    hover: str = "%{y:.4f}",
) -> go.Scatter:
    """One line in the report's style; ``markers`` True or a marker size adds markers."""
    line: dict[str, Any] = {"color": color, "width": width}
    if dash is not None:
        line["dash"] = dash
    extra: dict[str, Any] = {}
    if markers is not True and markers:
        extra["marker"] = {"size": markers}
    if opacity is not None:
        extra["opacity"] = opacity
    return go.Scatter(
        x=x,
        y=y,
        name=name,
        mode="lines+markers" if markers else "lines",
        line=line,
        hovertemplate=hover,
        **extra,
    )


def log_ema(values: Sequence[float], smoothing: float | None = None) -> list[float]:
    """The EMA of ``log(values)``, exponentiated: the smoothing a log axis shows as smoothing
    (a linear EMA of a loss spanning decades is dominated by its largest values and draws a
    straight line on a log axis)."""
    return [math.exp(v) for v in ema([math.log(v) for v in values], smoothing)]


def raw_and_smoothed(
    fig: go.Figure,
    xs: Sequence[float],
    ys: Sequence[float],
    name: str,
    color: str,
    hover: str,
    log: bool = False,
) -> None:
    """Add a faint raw curve and its bold EMA (the report's style for noisy training logs);
    ``log``: smoothed in the log domain, for a log axis (values must be positive)."""
    fig.add_trace(line_trace(xs, ys, name, color, 1, opacity=0.3, hover=hover))
    smooth = log_ema(ys) if log else ema(ys)
    fig.add_trace(line_trace(xs, smooth, f"{name} (EMA)", color, 2.2, hover=hover))


MAX_MARKERS = 60  # more evaluation points than this are drawn as a line (markers blur to a band)


def vertical_marker(
    fig: go.Figure, x: float, text: str, color: str, log_x: bool, dash: str = "dash"
) -> None:
    """A dashed vertical line at data ``x`` with its label at the top.  Plotly places shapes in
    data coordinates but annotations on a log axis in log10 units: an annotation at ``x`` on a
    log axis would sit at 10**x and stretch the axis to it."""
    fig.add_vline(x=x, line={"color": color, "dash": dash, "width": 1.5})
    fig.add_annotation(
        x=math.log10(x) if log_x else x,
        y=1,
        yref="paper",
        text=text,
        showarrow=False,
        xanchor="left",
        xshift=3,
        font={"color": color, "size": 11},
    )


def loss_curves(metrics: Sequence[Mapping[str, Any]]) -> go.Figure:
    """Train loss (faint raw + smoothed EMA) and validation loss (markers) against step.

    ``train_eval`` rows, if any, are drawn like validation rows.  The y axis is
    logarithmic when the plotted losses span more than one decade.
    """
    title = "Loss"
    tx, ty = series(metrics, "train", "loss")
    vx, vy = series(metrics, "val", "loss")
    ex, ey = series(metrics, "train_eval", "loss")
    if not (ty or vy or ey):
        return empty_figure(title)
    log = _spans_decade([*ty, *vy, *ey])
    fig = go.Figure()
    if ty:
        raw_and_smoothed(fig, tx, ty, "train", TRAIN_COLOR, "%{y:.4f}", log=log)
    if ey:
        marks = 6 if len(ey) <= MAX_MARKERS else False
        fig.add_trace(
            line_trace(ex, ey, "train (eval)", TRAIN_EVAL_COLOR, 1.5, dash="dot", markers=marks)
        )
    if vy:
        fig.add_trace(
            line_trace(vx, vy, "val", VAL_COLOR, 2, markers=7 if len(vy) <= MAX_MARKERS else False)
        )
    style_figure(fig, title=title, x_title="step", y_title="loss")
    if log:
        fig.update_yaxes(type="log")
    return fig


def _faded_colors(n: int) -> list[str]:
    """``n`` colours from pale to mid blue (older evaluations first)."""
    if n <= 0:
        return []
    lo, hi = (191, 211, 246), (96, 140, 220)
    out = []
    for i in range(n):
        t = i / (n - 1) if n > 1 else 1.0
        r, g, b = (round(a + (c - a) * t) for a, c in zip(lo, hi, strict=True))
        out.append(f"rgb({r},{g},{b})")
    return out


def _evenly_spaced(items: Sequence[Any], k: int) -> list[Any]:
    if len(items) <= k:
        return list(items)
    idx = sorted({round(i * (len(items) - 1) / (k - 1)) for i in range(k)}) if k > 1 else [0]
    return [items[i] for i in idx]


def _loss_by_pos(row: Mapping[str, Any]) -> list[float | None] | None:
    values = row.get("loss_by_pos")
    if not isinstance(values, list | tuple) or not values:
        return None
    out = [as_finite(v) for v in values]
    return out if any(v is not None for v in out) else None


def per_position_loss(metrics: Sequence[Mapping[str, Any]], max_earlier: int = 5) -> go.Figure:
    """Validation loss by token position: last evaluation bold, earlier ones faded.

    Up to ``max_earlier`` earlier evaluations (evenly spaced over training) are shown so
    one sees how the per-position curve improves.  The last ``train_eval`` curve, if any,
    is drawn dotted for comparison.
    """
    title = "Validation loss by position"
    evals = [(r["step"], c) for r in rows_for_split(metrics, "val") if (c := _loss_by_pos(r))]
    if not evals:
        return empty_figure(title)
    *earlier, (last_step, last_curve) = evals
    shown = _evenly_spaced(earlier, max_earlier)
    fig = go.Figure()
    plotted: list[float] = []
    for (step, curve), color in zip(shown, _faded_colors(len(shown)), strict=True):
        fig.add_trace(line_trace(list(range(len(curve))), curve, f"step {step}", color, 1.5))
        plotted.extend(v for v in curve if v is not None)
    train_evals = [
        (r["step"], c) for r in rows_for_split(metrics, "train_eval") if (c := _loss_by_pos(r))
    ]
    if train_evals:
        step, curve = train_evals[-1]
        x = list(range(len(curve)))
        fig.add_trace(
            line_trace(x, curve, f"train, step {step}", TRAIN_EVAL_COLOR, 1.5, dash="dot")
        )
        plotted.extend(v for v in curve if v is not None)
    x = list(range(len(last_curve)))
    name = f"step {last_step} (last)"
    fig.add_trace(line_trace(x, last_curve, name, "#1e3a8a", 3, markers=len(x) <= 64 and 5))
    plotted.extend(v for v in last_curve if v is not None)
    style_figure(fig, title=title, x_title="position", y_title="loss")
    if _spans_decade(plotted):
        fig.update_yaxes(type="log")
    return fig


def lr_schedule(metrics: Sequence[Mapping[str, Any]]) -> go.Figure:
    """Learning rate against step."""
    title = "Learning rate"
    xs, ys = series(metrics, "train", "lr")
    if not ys:
        return empty_figure(title)
    fig = go.Figure(line_trace(xs, ys, "lr", NEUTRAL_COLOR, 2, hover="%{y:.3g}"))
    style_figure(fig, title=title, x_title="step", y_title="learning rate", height=280)
    fig.update_yaxes(exponentformat="power" if max(ys) < 1e-2 else "none", rangemode="tozero")
    return fig


def grad_norm_curve(metrics: Sequence[Mapping[str, Any]]) -> go.Figure:
    """Gradient norm (before clipping, as logged) against step, raw and smoothed."""
    title = "Gradient norm"
    xs, ys = series(metrics, "train", "grad_norm")
    if not ys:
        return empty_figure(title)
    fig = go.Figure()
    raw_and_smoothed(fig, xs, ys, "grad norm", "#b45309", "%{y:.3g}")
    style_figure(fig, title=title, x_title="step", y_title="‖g‖", height=280)
    if _spans_decade(ys):
        fig.update_yaxes(type="log")
    return fig


def accuracy_curves(metrics: Sequence[Mapping[str, Any]]) -> go.Figure:
    """Accuracy of evaluation rows (``val`` and ``train_eval``) against step."""
    title = "Accuracy"
    vx, vy = series(metrics, "val", "accuracy")
    ex, ey = series(metrics, "train_eval", "accuracy")
    if not (vy or ey):
        return empty_figure(title)
    fig = go.Figure()
    if ey:
        fig.add_trace(
            line_trace(
                ex,
                ey,
                "train (eval)",
                TRAIN_EVAL_COLOR,
                1.5,
                dash="dot",
                markers=True,
                hover="%{y:.2%}",
            )
        )
    if vy:
        fig.add_trace(line_trace(vx, vy, "val", VAL_COLOR, 2, markers=True, hover="%{y:.2%}"))
    style_figure(fig, title=title, x_title="step", y_title="accuracy", height=300)
    if max(*vy, *ey, 0.0) <= 1.0:  # fractions; leave other scales (e.g. percent) alone
        fig.update_yaxes(tickformat=".0%", range=[0, 1.02])
    else:
        fig.update_traces(hovertemplate="%{y:.4g}")
    return fig
