"""Report sections for ``interp collapse`` and ``interp squash`` (read from saved JSON only).

A collapse run shows its ``results.json``; a model run shows ``analyses/collapse/results.json``
(written there when the analysed model was the run), likewise for squash.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go

from interp.analysis.collapse import MIN_RUN
from interp.report import figures
from interp.report.html import Section
from interp.report.sections import RunView, register_results_section

__all__ = [
    "collapse_section",
    "distance_figure",
    "layers_figure",
    "separator_figure",
    "squash_section",
]

COLORS = {
    "float32": "#2563eb",
    "float16": "#7c3aed",
    "bfloat16": "#dc2626",
    "float8_e4m3fn": "#0f766e",
    "float8_e5m2": "#d97706",
}


def _layer_trace(i: int, n_layers: int, name: str, x: Any, y: Any) -> go.Scatter:
    """One line per layer, coloured from red (first) to blue (last), named without the hook suffix."""
    shade = int(40 + 180 * i / max(1, n_layers - 1))
    label = (
        name.replace(".hook_resid_post", "")
        .replace(".hook_normalized", "")
        .replace(".hook_out", "")
    )
    return go.Scatter(
        x=x, y=y, mode="lines", name=label, line={"color": f"rgb({255 - shade}, 80, {shade})"}
    )


def _positive(xs: Sequence[int], ys: Sequence[Any]) -> tuple[list[int], list[float]]:
    """Points drawable on a log axis (distance 0 means identical: not drawn, marked instead)."""
    out_x, out_y = [], []
    for x, y in zip(xs, ys, strict=False):
        v = figures.as_finite(y)
        if v is not None and v > 0:
            out_x.append(x)
            out_y.append(v)
    return out_x, out_y


def _label(run: Mapping[str, Any]) -> str:
    return f"{run['format']} ({run['mode']})"


def distance_figure(results: Mapping[str, Any], metric: str = "linf") -> go.Figure:
    """Final-layer distance vs n, one trace per format, log-log, collapse lengths marked."""
    final = results["final_layer"]
    fig = go.Figure()
    for r in results["runs"]:
        if r["variant"] != "plain":
            continue
        color = COLORS.get(r["format"], figures.NEUTRAL_COLOR)
        xs, ys = _positive(r["lengths"], r["curves"][final][metric])
        fig.add_trace(
            go.Scatter(x=xs, y=ys, mode="lines", name=_label(r), line={"color": color, "width": 2})
        )
        res_x, res_y = _positive(r["lengths"], r["curves"][final].get("resolution", []))
        if res_y and metric == "linf":
            fig.add_trace(
                go.Scatter(
                    x=res_x,
                    y=res_y,
                    mode="lines",
                    name=f"{r['format']} resolution",
                    line={"color": color, "width": 1, "dash": "dot"},
                    showlegend=False,
                    hoverinfo="skip",
                )
            )
        n = r["collapse_length"][final]
        if n is not None:
            figures.vertical_marker(fig, n, f"{r['format']}: n={n}", color, log_x=True)
    names = {"linf": "∞-norm distance", "l2": "L2 distance", "relative": "relative distance"}
    figures.style_figure(
        fig,
        title=f"{names.get(metric, metric)} between v and v* at {final}",
        x_title="length n",
        y_title=names.get(metric, metric),
        height=420,
    )
    lengths = [n for r in results["runs"] for n in r["lengths"] if n > 0]
    span = [math.log10(min(lengths)), math.log10(max(lengths))] if lengths else None
    fig.update_xaxes(type="log", range=span)  # the data's lengths, whatever is marked
    fig.update_yaxes(type="log")
    return fig


def identical_figure(results: Mapping[str, Any]) -> go.Figure:
    final = results["final_layer"]
    fig = go.Figure()
    for r in results["runs"]:
        if r["variant"] != "plain":
            continue
        fig.add_trace(
            go.Scatter(
                x=r["lengths"],
                y=r["curves"][final]["identical_fraction"],
                mode="lines",
                name=_label(r),
                line={"color": COLORS.get(r["format"], figures.NEUTRAL_COLOR)},
            )
        )
    figures.style_figure(
        fig,
        title=f"fraction of coordinates bit-identical in the format at {final}",
        x_title="length n",
        y_title="fraction identical",
    )
    fig.update_xaxes(type="log")
    fig.update_yaxes(range=[0, 1.02])
    return fig


def layers_figure(results: Mapping[str, Any], fmt: str) -> go.Figure:
    run = next((r for r in results["runs"] if r["format"] == fmt and r["variant"] == "plain"), None)
    if run is None:
        return figures.empty_figure(f"per-layer distance ({fmt})", "no such format in this run")
    fig = go.Figure()
    n_layers = len(results["layers"])
    for i, name in enumerate(results["layers"]):
        xs, ys = _positive(run["lengths"], run["curves"][name]["relative"])
        fig.add_trace(_layer_trace(i, n_layers, name, xs, ys))
    figures.style_figure(
        fig,
        title=f"relative distance by layer ({_label(run)})",
        x_title="length n",
        y_title="|a - b| / |a|",
    )
    fig.update_xaxes(type="log")
    fig.update_yaxes(type="log")
    return fig


def separator_figure(results: Mapping[str, Any]) -> go.Figure:
    final = results["final_layer"]
    fig = go.Figure()
    for r in results["runs"]:
        color = COLORS.get(r["format"], figures.NEUTRAL_COLOR)
        xs, ys = _positive(r["lengths"], r["curves"][final]["linf"])
        sep = r["variant"] == "separator"
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=ys,
                mode="lines",
                name=f"{r['format']} {'with separator' if sep else 'plain'}",
                line={"color": color, "dash": "dash" if sep else "solid", "width": 2},
            )
        )
    sep = results.get("separator") or {}
    figures.style_figure(
        fig,
        title=f"separator every {sep.get('every')} tokens (dashed) vs plain (solid)",
        x_title="length n",
        y_title="∞-norm distance",
        height=420,
    )
    lengths = [n for r in results["runs"] for n in r["lengths"] if n > 0]
    span = [math.log10(min(lengths)), math.log10(max(lengths))] if lengths else None
    fig.update_xaxes(type="log", range=span)  # the data's lengths, whatever is marked
    fig.update_yaxes(type="log")
    return fig


def _table(results: Mapping[str, Any]) -> tuple[dict[str, Any], ...]:
    final = results["final_layer"]
    rows = []
    for r in results["runs"]:
        last = r["lengths"][-1]
        linf = [figures.as_finite(v) for v in r["curves"][final]["linf"]]
        finite = [v for v in linf if v is not None]
        rows.append(
            {
                "format": r["format"],
                "mode": r["mode"],
                "variant": r["variant"],
                "collapse n": r["collapse_length"][final]
                if r["collapse_length"][final] is not None
                else f"none ≤ {last}",
                "first n at resolution": r["first_collapsed"][final],
                "bit-identical from n": r["identical_length"][final]
                if r["identical_length"][final] is not None
                else f"none ≤ {last}",
                "∞-distance at n max": finite[-1] if finite else None,
                "passes": r["passes"],
                "collapse n by layer": {
                    k.replace(".hook_resid_post", "")
                    .replace(".hook_normalized", "")
                    .replace(".hook_out", ""): v
                    for k, v in r["collapse_length"].items()
                },
            }
        )
    return tuple(rows)


def _min_run(results: Mapping[str, Any]) -> int:
    """The run of lengths the results' collapse rule asked for (1 before the rule had one)."""

    return MIN_RUN if any(r.get("collapse_rule") for r in results["runs"]) else 1


@register_results_section("collapse", order=60)
def collapse_section(run: RunView, results: Mapping[str, Any]) -> Section | None:
    final = results["final_layer"]
    plain = [r for r in results["runs"] if r["variant"] == "plain"]
    any_collapse = any(r["collapse_length"][final] is not None for r in plain)
    lengths = results["lengths"]
    low = next((r["format"] for r in plain if r["format"] != "float32"), None)
    figs = [distance_figure(results)]
    if any(r["variant"] == "separator" for r in results["runs"]):
        figs.append(separator_figure(results))
    if low is not None:
        figs.append(layers_figure(results, low))
    figs.append(identical_figure(results))
    model = results.get("model", {})
    verdict = (
        "Collapse lengths (final layer): "
        + ", ".join(
            f"{r['format']} {r['collapse_length'][final] if r['collapse_length'][final] is not None else 'none'}"
            for r in plain
        )
        + "."
        if any_collapse
        else (
            f"This model does not collapse within n = {lengths[0]}..{lengths[-1]} in any format "
            "tried: the last-token states of v and v* stay apart by more than the format's "
            "resolution"
            + (
                " (learned absolute positions keep lengths apart)."
                if model.get("positions_fade") is False
                else "."
            )
        )
    )
    text = (
        f"Family: {results['family']}; v* is v with its last token repeated. For every length n "
        "we compare the last-token states of v and v* at every layer, with the model run in each "
        "float format (emulated: float32 compute rounded to the format at every hook; native: "
        "the model's kernels in the format).\n\n"
        "Collapse length: the smallest n from which (up to the longest n tried) the ∞-norm "
        "distance is at most the format's resolution at the state's scale (eps × max |coordinate|, "
        f"dotted lines) - the paper's criterion - over a run of at least {_min_run(results)} "
        "lengths tried (a single length at resolution at the end is not called a collapse). "
        "'bit-identical from n' is the stricter criterion: every coordinate has the same bits in "
        "the format.\n\n" + verdict
    )
    if results.get("verdicts"):
        text += "".join(f"\n\n{line}" for line in results["verdicts"])
    return Section(
        verdict=results.get("headline", ""),
        title="Representational collapse",
        figures=tuple(figs),
        text=text,
        table=_table(results),
        notes=tuple(results.get("notes", ())),
    )


def _squash_figure(results: Mapping[str, Any]) -> go.Figure:
    final = results["final_layer"]
    fig = go.Figure()
    palette = ["#2563eb", "#dc2626", "#0f766e", "#7c3aed"]
    for i, (name, p) in enumerate(results["prompts"].items()):
        curve = p["sensitivity"][final]
        first = p["first_digit"]
        body = curve[first:]
        total = sum(body) or 1.0
        fig.add_trace(
            go.Scatter(
                x=list(range(1, len(body) + 1)),
                y=[v / total for v in body],
                mode="lines+markers",
                name=name,
                line={"color": palette[i % len(palette)]},
            )
        )
    figures.style_figure(
        fig,
        title=f"sensitivity of the last token's state ({final}) to each digit position",
        x_title="digit position",
        y_title="share of total sensitivity",
    )
    fig.update_yaxes(type="log")
    return fig


def _squash_layers_figure(results: Mapping[str, Any], prompt: str) -> go.Figure:
    p = results["prompts"][prompt]
    fig = go.Figure()
    n = len(results["layers"])
    for i, name in enumerate(results["layers"]):
        curve = p["sensitivity"][name]
        fig.add_trace(_layer_trace(i, n, name, list(range(len(curve))), curve))
    figures.style_figure(
        fig,
        title=f"sensitivity by layer ({prompt})",
        x_title="token position",
        y_title="|d y_last / d e_i|",
    )
    fig.update_yaxes(type="log")
    return fig


@register_results_section("squash", order=65)
def squash_section(run: RunView, results: Mapping[str, Any]) -> Section | None:
    if not results.get("prompts"):
        return None
    final = results["final_layer"]
    rows = []
    for name, p in results["prompts"].items():
        s = p["shares"][final]
        rows.append(
            {
                "prompt": name,
                "tokens": len(p["tokens"]),
                "first quarter": s["first_quarter"],
                "last quarter (excl. last)": s["last_quarter_excl_last"],
                "last token": s["last_token"],
            }
        )
    first_prompt = next(iter(results["prompts"]))
    return Section(
        title="Over-squashing: sensitivity to input positions",
        verdict=results.get("headline", ""),
        figures=(_squash_figure(results), _squash_layers_figure(results, first_prompt)),
        text=(
            "Sensitivity of the last token's state to each position's input representation "
            f"({results.get('input_hook')}): the Frobenius norm of the Jacobian. Over-squashing "
            "(Barbero et al., Thm 5.1) predicts more sensitivity to early positions (more causal "
            "paths) than to late ones; the last token also has the direct residual path."
        ),
        table=tuple(rows),
    )
