"""Section registry and the run view that section builders read.

Analyses add their own report sections without editing this file::

    from interp.report import RunView, Section, register_section

    @register_section("probe", order=50)
    def probe_section(run: RunView) -> Section | None:
        results = run.read_json("probe/results.json")
        if results is None:
            return None          # nothing to show for this run
        return Section("Linear probes", figures=(...,), text="...")

Builders run in ``(order, name)`` order; one that returns ``None`` is skipped, and one
that raises is shown as a section carrying the error message (see ``build_report``).
Built-in orders: ``training`` 10, ``per-position`` 20, ``config`` 1000.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from interp.errors import CorruptFileError, LoadError
from interp.io import read_json, read_jsonl
from interp.report import figures
from interp.report.html import Section, readable
from interp.report.plugins import load_plugins

__all__ = [
    "Found",
    "RunView",
    "combined_results",
    "find_results",
    "register_memory_section",
    "register_results_section",
    "results_section",
    "SectionBuilder",
    "load_run_view",
    "register_section",
    "registered_section",
    "run_meta",
    "section_builders",
    "unregister_section",
]


@dataclass(frozen=True)
class RunView:
    """Read-only view of a run directory: parsed config, env and metrics rows."""

    path: Path
    config: dict[str, Any]
    env: dict[str, Any]
    metrics: tuple[dict[str, Any], ...]

    def read_json(self, relpath: str) -> Any | None:
        """Parse ``path/relpath``; ``None`` if absent, :class:`CorruptFileError` if corrupt."""
        file = self.path / relpath
        if not file.is_file():
            return None
        return read_json(file, what=relpath)

    def rows(self, split: str) -> list[dict[str, Any]]:
        """Metrics rows of one split (``"train"``, ``"val"``, ``"train_eval"``), in file order."""
        return [r for r in self.metrics if r.get("split") == split]

    @property
    def name(self) -> str:
        return self.path.resolve().name


SectionBuilder = Callable[[RunView], "Section | list[Section] | None"]
ResultsBuilder = Callable[[RunView, Mapping[str, Any]], "Section | None"]

_REGISTRY: dict[str, tuple[int, SectionBuilder]] = {}
_RESULTS_BUILDERS: dict[str, ResultsBuilder] = {}


# --------------------------------------------------------------------------- the results finder
@dataclass(frozen=True)
class Found:
    """One set of results a run holds for an experiment kind."""

    results: Mapping[str, Any]
    source: str  # path relative to the run
    label: str  # "" for the run's own results, else where they came from
    newest: bool = False  # the latest of several analyses of this run's model


_SKIP = {"checkpoints", "cells", "tokenizer", "analyses"}


def _kind_of(run: RunView, folder: Path, results: Mapping[str, Any]) -> Any:
    if isinstance(results.get("kind"), str):
        return results["kind"]
    config = run.read_json(str((folder / "config.json").relative_to(run.path)))
    return config.get("kind") if isinstance(config, Mapping) else None


def find_results(run: RunView, kind: str) -> list[Found]:
    """Every set of ``kind`` results in ``run``: the only place that knows where they live.

    1. ``results.json`` when the run itself is a ``kind`` run;
    2. analyses of the run's model: ``analyses/<kind>/<analysis>/results.json`` (one folder per
       analysis run, newest marked) and the older single ``analyses/<kind>/results.json``;
    3. sub-runs one or two folders down (a reproduction's or sweep's parts) whose results or
       config say ``kind``."""
    found: list[Found] = []
    if run.config.get("kind") == kind:
        own = run.read_json("results.json")
        if isinstance(own, Mapping):
            found.append(Found(own, "results.json", ""))
    analyses: list[Found] = []
    legacy = run.read_json(f"analyses/{kind}/results.json")
    if isinstance(legacy, Mapping):
        analyses.append(Found(legacy, f"analyses/{kind}/results.json", "analysis"))
    folder = run.path / "analyses" / kind
    for path in sorted(folder.glob("*/results.json")) if folder.is_dir() else []:
        data = run.read_json(str(path.relative_to(run.path)))
        if isinstance(data, Mapping):
            analyses.append(
                Found(data, str(path.relative_to(run.path)), f"analysis {path.parent.name}")
            )
    if len(analyses) > 1:
        last = analyses[-1]
        analyses[-1] = Found(last.results, last.source, last.label, newest=True)
    found.extend(analyses)
    for pattern in ("*/results.json", "*/*/results.json"):
        for path in sorted(run.path.glob(pattern)):
            rel = path.relative_to(run.path)
            if rel.parts[0] in _SKIP or any(p.startswith(".") for p in rel.parts):
                continue
            data = run.read_json(str(rel))
            if isinstance(data, Mapping) and _kind_of(run, path.parent, data) == kind:
                found.append(Found(data, str(rel), str(rel.parent)))
    return found


def register_section(name: str, order: int = 100) -> Callable[[SectionBuilder], SectionBuilder]:
    """Decorator registering a section builder under ``name`` (a name is registered once;
    :func:`registered_section` overrides one for the length of a ``with`` block)."""

    def decorate(builder: SectionBuilder) -> SectionBuilder:
        if name in _REGISTRY:
            raise ValueError(f"report section {name!r} is registered twice")
        _REGISTRY[name] = (order, builder)
        return builder

    return decorate


def combined_results(run: RunView, kind: str) -> list[tuple[str, Mapping[str, Any]]]:
    """``(label, results)`` for every set of ``kind`` results in ``run``, for a section that
    shows them side by side (``label`` is empty for the run's own results)."""
    out = []
    for found in find_results(run, kind):
        label = found.label + (", newest" if found.newest else "")
        out.append((label, found.results))
    return out


def register_memory_section(kind: str) -> Callable[[ResultsBuilder], ResultsBuilder]:
    """Decorator for the builder :func:`results_section` uses for ``kind`` results in memory,
    where the report's own section of that kind combines several results (precache: a
    reproduction's two parts side by side) and so is a plain :func:`register_section`."""

    def decorate(builder: ResultsBuilder) -> ResultsBuilder:
        if kind in _RESULTS_BUILDERS:
            raise ValueError(f"results section {kind!r} is registered twice")
        _RESULTS_BUILDERS[kind] = builder
        return builder

    return decorate


def register_results_section(
    kind: str, order: int = 100, name: str | None = None
) -> Callable[[ResultsBuilder], ResultsBuilder]:
    """Decorator for a builder of one section from one set of ``kind`` results.

    The report calls it once for every set :func:`find_results` finds (a run's own results,
    each analysis of its model, each sub-run), titling each section with where it came from;
    :func:`results_section` builds the same section from results in memory (notebooks)."""

    def decorate(builder: ResultsBuilder) -> ResultsBuilder:
        if kind in _RESULTS_BUILDERS:
            raise ValueError(f"results section {kind!r} is registered twice")
        _RESULTS_BUILDERS[kind] = builder

        def sections(run: RunView) -> list[Section]:
            out = []
            for found in find_results(run, kind):
                section = builder(_view_of(run, found), found.results)
                if section is None:
                    continue
                suffix = found.label + (", newest" if found.newest else "")
                if suffix:
                    section = dataclasses.replace(section, title=f"{section.title} ({suffix})")
                out.append(section)
            return out

        register_section(name or kind, order)(sections)
        return builder

    return decorate


def _view_of(run: RunView, found: Found) -> RunView:
    """The run a found set of results belongs to: a sub-run with its own ``config.json`` (its
    metrics, its config), else ``run`` itself."""
    folder = (run.path / found.source).parent
    if (
        folder != run.path
        and (folder / "config.json").is_file()
        and found.label
        and not found.label.startswith("analysis")
    ):
        return load_run_view(folder)
    return run


def results_section(
    kind: str, results: Mapping[str, Any], run: RunView | None = None
) -> Section | None:
    """The report section of ``kind`` for ``results`` (what ``Results.figures`` shows)."""

    load_plugins()
    builder = _RESULTS_BUILDERS.get(kind)
    if builder is None:
        return None
    view = run or RunView(path=Path("."), config={"kind": kind}, env={}, metrics=())
    return builder(view, results)


def unregister_section(name: str) -> SectionBuilder | None:
    """Remove a builder; returns it, or ``None`` if no builder had that name."""
    entry = _REGISTRY.pop(name, None)
    return entry[1] if entry else None


@contextmanager
def registered_section(
    name: str, builder: SectionBuilder, order: int = 100
) -> Iterator[SectionBuilder]:
    """Register ``builder`` for the duration of a ``with`` block (restores any previous one)."""
    previous = _REGISTRY.get(name)
    _REGISTRY[name] = (order, builder)
    try:
        yield builder
    finally:
        if previous is None:
            _REGISTRY.pop(name, None)
        else:
            _REGISTRY[name] = previous


def section_builders() -> list[tuple[str, SectionBuilder]]:
    """All registered builders as ``(name, builder)``, sorted by ``(order, name)``."""
    ordered = sorted(_REGISTRY.items(), key=lambda item: (item[1][0], item[0]))
    return [(name, builder) for name, (_, builder) in ordered]


def load_run_view(run_dir: Path) -> RunView:
    """Read ``config.json``, ``env.json`` (optional) and ``metrics.jsonl`` (optional)."""
    run_dir = Path(run_dir)
    config_path = run_dir / "config.json"
    if not config_path.is_file():
        raise LoadError(f"not a run directory: {run_dir} (no config.json)")
    config = read_json(config_path, what="run config")
    if not isinstance(config, dict):
        raise CorruptFileError(f"run config {config_path} is not a JSON object")
    env: Any = {}
    env_path = run_dir / "env.json"
    if env_path.is_file():
        env = read_json(env_path, what="run environment")
        if not isinstance(env, dict):
            raise CorruptFileError(f"run environment {env_path} is not a JSON object")
    metrics = tuple(r for r in read_jsonl(run_dir / "metrics.jsonl") if isinstance(r, dict))
    return RunView(path=run_dir, config=config, env=env, metrics=metrics)


# --------------------------------------------------------------------------- meta


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


# --------------------------------------------------------------------------- built-ins


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
