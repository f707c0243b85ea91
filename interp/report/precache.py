"""Report section for ``interp precache`` (and ``interp reproduce precache``): the twins compared.

Reads ``results.json`` of a precache run, ``analyses/precache/results.json`` of another run, or
``synthetic/results.json`` and ``text/results.json`` of a precache reproduction.
"""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

from interp.report.figures import style_figure
from interp.report.html import Section
from interp.report.sections import (
    RunView,
    combined_results,
    register_memory_section,
    register_section,
)

COLORS = {"vanilla": "#2563eb", "myopic": "#dc2626"}


def loss_by_position_figure(results: dict[str, Any], title: str) -> go.Figure:
    pos = results.get("positions") or {}
    fig = go.Figure()
    for mode in ("vanilla", "myopic"):
        ys = pos.get(mode) or []
        fig.add_trace(
            go.Scatter(
                x=list(range(len(ys))), y=ys, name=mode, mode="lines", line={"color": COLORS[mode]}
            )
        )
    baseline = (results.get("summary") or {}).get("zero_baseline")
    if baseline is not None:
        fig.add_hline(
            y=baseline, line_dash="dot", line_color="#656d76", annotation_text="predict 0"
        )
    return style_figure(fig, title=title, x_title="position", y_title="validation loss")


def gap_figure(results: dict[str, Any], title: str) -> go.Figure:
    gap = (results.get("positions") or {}).get("gap") or []
    fig = go.Figure(go.Bar(x=list(range(len(gap))), y=gap, marker_color="#7c3aed", name="gap"))
    return style_figure(fig, title=title, x_title="position", y_title="myopic - vanilla")


def probe_figure(results: dict[str, Any], title: str) -> go.Figure | None:
    probe = results.get("probe")
    if not probe:
        return None
    fig = go.Figure(
        go.Bar(
            x=["vanilla", "myopic"],
            y=[probe["vanilla_r2"], probe["myopic_r2"]],
            marker_color=[COLORS["vanilla"], COLORS["myopic"]],
        )
    )
    fig.update_yaxes(range=[min(0.0, probe["myopic_r2"]), 1.0])
    return style_figure(fig, title=title, y_title="held-out R²", hovermode="closest")


def token_probe_figure(results: dict[str, Any], title: str) -> go.Figure | None:
    """Future-lens top-1 by layer, one line per horizon: vanilla solid, myopic dashed."""
    tp = results.get("token_probe")
    if not tp or tp.get("status") != "done":
        return None
    labels = tp["layer_labels"]
    fig = go.Figure()
    for j, k in enumerate(tp["horizons"]):
        for mode, dash in (("vanilla", "solid"), ("myopic", "dash")):
            fig.add_trace(
                go.Scatter(
                    x=labels,
                    y=[row[j] for row in tp[mode]["top1"]],
                    name=f"{mode} k={k}",
                    mode="lines+markers",
                    line={"color": COLORS[mode], "dash": dash, "width": 1 + 2 / k},
                )
            )
    return style_figure(fig, title=title, x_title="layer", y_title="held-out top-1")


def token_probe_lines(label: str, tp: dict[str, Any]) -> list[str]:
    """The top-1 grid as text: per layer, vanilla / myopic (vanilla - myopic) per horizon."""
    lines = [
        f"{label}future-token probes (future lens, held-out top-1 on {tp['tokens']['test']} "
        f"test tokens, mean of {tp['seeds']} seed(s)); per layer and horizon k: "
        "vanilla / myopic (vanilla - myopic):"
    ]
    for i, layer in enumerate(tp["layer_labels"]):
        cells = [
            f"k={k} {tp['vanilla']['top1'][i][j]:.3f} / {tp['myopic']['top1'][i][j]:.3f} "
            f"({tp['diff'][i][j]:+.3f})"
            for j, k in enumerate(tp["horizons"])
        ]
        lines.append(f"- layer {layer}: " + "; ".join(cells))
    base = tp.get("baselines") or {}
    if base:
        lines.append(
            "- baselines (top-1 by horizon): "
            + "; ".join(
                f"{name} " + "/".join(f"{v:.3f}" for v in vals) for name, vals in base.items()
            )
            + f"; the models' own next-token top-1: vanilla {tp['vanilla']['model_top1']:.3f}, "
            f"myopic {tp['myopic']['model_top1']:.3f}"
        )
    return lines


def _rows(label: str, results: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for r in results.get("per_seed", []):
        row = {
            "comparison": label.rstrip(": ") or results.get("source"),
            "seed": r.get("seed"),
            "vanilla loss": r["vanilla"]["loss"],
            "myopic loss": r["myopic"]["loss"],
            "gap": r["myopic"]["loss"] - r["vanilla"]["loss"],
        }
        if "probe_r2" in r["vanilla"]:
            row["probe R² vanilla"] = r["vanilla"]["probe_r2"]
            row["probe R² myopic"] = r["myopic"]["probe_r2"]
        rows.append(row)
    return rows


# how a reproduction's parts are named in the text
_PART_LABELS = {"synthetic": "synthetic task: ", "text": "text: "}


@register_section("precache", order=30)
def precache_section(run: RunView) -> Section | None:
    """The twins of every precache result of the run side by side (a reproduction holds two)."""
    sources = [
        (_PART_LABELS.get(label, f"{label}: " if label else ""), results)
        for label, results in combined_results(run, "precache")
        if "summary" in results
    ]
    return _section(sources)


@register_memory_section("precache")
def precache_results_section(run: RunView, results: dict[str, Any]) -> Section | None:
    """The section of one precache result in memory (``PrecacheResults.figures()``)."""
    return _section([("", results)] if "summary" in results else [])


def _section(sources: list[tuple[str, dict[str, Any]]]) -> Section | None:
    if not sources:
        return None
    figures: list[go.Figure] = []
    text: list[str] = []
    rows: list[dict[str, Any]] = []
    notes: list[str] = []
    for label, results in sources:
        figures.append(loss_by_position_figure(results, f"{label}loss by position"))
        figures.append(gap_figure(results, f"{label}myopia gap by position"))
        probe = probe_figure(results, f"{label}probe for the future-only feature")
        if probe is not None:
            figures.append(probe)
        tokens = token_probe_figure(results, f"{label}future-token probes (top-1 by layer)")
        if tokens is not None:
            figures.append(tokens)
        verdict = results.get("verdict") or {}
        text.append(f"{label}verdict: {verdict.get('label', '?')}.")
        text.extend(f"- {line}" for line in verdict.get("evidence", []))
        text.append("")
        rows.extend(_rows(label, results))
        token = results.get("token_probe")
        if token and token.get("status") == "done":
            text.extend(token_probe_lines(label, token))
            text.append("")
            notes.extend(f"{label}future-token probes: {n}" for n in token.get("notes", []))
        elif token:
            notes.append(f"{label}future-token probes: {token.get('note', 'not computed')}")
    intro = (
        "Vanilla and myopic twins share initial weights, data order and seed; the myopic twin's "
        "loss at position t sends no gradient into earlier positions. A clearly worse myopic "
        "twin plus a future-only feature found only in vanilla means pre-caching; a small gap "
        "means breadcrumbs (features computed for the current token that later positions reuse)."
    )
    return Section(
        title="Pre-caching or breadcrumbs: myopic vs vanilla twins",
        figures=tuple(figures),
        text=intro + "\n\n" + "\n".join(text).strip(),
        table=tuple(rows),
        notes=tuple(notes),
        verdict=" ".join(
            f"{label}{results['headline']}" for label, results in sources if results.get("headline")
        ),
    )
