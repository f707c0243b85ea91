"""Report sections for ``interp pe-bench`` (and ``interp reproduce cope``).

Reads ``results.json`` of a ``pe-bench`` run, or every ``pe-bench/*/results.json`` inside another
run (the CoPE reproduction saves one per comparison): the error table with intervals over
seeds, error vs scored position (in and out of distribution), CoPE's position-only attention
maps, and the text perplexity table with perplexity vs evaluation context.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import plotly.graph_objects as go

from interp.report import figures
from interp.report.html import Section
from interp.report.sections import RunView, register_section

PE_COLORS = {
    "none": "#6b7280",
    "absolute": "#dc2626",
    "sinusoidal": "#f59e0b",
    "rope": "#2563eb",
    "alibi": "#7c3aed",
    "cope": "#059669",
}


def _results(run: RunView) -> list[tuple[str, dict[str, Any]]]:
    found = []
    if run.config.get("kind") == "pe-bench":
        data = run.read_json("results.json")
        if isinstance(data, dict):
            found.append(("", data))
    for path in sorted(Path(run.path).glob("pe-bench/*/results.json")):
        data = run.read_json(str(path.relative_to(run.path)))
        if isinstance(data, dict):
            found.append((path.parent.name, data))
    return found


def _cell(iv: dict[str, Any]) -> str:
    if iv.get("n", 1) > 1:
        return f"{iv['mean']:.1f} [{iv['lo']:.1f}, {iv['hi']:.1f}]"
    return f"{iv['mean']:.1f}"


def error_table(task: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for row in task["table"]:
        out: dict[str, Any] = {"encoding": row["pe"]}
        for split in task["splits"]:
            out[f"{split} error %"] = _cell(row[split])
        for split in task["splits"]:
            out[f"{split} seq. error %"] = _cell(row[f"{split}_sequence"])
        rows.append(out)
    return rows


def error_by_position_figure(task: dict[str, Any]) -> go.Figure:
    fig = go.Figure()
    for pe, curve in task.get("error_by_position", {}).items():
        fig.add_trace(
            go.Scatter(
                x=curve["position"],
                y=curve["error"],
                mode="lines+markers",
                name=pe,
                line={"color": PE_COLORS.get(pe)},
                customdata=curve["count"],
                hovertemplate="position %{x:.0f}: %{y:.1f}% of %{customdata} scored<extra></extra>",
            )
        )
    n_ctx = task.get("model_overrides", {}).get("n_ctx")
    if not fig.data:
        return figures.empty_figure("Error vs position")
    return figures.style_figure(
        fig,
        title=f"Error vs scored position (all splits pooled; model context {n_ctx})",
        x_title="position of the scored token",
        y_title="error %",
    )


def cope_map_figures(task: dict[str, Any], limit: int = 4) -> list[go.Figure]:
    out = []
    for entry in task.get("cope_maps", [])[:limit]:
        labels = entry.get("tokens") or list(range(len(entry["pattern"])))
        ticks = [f"{i}:{t}" for i, t in enumerate(labels)]
        fig = go.Figure(
            go.Heatmap(
                z=entry["pattern"],
                x=ticks,
                y=ticks,
                colorscale="Viridis",
                customdata=entry["positions"],
                hovertemplate="query %{y}<br>key %{x}<br>weight %{z:.3f}"
                "<br>CoPE position %{customdata:.2f}<extra></extra>",
            )
        )
        fig.update_yaxes(autorange="reversed")
        out.append(
            figures.style_figure(
                fig,
                title=(
                    f"CoPE position-only attention, layer {entry['layer']} head {entry['head']} "
                    f"(example {entry.get('example', 0)})"
                ),
                x_title="key",
                y_title="query",
                height=460,
                hovermode="closest",
            )
        )
    return out


def perplexity_figure(text: dict[str, Any]) -> go.Figure:
    fig = go.Figure()
    for row in text["rows"]:
        xs = [int(c) for c in row["perplexity"]]
        ys = [row["perplexity"][str(c)] for c in xs]
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=ys,
                mode="lines+markers",
                name=row["pe"],
                line={"color": PE_COLORS.get(row["pe"])},
            )
        )
    fig.add_vline(x=text["train_ctx"], line_dash="dot", annotation_text="training context")
    return figures.style_figure(
        fig,
        title="Validation perplexity vs evaluation context",
        x_title="evaluation context (tokens)",
        y_title="perplexity",
    )


@register_section("pe-bench", order=30)
def pe_bench_section(run: RunView) -> Section | None:
    found = _results(run)
    if not found:
        return None
    figs: list[go.Figure] = []
    tables: list[dict[str, Any]] = []
    text_parts = []
    for name, results in found:
        task = results.get("task")
        if task:
            for row in error_table(task):
                tables.append({"comparison": name or task["task"], **row})
            figs.append(error_by_position_figure(task))
            figs.extend(cope_map_figures(task))
            cfg = results.get("config", {})
            text_parts.append(
                f"{name or task['task']}: task options {task.get('task_options')}, "
                f"{len(cfg.get('seeds', []))} seed(s), {cfg.get('steps')} steps, splits "
                f"{', '.join(task['splits'])}."
            )
        text = results.get("text")
        if text:
            for row in text["rows"]:
                tables.append(
                    {"comparison": f"text ({text['corpus']})", "encoding": row["pe"]}
                    | {f"ppl @ {c}": v for c, v in row["perplexity"].items()}
                )
            figs.append(perplexity_figure(text))
    return Section(
        title="Positional encodings compared",
        figures=tuple(figs),
        text=(
            "Token error % on scored positions (mean over seeds, 95% t-interval in brackets) "
            "for each evaluation split: val is in distribution, ood_* are out of distribution. "
            "Sequence error counts sequences with any wrong scored token. The position-only "
            "maps show where CoPE's positional term alone would attend (softmax of q·e[p_ij]).\n\n"
            + "\n".join(text_parts)
        ),
        table=tuple(tables),
    )
