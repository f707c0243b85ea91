"""Report sections for ``interp grok`` (curves, weight norm, circle, spectrum) and its sweeps."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go

from interp.errors import ConfigError
from interp.grok.detect import RISING
from interp.report import figures
from interp.report.html import Section, readable
from interp.report.sections import RunView, register_results_section

LABEL_COLORS = {  # every label of interp.grok.detect.LABELS, in its order (the phase diagram's)
    "no-learn": "#9ca3af",
    "memorise": "#dc2626",
    "still-rising": "#f59e0b",
    "grok": "#7c3aed",
    "generalise": "#16a34a",
}


def _mark_steps(fig: go.Figure, results: Mapping[str, Any]) -> None:
    for key, name, color in (
        ("memorisation_step", "memorised", figures.TRAIN_COLOR),
        ("grokking_step", "grokked", "#7c3aed"),
    ):
        step = results.get(key)
        if step:  # log axes cannot show step 0
            figures.vertical_marker(fig, step, f"{name} @ {step}", color, log_x=True)


def curves_figure(
    metrics: Sequence[Mapping[str, Any]], results: Mapping[str, Any], key: str, title: str
) -> go.Figure:
    """Train and test ``key`` against step on a log-step axis, with the two steps marked."""
    fig = go.Figure()
    for split, name, color in (
        ("train", "train", figures.TRAIN_COLOR),
        ("val", "test", figures.VAL_COLOR),
    ):
        xs, ys = figures.series(metrics, split, key)
        pts = [(x, y) for x, y in zip(xs, ys, strict=True) if x > 0]
        if pts:
            fig.add_trace(
                go.Scatter(
                    x=[x for x, _ in pts],
                    y=[y for _, y in pts],
                    name=name,
                    mode="lines",
                    line={"color": color, "width": 2},
                )
            )
    figures.style_figure(fig, title=title, x_title="step (log)", y_title=key)
    fig.update_xaxes(type="log")
    if key == "loss":
        fig.update_yaxes(type="log")
    else:
        fig.update_yaxes(range=[0, 1.02], tickformat=".0%")
    _mark_steps(fig, results)
    return fig


def weight_norm_figure(
    metrics: Sequence[Mapping[str, Any]], results: Mapping[str, Any]
) -> go.Figure:
    xs, ys = figures.series(metrics, "train", "weight_norm")
    pts = [(x, y) for x, y in zip(xs, ys, strict=True) if x > 0]
    fig = go.Figure(
        go.Scatter(
            x=[x for x, _ in pts],
            y=[y for _, y in pts],
            name="‖θ‖",
            mode="lines",
            line={"color": figures.NEUTRAL_COLOR, "width": 2},
        )
    )
    figures.style_figure(fig, title="Weight norm", x_title="step (log)", y_title="‖θ‖₂", height=300)
    fig.update_xaxes(type="log")
    _mark_steps(fig, results)
    return fig


def _mean(values: Any) -> float | None:
    """Nanda's excluded loss is one value per key frequency; older runs logged one number."""
    if isinstance(values, list):
        finite = [v for v in values if figures.as_finite(v) is not None]
        return sum(finite) / len(finite) if finite else None
    return values


def progress_figure(metrics: Sequence[Mapping[str, Any]]) -> go.Figure | None:
    """Nanda's restricted / excluded loss and the top-k Fourier share over training."""
    rows = [r for r in figures.rows_for_split(metrics, "fourier") if r["step"] > 0]
    if not rows:
        return None
    fig = go.Figure()
    rows = [{**r, "excluded_loss_mean": _mean(r.get("excluded_loss"))} for r in rows]
    for key, name, color in (
        ("restricted_loss", "restricted loss", "#7c3aed"),
        ("excluded_loss_mean", "excluded loss (mean over key frequencies, each alone)", "#b45309"),
        ("excluded_loss_all_keys", "excluded loss (all key frequencies at once)", "#d97706"),
    ):
        pts = [(r["step"], r[key]) for r in rows if figures.as_finite(r.get(key)) is not None]
        if pts:
            fig.add_trace(
                go.Scatter(
                    x=[s for s, _ in pts],
                    y=[v for _, v in pts],
                    name=name,
                    line={"color": color, "width": 2},
                )
            )
    fig.add_trace(
        go.Scatter(
            x=[r["step"] for r in rows],
            y=[r.get("top_k_share") for r in rows],
            name="top-k share of embedding power",
            yaxis="y2",
            line={"color": figures.NEUTRAL_COLOR, "width": 2, "dash": "dot"},
        )
    )
    figures.style_figure(fig, title="Progress measures", x_title="step (log)", y_title="loss")
    fig.update_layout(
        yaxis2={
            "overlaying": "y",
            "side": "right",
            "range": [0, 1.02],
            "title": "share",
            "tickformat": ".0%",
        }
    )
    fig.update_xaxes(type="log")
    fig.update_layout(yaxis={"type": "log"})
    return fig


def circle_figure(circle: Mapping[str, Any]) -> go.Figure:
    """The embedding projected on the plane of one frequency: residues on a circle."""
    xy = circle["xy"]
    f = circle["frequency"]
    fig = go.Figure(
        go.Scatter(
            x=[v[0] for v in xy],
            y=[v[1] for v in xy],
            mode="markers+text",
            text=[str(i) for i in range(len(xy))],
            textposition="top center",
            marker={"size": 7, "color": list(range(len(xy))), "colorscale": "Twilight"},
            hovertemplate="residue %{text}<extra></extra>",
        )
    )
    figures.style_figure(fig, title=f"Embedding on frequency {f}", height=420, hovermode="closest")
    fig.update_yaxes(scaleanchor="x", scaleratio=1)
    return fig


def spectrum_figure(
    metrics: Sequence[Mapping[str, Any]], key: str = "embed_power"
) -> go.Figure | None:
    """Power per frequency at every logged step, with a slider over training."""
    rows = [r for r in figures.rows_for_split(metrics, "fourier") if isinstance(r.get(key), list)]
    if not rows:
        return None
    rows = figures._evenly_spaced(rows, 40)
    freqs = list(range(1, len(rows[0][key])))

    def share(r: Mapping[str, Any]) -> list[float]:
        power = r[key][1:]
        total = sum(power) or 1.0
        return [v / total for v in power]

    fig = go.Figure(go.Bar(x=freqs, y=share(rows[-1]), marker={"color": figures.TRAIN_COLOR}))
    fig.frames = [go.Frame(data=[go.Bar(x=freqs, y=share(r))], name=str(r["step"])) for r in rows]
    steps = [
        {
            "method": "animate",
            "label": str(r["step"]),
            "args": [
                [str(r["step"])],
                {
                    "mode": "immediate",
                    "frame": {"duration": 0, "redraw": True},
                    "transition": {"duration": 0},
                },
            ],
        }
        for r in rows
    ]
    what = "embedding" if key == "embed_power" else "neuron input weights"
    figures.style_figure(
        fig,
        title=f"Fourier spectrum of the {what} over training",
        x_title="frequency",
        y_title="share of power",
        height=440,
        hovermode="closest",
    )
    fig.update_layout(
        sliders=[
            {
                "active": len(rows) - 1,
                "steps": steps,
                "currentvalue": {"prefix": "step "},
                "pad": {"t": 40},
            }
        ],
        yaxis={"range": [0, 1]},
    )
    return fig


@register_results_section("grok", order=8)
def grok_section(run: RunView, results: Mapping[str, Any]) -> Section | None:
    metrics = run.metrics
    figs = [
        curves_figure(metrics, results, "loss", "Train and test loss"),
        curves_figure(metrics, results, "accuracy", "Train and test accuracy"),
        weight_norm_figure(metrics, results),
    ]
    for extra in (
        progress_figure(metrics),
        spectrum_figure(metrics),
        spectrum_figure(metrics, "neuron_power"),
    ):
        if extra is not None:
            figs.append(extra)
    figs.extend(circle_figure(c) for c in results.get("circles", []))
    thresholds = results.get("thresholds", {})
    table = [
        {
            k: results.get(k)
            for k in (
                "memorisation_step",
                "grokking_step",
                "grok_delay",
                "label",
                "final_train_accuracy",
                "final_test_accuracy",
                "min_train_loss",
                "min_test_loss",
                "key_frequencies",
                "top_k_share",
                "final_weight_norm",
                "steps_per_second",
            )
            if k in results
        }
    ]
    return Section(
        title="Grokking",
        figures=tuple(figs),
        text=(
            "Full-batch AdamW on a fixed training set. Memorisation step: the first logged step "
            f"with train accuracy ≥ {thresholds.get('memorise_acc', 0.99)}; grokking step: the "
            f"first with test accuracy ≥ {thresholds.get('grok_acc', 0.95)} (dashed lines). "
            "The spectrum is the share of the embedding's power at each frequency (the slider "
            "moves through training); a grokked model concentrates it on a few key frequencies, "
            "and projecting the embedding on the strongest one puts the residues on a circle."
        ),
        table=tuple(table),
        notes=(f"Label thresholds: {readable(thresholds)}",) if thresholds else (),
        verdict=results.get("headline", ""),
    )


def phase_figure(runs: Sequence[Mapping[str, Any]], size_key: str, width: int) -> go.Figure:
    """Weight decay x train size grid for one width: the most common label, counts on hover."""
    sub = [r for r in runs if r.get("width") == width]
    wds = sorted({r["weight_decay"] for r in sub})
    sizes = sorted({r[size_key] for r in sub})
    labels = list(LABEL_COLORS)
    z, text = [], []
    for wd in wds:
        zrow, trow = [], []
        for s in sizes:
            cell = [r["label"] for r in sub if r["weight_decay"] == wd and r[size_key] == s]
            counts = {lab: cell.count(lab) for lab in labels if cell.count(lab)}
            top = max(counts, key=counts.get) if counts else "no-learn"
            zrow.append(labels.index(top))
            trow.append(", ".join(f"{k} {v}" for k, v in counts.items()))
        z.append(zrow)
        text.append(trow)
    n = len(labels)
    scale = []
    for i, lab in enumerate(labels):
        scale += [[i / n, LABEL_COLORS[lab]], [(i + 1) / n, LABEL_COLORS[lab]]]
    fig = go.Figure(
        go.Heatmap(
            x=[str(s) for s in sizes],
            y=[str(w) for w in wds],
            z=z,
            text=text,
            zmin=-0.5,
            zmax=n - 0.5,
            colorscale=scale,
            texttemplate="%{text}",
            hovertemplate="weight decay %{y}, " + size_key + " %{x}: %{text}<extra></extra>",
            colorbar={"tickvals": list(range(n)), "ticktext": labels},
        )
    )
    figures.style_figure(
        fig,
        title=f"Phase diagram, width {width}",
        x_title=size_key,
        y_title="weight decay",
        height=380,
        hovermode="closest",
    )
    return fig


def _size_key(task: Any) -> str:
    """The training-set axis of a sweep of ``task`` (its registry entry), for the grid."""
    from interp.grok.tasks import grok_task

    try:
        return grok_task(str(task)).size_key
    except ConfigError:  # a task this version does not know
        return "n_train"


@register_results_section("grok-sweep", order=8)
def grok_sweep_section(run: RunView, results: Mapping[str, Any]) -> Section | None:
    runs = results.get("runs", [])
    size_key = _size_key(results.get("task"))
    widths = sorted({r["width"] for r in runs})
    figs = [phase_figure(runs, size_key, w) for w in widths]
    table = [
        {
            k: r.get(k)
            for k in (
                "width",
                "weight_decay",
                size_key,
                "seed",
                "label",
                "memorisation_step",
                "grokking_step",
                "min_train_loss",
                "min_test_loss",
                "max_test_train_ratio",
                "final_test_accuracy",
            )
        }
        for r in runs
    ]
    return Section(
        title="Grokking sweep",
        figures=tuple(figs),
        text=(
            f"{results.get('n_runs')} runs trained many at a time "
            f"({results.get('runs_per_second', 0):.2f} runs/s); labels {results.get('label_counts')}. "
            "Each cell shows the most common label over seeds (counts in the cell)."
        ),
        table=tuple(table),
        notes=(
            "Label thresholds (PAIR's rule on the logged cross-entropy): "
            f"{readable(results.get('thresholds'))}; still-rising: a memorise run whose test "
            f"accuracy still gained more than {RISING} over the last tenth of training.",
        ),
    )
