"""The built-in report sections of every run: ``training`` (order 10: loss, accuracy, learning
rate and gradient-norm curves), ``per-position`` (20: validation loss by token position) and
``config`` (1000: config.json and env.json as a table)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from interp.report import figures
from interp.report.html import Section
from interp.report.registry import register_section
from interp.report.view import RunView


def _split_summary(metrics: tuple[dict[str, Any], ...]) -> list[dict[str, Any]]:
    out = []
    for split in ("train", "train_eval", "val"):
        xs, ys = figures.series(metrics, split, "loss")
        if not ys:
            continue
        best = min(range(len(ys)), key=ys.__getitem__)
        row: dict[str, Any] = {
            "split": split,
            "rows": len(ys),
            "last step": xs[-1],
            "last loss": ys[-1],
            "best loss": ys[best],
            "best at step": xs[best],
        }
        _, acc = figures.series(metrics, split, "accuracy")
        if acc:
            row["last accuracy"] = acc[-1]
        out.append(row)
    return out


def _is_training_run(run: RunView) -> bool:
    return run.config.get("kind", "train") == "train"


@register_section("training", order=10)
def training_section(run: RunView) -> Section | None:
    metrics = run.metrics
    if not metrics and not _is_training_run(run):
        return None  # analysis runs (probe, collapse, reproduce...) have no training curves
    figs = [figures.loss_curves(metrics)]
    if (
        figures.series(metrics, "val", "accuracy")[1]
        or figures.series(metrics, "train_eval", "accuracy")[1]
    ):
        figs.append(figures.accuracy_curves(metrics))
    figs.append(figures.lr_schedule(metrics))
    if figures.series(metrics, "train", "grad_norm")[1]:
        figs.append(figures.grad_norm_curve(metrics))
    notes = []
    for split in ("train", "val", "train_eval"):
        rows = run.rows(split)
        bad = sum(1 for r in rows if figures.as_finite(r.get("loss")) is None)
        if bad:
            notes.append(f"{bad} {split} row(s) with a missing or non-finite loss are not plotted.")
    return Section(
        title="Training",
        figures=tuple(figs),
        text=(
            "Training loss at every logged step (faint) with an exponential moving average "
            "(solid), and validation loss at each evaluation (markers). The loss axis is "
            "logarithmic when the curves span more than a decade."
        ),
        table=tuple(_split_summary(metrics)),
        notes=tuple(notes),
    )


@register_section("per-position", order=20)
def per_position_section(run: RunView) -> Section | None:
    has_by_pos = any(r.get("loss_by_pos") for r in run.rows("val"))
    if not has_by_pos and not _is_training_run(run):
        return None  # analysis runs (grok, probe...) log no per-position loss: no empty section
    fig = figures.per_position_loss(run.metrics)
    notes = ()
    if run.rows("val") and not has_by_pos:
        notes = ("The validation rows of this run carry no per-position loss (loss_by_pos).",)
    return Section(
        title="Loss by position",
        figures=(fig,),
        text=(
            "Mean validation loss at each token position for the latest evaluation (bold) and "
            "a few earlier ones (faded, older is paler). Early positions see little context, "
            "so a higher loss there is expected; a flat tail means the model uses long context."
        ),
        notes=notes,
    )


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, Mapping) and value:
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    else:
        out[prefix] = value


def _config_rows(group: str, value: Any) -> list[dict[str, Any]]:
    flat: dict[str, Any] = {}
    _flatten("", value, flat)
    return [{"group": group, "key": k, "value": v} for k, v in flat.items()]


@register_section("config", order=1000)
def config_section(run: RunView) -> Section:
    config = run.config
    rows: list[dict[str, Any]] = []
    groups = ("model", "train", "data")
    for group in groups:
        if group in config:
            rows.extend(_config_rows(group, config[group]))
    rest = {k: v for k, v in config.items() if k not in groups}
    if rest:
        rows.extend(_config_rows("run", rest))
    if run.env:
        rows.extend(_config_rows("env", run.env))
    return Section(
        title="Configuration",
        text=f"Settings from config.json and env.json in {run.path}.",
        table=tuple(rows),
    )
