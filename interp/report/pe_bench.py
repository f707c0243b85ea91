"""Report sections for ``interp pe-bench`` (and ``interp reproduce cope``).

Reads ``results.json`` of a ``pe-bench`` run, or every ``pe-bench/*/results.json`` inside another
run (the CoPE reproduction saves one per comparison): the error table with intervals over
seeds, error vs scored position (in and out of distribution), CoPE's position-only attention
maps, and the text perplexity table with perplexity vs evaluation context.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import plotly.graph_objects as go

from interp.report import figures
from interp.report.html import Section, readable
from interp.report.sections import RunView, register_results_section

PE_COLORS = {
    "none": "#6b7280",
    "absolute": "#dc2626",
    "sinusoidal": "#f59e0b",
    "rope": "#2563eb",
    "alibi": "#7c3aed",
    "rel": "#0891b2",
    "cope": "#059669",
}


def _cell(iv: dict[str, Any]) -> str:
    if iv.get("n", 1) > 1:
        return f"{iv['mean']:.1f} [{iv['lo']:.1f}, {iv['hi']:.1f}]"
    return f"{iv['mean']:.1f}"


def error_table(task: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for row in task["table"]:
        out: dict[str, Any] = {"encoding": row.get("variant", row["pe"])}
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


def _by_kind(row: dict[str, Any], key: str = "perplexity") -> dict[str, dict[str, Any]]:
    """``{kind: {ctx: ppl}}``; results saved before the prose / code split had ``{ctx: ppl}``."""
    values = row.get(key) or {}
    if values and not all(isinstance(v, dict) for v in values.values()):
        return {"all": values}
    return values


_KIND_DASH = {"prose": "solid", "code": "dash", "all": "solid"}


def perplexity_figure(text: dict[str, Any]) -> go.Figure:
    fig = go.Figure()
    for row in text["rows"]:
        for kind, values in _by_kind(row).items():
            xs = sorted(int(c) for c in values)
            fig.add_trace(
                go.Scatter(
                    x=xs,
                    y=[values[str(c)] for c in xs],
                    mode="lines+markers",
                    name=f"{row['pe']} {kind}",
                    line={"color": PE_COLORS.get(row["pe"]), "dash": _KIND_DASH.get(kind)},
                )
            )
    fig.add_vline(x=text["train_ctx"], line_dash="dot", annotation_text="training context")
    return figures.style_figure(
        fig,
        title="Held-out perplexity per byte vs evaluation context (solid prose, dashed code)",
        x_title="evaluation context (tokens)",
        y_title="perplexity",
    )


def perplexity_rows(text: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for row in text["rows"]:
        tails = _by_kind(row, "perplexity_tail")
        for kind, values in _by_kind(row).items():
            label = text.get("variants", {}).get(row["pe"], row["pe"])
            out: dict[str, Any] = {"comparison": f"text: {kind}", "encoding": label}
            for ctx, value in values.items():
                out[f"ppl @ {ctx}"] = "n/a" if value is None else round(value, 3)
                tail = tails.get(kind, {}).get(ctx)
                if tail is not None:
                    out[f"ppl @ {ctx}, past training ctx"] = round(tail, 3)
            rows.append(out)
    return rows


@register_results_section("pe-bench", order=30)
def pe_bench_section(run: RunView, results: Mapping[str, Any]) -> Section | None:
    found = [("", results)]
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
                f"{name or task['task']}: task options {readable(task.get('task_options'))}, "
                f"{len(cfg.get('seeds', []))} seed(s), {cfg.get('steps')} steps, splits "
                f"{', '.join(task['splits'])}."
            )
            if "cope" in cfg.get("variants", {}):
                text_parts.append(
                    f"CoPE here: {cfg['variants']['cope']} (the definition of the public code, "
                    "facebookresearch/RAM projects/cope, unless marked as an interp variant; "
                    "cope+rel: with its learned relative positions on every layer)."
                )
        text = results.get("text")
        if text:
            tables.extend(perplexity_rows(text))
            figs.append(perplexity_figure(text))
            text_parts.append(
                f"Text: byte-level models trained at context {text['train_ctx']} on "
                f"{text['corpus']}; perplexity on held-out documents of each kind at every "
                "evaluation context (whole blocks; 'past training ctx' counts only the "
                "predictions at positions the training context never reached; n/a: absolute "
                "positions end at the training context)."
            )
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
        verdict=results.get("headline", ""),
    )
