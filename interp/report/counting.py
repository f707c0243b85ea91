"""Report sections for ``interp count``: accuracy vs m per d, and m_thr vs d with its fit.

Reads ``results.json`` of a run whose ``config.kind`` is ``count-sweep`` or ``count-construct``
(or ``analyses/count-sweep/results.json`` of another run, e.g. a reproduction).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go

from interp.report import figures
from interp.report.html import Section
from interp.report.sections import RunView, register_results_section

KINDS = {"count-sweep": "trained models", "count-construct": "histogram construction"}
_PALETTE = ("#2563eb", "#dc2626", "#059669", "#7c3aed", "#d97706", "#0891b2", "#be185d", "#4b5563")


def accuracy_vs_m(cells: Sequence[Mapping[str, Any]], threshold: float = 0.8) -> go.Figure:
    """Held-out accuracy against m, one line per d; chance dotted; the threshold dashed."""
    title = "Accuracy vs vocabulary size m"
    if not cells:
        return figures.empty_figure(title)
    fig = go.Figure()
    ds = sorted({int(c["d"]) for c in cells})
    for i, d in enumerate(ds):
        rows = sorted((c for c in cells if int(c["d"]) == d), key=lambda c: c["m"])
        color = _PALETTE[i % len(_PALETTE)]
        fig.add_trace(
            go.Scatter(
                x=[c["m"] for c in rows],
                y=[c["accuracy"] for c in rows],
                name=f"d = {d}",
                mode="lines+markers",
                line={"color": color, "width": 2},
                hovertemplate="m %{x}: %{y:.3f}",
            )
        )
        if any("chance" in c for c in rows):
            fig.add_trace(
                go.Scatter(
                    x=[c["m"] for c in rows],
                    y=[c.get("chance") for c in rows],
                    name=f"chance (d = {d})",
                    mode="lines",
                    line={"color": color, "width": 1, "dash": "dot"},
                    showlegend=i == 0,
                    legendgroup="chance",
                    hovertemplate="chance %{y:.3f}",
                )
            )
        fig.add_vline(x=d, line={"color": color, "width": 1, "dash": "dash"}, opacity=0.4)
    fig.add_hline(y=threshold, line={"color": "#6b7280", "width": 1, "dash": "dash"})
    figures.style_figure(
        fig, title=title, x_title="m (vocabulary)", y_title="accuracy", hovermode="closest"
    )
    fig.update_yaxes(range=[0, 1.02], tickformat=".0%")
    return fig


def threshold_vs_d(summary: Mapping[str, Any]) -> go.Figure:
    """m_thr(d) (markers; censored ones as open triangles at the grid edge), the fit, and m = d."""
    title = "Threshold m_thr (accuracy falls to 80%) vs d"
    rows = summary.get("thresholds") or []
    if not rows:
        return figures.empty_figure(title)
    fig = go.Figure()
    ds = [r["d"] for r in rows]
    finite = [r for r in rows if r.get("m_thr") is not None]
    fig.add_trace(
        go.Scatter(
            x=[r["d"] for r in finite],
            y=[r["m_thr"] for r in finite],
            name="m_thr",
            mode="markers",
            marker={"size": 10, "color": "#2563eb"},
            hovertemplate="d %{x}: m_thr %{y:.2f}",
        )
    )
    lo, hi = min(ds), max(ds)
    fit = summary.get("fit")
    if fit:
        fig.add_trace(
            go.Scatter(
                x=[lo, hi],
                y=[fit["slope"] * lo + fit["intercept"], fit["slope"] * hi + fit["intercept"]],
                name=f"fit: {fit['slope']:.2f} d + {fit['intercept']:.1f} (R² {fit['r2']:.2f})",
                mode="lines",
                line={"color": "#2563eb", "width": 2},
            )
        )
    fig.add_trace(
        go.Scatter(
            x=[lo, hi],
            y=[lo, hi],
            name="m = d",
            mode="lines",
            line={"color": "#6b7280", "width": 1, "dash": "dash"},
        )
    )
    figures.style_figure(
        fig, title=title, x_title="d (embedding width)", y_title="m_thr", hovermode="closest"
    )
    return fig


def counting_section(kind: str, results: Mapping[str, Any]) -> Section | None:
    cells = results.get("cells") or []
    threshold = results.get("threshold", 0.8)
    table = []
    for t in results.get("thresholds") or []:
        censored = t.get("censored")
        table.append(
            {
                "d": t["d"],
                "m_thr": t.get("m_thr")
                if censored is None
                else ("below the grid" if censored == "below" else "above the grid"),
                "mean accuracy, m <= d": t.get("mean_acc_m_le_d"),
                "mean accuracy, m > d": t.get("mean_acc_m_gt_d"),
            }
        )
    fit = results.get("fit")
    text = (
        f"Counting ({KINDS[kind]}): held-out accuracy at the answer position for every "
        f"(d, m); dashed verticals mark m = d. m_thr is where accuracy falls through "
        f"{threshold:.0%}, linearly interpolated between grid points."
    )
    if fit:
        text += f" Linear fit: m_thr = {fit['slope']:.3f} d + {fit['intercept']:.2f} (R² {fit['r2']:.3f})."
    notes = []
    if any(t.get("censored") for t in results.get("thresholds") or []):
        notes.append(
            "Some d never cross the threshold inside the grid (censored); they are not fitted."
        )
    return Section(
        title="Counting: accuracy vs d and m",
        figures=(accuracy_vs_m(cells, threshold), threshold_vs_d(results)),
        text=text,
        table=tuple(table),
        notes=tuple(notes),
        verdict=results.get("headline", ""),
    )


@register_results_section("count-sweep", order=30)
def count_sweep_section(run: RunView, results: Mapping[str, Any]) -> Section | None:
    return counting_section("count-sweep", results)


@register_results_section("count-construct", order=31)
def count_construct_section(run: RunView, results: Mapping[str, Any]) -> Section | None:
    return counting_section("count-construct", results)
