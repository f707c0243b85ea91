"""The report header: a compact key/value summary of a run (:func:`run_meta`): its model, data,
steps, last losses, device and versions."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from interp.report import figures
from interp.report.html import readable
from interp.report.view import RunView


def _model_summary(model: Mapping[str, Any]) -> str | None:
    parts = []
    vector = model.get("input_kind") == "vector"
    for key, fmt in (
        ("n_layers", "{} layers"),
        ("d_model", "d_model {}"),
        ("n_heads", "{} heads"),
        ("d_mlp", "d_mlp {}"),
        ("n_ctx", "n_ctx {}"),
        ("d_input", "vector input, d_input {}") if vector else ("d_vocab", "vocab {}"),
    ):
        value = model.get(key)
        if value is not None:
            parts.append(fmt.format(value))
    if vector and model.get("d_vocab") is not None:
        parts.append(f"{model['d_vocab']} output(s)")
    return " · ".join(parts) or None


def _data_summary(data: Mapping[str, Any]) -> str | None:
    """What the run trained on: the task and its options, or the corpus (never the unused
    default corpus of a task run)."""
    if data.get("source") == "task" or (data.get("task") and data.get("source") != "corpus"):
        options = data.get("task_options") or {}
        return f"task {data.get('task')}" + (f" ({readable(options)})" if options else "")
    return data.get("corpus") or data.get("name")


def _last(rows: list[dict[str, Any]], key: str) -> tuple[Any, Any]:
    for r in reversed(rows):
        if figures.as_finite(r.get(key)) is not None:
            return r.get("step"), r[key]
    return None, None


def run_meta(run: RunView) -> dict[str, Any]:
    """Compact key/value summary for the report header (absent values are left out)."""
    config = run.config
    model = config.get("model") if isinstance(config.get("model"), Mapping) else {}
    train = config.get("train") if isinstance(config.get("train"), Mapping) else {}
    data = config.get("data") if isinstance(config.get("data"), Mapping) else {}
    train_rows = figures.rows_for_split(run.metrics, "train")
    val_rows = figures.rows_for_split(run.metrics, "val")
    last_step = train_rows[-1]["step"] if train_rows else None
    total = train.get("steps")
    if last_step is not None and total is not None:
        steps: Any = f"{last_step} / {total}"
    else:
        steps = last_step if last_step is not None else total
    _, train_loss = _last(train_rows, "loss")
    val_step, val_loss = _last(val_rows, "loss")
    _, val_acc = _last(val_rows, "accuracy")
    versions = run.env.get("versions") if isinstance(run.env.get("versions"), Mapping) else {}
    meta: dict[str, Any] = {
        "run": run.name,
        "kind": config.get("kind"),
        "model": _model_summary(model),
        "positional": model.get("positional"),
        "normalization": model.get("normalization"),
        "data": _data_summary(data),
        "seed": config.get("seed", run.env.get("seed")),
        "steps": steps,
        "train loss": train_loss,
        "val loss" + (f" @ {val_step}" if val_step is not None else ""): val_loss,
        "val accuracy": val_acc,
        "device": run.env.get("device"),
        "torch": versions.get("torch") or run.env.get("torch"),
        "created": config.get("created"),
    }
    return {k: v for k, v in meta.items() if v is not None and v != ""}
