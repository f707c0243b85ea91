"""The notebook API: every analysis on a model object you already hold, returning typed results.

    import interp
    model = interp.load_model("demo")                   # or a run dir, an HF dir, a hub name
    res = interp.collapse(model, formats=("bfloat16",))  # CollapseResults
    res.figure()                                          # the report's plotly figure
    res.save("runs/collapse-nb")                          # the run directory the CLI writes

    res = interp.grokking(task="modadd", steps=2000)     # GrokResults: training from scratch
    res = interp.count_sweep(d_values=(8, 16), m_values=(4, 8, 16), steps=300)
    res = interp.precache(steps=300, seeds=(0, 1))       # PrecacheResults: twins on the task

``model`` may be interp's own model, a ``TransformerBridge``, a Hugging Face
``PreTrainedModel`` (wrapped), a spec string (loaded), or None (the cached default model).
Keyword options are the fields of the experiment's config (``CollapseConfig``,
``SquashConfig``, ``ProbeConfig``, ``GrokConfig``, ``SweepConfig``: the same settings as the
CLI's options); ``precache`` takes the fields of its parts (``model``, ``train``, ``optim``,
``data``, ``myopia``) by name, or ``part.name`` where a name is in two parts, or a whole
``config=``.  Nothing is written anywhere unless ``out=`` is given (then the run directory is
written exactly as the CLI would, including the ``analyses/`` copy into a model run).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from interp.errors import ConfigError
from interp.progress import SILENT, Progress


def _options(cls: type, options: dict[str, Any], what: str) -> Any:
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(options) - names)
    if unknown:
        raise ConfigError(
            f"{what} has no option {', '.join(unknown)}; options: {', '.join(sorted(names))}"
        )
    return cls(**options)


def _nested_fields(config: Any, prefix: str = "") -> dict[str, list[str]]:
    """Each field name of ``config``'s nested dataclasses -> the dotted paths that hold it."""
    found: dict[str, list[str]] = {}
    for f in dataclasses.fields(config):
        path = f"{prefix}{f.name}"
        value = getattr(config, f.name)
        if dataclasses.is_dataclass(value):
            for name, paths in _nested_fields(value, f"{path}.").items():
                found.setdefault(name, []).extend(paths)
        elif prefix:
            found.setdefault(f.name, []).append(path)
    return found


def _set(config: Any, path: list[str], value: Any) -> Any:
    if len(path) == 1:
        return dataclasses.replace(config, **{path[0]: value})
    part = getattr(config, path[0])
    return dataclasses.replace(config, **{path[0]: _set(part, path[1:], value)})


def _override(config: Any, options: dict[str, Any], what: str) -> Any:
    """``config`` with ``options`` set, each a field of one of its parts, by name (``steps``) or
    by dotted path (``train.steps``; needed where two parts share a name)."""
    fields = _nested_fields(config)
    paths = {p for ps in fields.values() for p in ps}
    for key, value in options.items():
        if key in paths:
            path = key
        elif len(fields.get(key, ())) == 1:
            path = fields[key][0]
        elif key in fields:
            raise ConfigError(f"{what}: {key} is in {' and '.join(fields[key])}; name one")
        else:
            raise ConfigError(f"{what} has no option {key}; options: {', '.join(sorted(fields))}")
        config = _set(config, path.split("."), value)
    return config


def _spec(model: Any) -> tuple[str | None, Any]:
    """(spec, object): a string or path is loaded by the experiment, an object is analysed."""
    if model is None or isinstance(model, str | Path):
        return (None if model is None else str(model)), None
    return None, model


def _run(kind: str, config: Any, obj: Any, out: str | Path | None, progress: Progress) -> Any:
    from interp.experiments.execute import execute, run_in_memory

    if out is not None:
        return execute(kind, config, out, progress=progress, model=obj).results
    return run_in_memory(kind, config, model=obj, progress=progress)


def collapse(
    model: Any = None,
    *,
    device: str = "cpu",
    out: str | Path | None = None,
    progress: Progress = SILENT,
    **options: Any,
) -> Any:
    """Representational collapse (``interp collapse``); options: ``CollapseConfig`` fields
    (``formats``, ``family``, ``prompt``, ``min_length``, ``max_length``, ``every``, ...)."""
    from interp.analysis.collapse import CollapseConfig
    from interp.experiments.collapse import CollapseRun

    spec, obj = _spec(model)
    cfg = _options(CollapseConfig, options, "collapse")
    return _run(
        "collapse", CollapseRun(model=spec, device=device, collapse=cfg), obj, out, progress
    )


def squash(
    model: Any = None,
    *,
    device: str = "cpu",
    out: str | Path | None = None,
    progress: Progress = SILENT,
    **options: Any,
) -> Any:
    """Over-squashing sensitivities (``interp squash``); options: ``SquashConfig`` fields
    (``prompts``, ``length``, ``chunk``)."""
    from interp.analysis.sensitivity import SquashConfig
    from interp.experiments.squash import SquashRun

    spec, obj = _spec(model)
    cfg = _options(SquashConfig, options, "squash")
    return _run("squash", SquashRun(model=spec, device=device, squash=cfg), obj, out, progress)


def probe(
    model: Any = None,
    *,
    device: str = "cpu",
    out: str | Path | None = None,
    progress: Progress = SILENT,
    **options: Any,
) -> Any:
    """Future-token probes (``interp probe``); options: ``ProbeConfig`` fields (``horizon``,
    ``layers``, ``tokens``, ``dataset``, ``kinds``, ``seed``, ...)."""
    from probes.run import ProbeConfig

    spec, obj = _spec(model)
    if "model" in options:
        raise ConfigError("give the model as the first argument, not as an option")
    cfg = _options(ProbeConfig, {**options, "model": spec, "device": device}, "probe")
    return _run("probe", cfg, obj, out, progress)


def grokking(
    *,
    out: str | Path | None = None,
    progress: Progress = SILENT,
    **options: Any,
) -> Any:
    """Train one grokking run (``interp grok``; ``interp.grok`` is its models' package);
    options: ``GrokConfig`` fields (``task``, ``model``, ``p``, ``weight_decay``, ``lr``, ``steps``, ``seed``, ``device``, ...)."""
    from interp.experiments.grok import GrokRun
    from interp.grok.config import GrokConfig

    return _run("grok", GrokRun(_options(GrokConfig, options, "grok")), None, out, progress)


def count_sweep(
    *,
    out: str | Path | None = None,
    progress: Progress = SILENT,
    **options: Any,
) -> Any:
    """Train the counting grid (``interp count sweep``); options: ``SweepConfig`` fields
    (``task``, ``d_values``, ``m_values``, ``steps``, ``seed``, ...)."""
    from interp.analysis.counting import SweepConfig
    from interp.experiments.count_sweep import CountSweepConfig

    cfg = CountSweepConfig(_options(SweepConfig, options, "count_sweep"))
    return _run("count-sweep", cfg, None, out, progress)


def precache(
    config: Any = None,
    *,
    out: str | Path | None = None,
    progress: Progress = SILENT,
    **options: Any,
) -> Any:
    """Vanilla and myopic twins (``interp precache``): ``config`` (a ``PrecacheConfig``; default
    the command's defaults, :meth:`PrecacheConfig.default`) with ``options`` set on its parts
    (``steps``, ``seeds``, ``d_model``, ``task``, ``lr``, ``train.seed``, ...); on the default
    config ``task`` and ``task_options`` are taken as the command takes them (the
    task's options over :func:`interp.tasks.defaults.command_task_options`)."""
    from interp.experiments.precache import PrecacheConfig, precache_config

    base = config
    if config is None:  # the task and its options merged as the command merges them
        names = ("task", "task_options", "data.task", "data.task_options")
        task = {k.removeprefix("data."): options.pop(k) for k in names if k in options}
        base = precache_config(**task)  # PrecacheConfig.default() when no task is named
    if not isinstance(base, PrecacheConfig):
        raise ConfigError(f"precache takes a PrecacheConfig, not a {type(base).__name__}")
    if isinstance(options.get("seeds"), int) and not isinstance(options["seeds"], bool):
        raise ConfigError("precache: seeds is a tuple of seeds, e.g. seeds=(0, 1)")
    return _run("precache", _override(base, options, "precache"), None, out, progress)


__all__ = ["collapse", "count_sweep", "grokking", "precache", "probe", "squash"]
