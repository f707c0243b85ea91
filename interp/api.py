"""The notebook API: every analysis on a model object you already hold, returning typed results.

    import interp
    model = interp.load_model("demo")                   # or a run dir, an HF dir, a hub name
    res = interp.collapse(model, formats=("bfloat16",))  # CollapseResults
    res.figure()                                          # the report's plotly figure
    res.save("runs/collapse-nb")                          # the run directory the CLI writes

``model`` may be interp's own model, a ``TransformerBridge``, a Hugging Face
``PreTrainedModel`` (wrapped), a spec string (loaded), or None (the cached default model).
Keyword options are the fields of the experiment's config (``CollapseConfig``,
``SquashConfig``, ``ProbeConfig``: the same settings as the CLI's options); nothing is written
anywhere unless ``out=`` is given (then the run directory is written exactly as the CLI would,
including the ``analyses/`` copy into a model run).
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


__all__ = ["collapse", "probe", "squash"]
