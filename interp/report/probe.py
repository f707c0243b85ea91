"""Report section for ``interp probe``: heatmaps layer × horizon per metric, baselines marked.

Reads ``results.json`` of a probe run, or ``analyses/probe/results.json`` of a model run that was
probed.  Each heatmap has one row per probed layer and, above a separating line, one row per
baseline (bigram on the token at t, unigram, and the model's own prediction at k = 1) in the same
colour scale; hovering shows the value and its 95% bootstrap interval.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go

from interp.report.figures import as_finite, style_figure
from interp.report.html import Section
from interp.report.sections import RunView, register_results_section

METRIC_TITLES = {"top1": "top-1 accuracy", "top5": "top-5 accuracy", "ce": "cross-entropy (nats)"}
PROBE_TITLES = {"future_lens": "Future-lens probe", "vocab": "Vocabulary probe"}
BASELINE_LABELS = {
    "bigram": "baseline: bigram (token at t)",
    "unigram": "baseline: unigram",
    "model": "baseline: model's own (k=1)",
}


def _row(values: Any, n: int) -> list[float | None]:
    if not isinstance(values, list):
        values = [values]
    out = [as_finite(v) for v in values][:n]
    return out + [None] * (n - len(out))


def _cell(value: float | None, lo: float | None, hi: float | None, metric: str) -> str:
    if value is None:
        return ""
    if metric == "ce":
        return f"{value:.3f} [{lo:.3f}, {hi:.3f}]" if lo is not None and hi is not None else ""
    return f"{value:.1%} [{lo:.1%}, {hi:.1%}]" if lo is not None and hi is not None else ""


def _heatmap_rows(
    results: Mapping[str, Any], kind: str, metric: str
) -> tuple[list[str], list[list[float | None]], list[list[str]], int]:
    """The heatmap's rows: labels, values and hover texts (value and 95% interval), the
    baselines first, then one row per layer; and how many rows are baselines."""
    n = len(results["horizons"])
    labels: list[str] = []
    z: list[list[float | None]] = []
    hover: list[list[str]] = []
    baselines = results.get("baselines", {})
    for name in ("model", "unigram", "bigram"):
        table = baselines.get(name, {}).get(metric)
        if not table:
            continue
        value, lo, hi = (_row(table[key], n) for key in ("value", "lo", "hi"))
        labels.append(BASELINE_LABELS[name])
        z.append(value)
        hover.append([_cell(v, a, b, metric) for v, a, b in zip(value, lo, hi, strict=True)])
    n_base = len(labels)
    table = results["probes"][kind]["metrics"][metric]
    for label, value, lo, hi in zip(
        results["layer_labels"], table["value"], table["lo"], table["hi"], strict=True
    ):
        v, a, b = _row(value, n), _row(lo, n), _row(hi, n)
        labels.append(f"layer {label}")
        z.append(v)
        hover.append([_cell(x, y, w, metric) for x, y, w in zip(v, a, b, strict=True)])
    return labels, z, hover, n_base


def probe_heatmap(results: Mapping[str, Any], kind: str, metric: str) -> go.Figure:
    """One heatmap: baselines (top rows) and layers (below) × horizons, for ``kind`` and ``metric``."""
    horizons: Sequence[int] = results["horizons"]
    labels, z, hover, n_base = _heatmap_rows(results, kind, metric)
    text = [
        [("" if v is None else (f"{v:.2f}" if metric == "ce" else f"{v:.0%}")) for v in row]
        for row in z
    ]
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=[f"k={k}" for k in horizons],
            y=labels,
            customdata=hover,
            text=text,
            texttemplate="%{text}",
            hovertemplate="%{y}, %{x}<br>"
            + METRIC_TITLES[metric]
            + ": %{customdata}<extra></extra>",
            colorscale="Viridis",
            reversescale=metric == "ce",
            hoverongaps=False,
            colorbar={"title": {"text": metric}},
        )
    )
    style_figure(
        fig,
        title=f"{PROBE_TITLES.get(kind, kind)}: {METRIC_TITLES[metric]}",
        x_title="horizon (token at t+k)",
        height=140 + 34 * len(labels),
        hovermode="closest",
    )
    fig.update_yaxes(autorange="reversed", type="category")
    if n_base:
        fig.add_shape(
            type="line",
            xref="paper",
            x0=0,
            x1=1,
            yref="y",
            y0=n_base - 0.5,
            y1=n_base - 0.5,
            line={"color": "white", "width": 4},
        )
    return fig


def _best_rows(results: Mapping[str, Any]) -> list[dict[str, Any]]:
    rows = []
    base = results.get("baselines", {})
    for kind, probe in results["probes"].items():
        top1 = probe["metrics"]["top1"]
        for j, k in enumerate(results["horizons"]):
            col = [as_finite(r[j]) for r in top1["value"]]
            best = max(range(len(col)), key=lambda i: -1.0 if col[i] is None else col[i])
            row = {
                "probe": kind,
                "k": k,
                "best layer": results["layer_labels"][best],
                "top-1": col[best],
                "95% interval": f"[{top1['lo'][best][j]:.3f}, {top1['hi'][best][j]:.3f}]",
            }
            for name in ("bigram", "unigram"):
                if name in base:
                    row[f"{name} top-1"] = _row(base[name]["top1"]["value"], j + 1)[j]
            if k == 1 and "model" in base:
                row["model top-1"] = _row(base["model"]["top1"]["value"], 1)[0]
            rows.append(row)
    return rows


@register_results_section("probe", order=50)
def probe_section(run: RunView, results: Mapping[str, Any]) -> Section | None:
    if not results.get("probes"):
        return None
    figs = [
        probe_heatmap(results, kind, metric)
        for kind in results["probes"]
        for metric in ("top1", "top5", "ce")
    ]
    tokens = results.get("tokens", {})
    descriptions = "\n\n".join(
        f"{PROBE_TITLES.get(kind, kind)}: {probe.get('description', '')}."
        for kind, probe in results["probes"].items()
    )
    text = (
        f"Linear probes predicting the token at t+k from the residual stream at t, for every "
        f"layer (0 = embeddings) and horizon k, on held-out text ({results.get('data', '')}). "
        f"Fitted on {tokens.get('fit', '?')} positions, λ chosen on {tokens.get('val', '?')}, "
        f"scored on {tokens.get('test', '?')} test positions; intervals are 95% bootstrap "
        "intervals over test sequences. Rows above the white line are baselines: the bigram on "
        "the token at t (a lookup table of which token follows at distance k), the unigram, and "
        "at k = 1 the model's own next-token prediction.\n\n" + descriptions
    )
    notes = tuple(results.get("notes", ()))
    if results.get("model"):
        notes = (f"model: {results['model']}", *notes)
    return Section(
        title="Future-token probes",
        verdict=results.get("headline", ""),
        figures=tuple(figs),
        text=text,
        table=tuple(_best_rows(results)),
        notes=notes,
    )
