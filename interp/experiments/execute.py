"""``execute``: the one flow every experiment runs through, from the CLI and from Python alike.

1. validate the config; refuse a contradiction (``--resume`` with ``--overwrite``);
2. check the output: a new run directory may be created there (or ``--overwrite`` may replace an
   interp run), or a run to resume is there and its ``config.json`` matches the request (the one
   resume check: :meth:`Experiment.check_resume`);
3. ``prepare``: load the model, plan the work, estimate memory and disk; nothing written yet;
4. preflight (refuse what cannot fit, in one line) and the ``analyses/<kind>`` link check;
5. create (or reopen) the run directory: ``config.json`` (the config's own ``to_dict``, with
   ``kind`` and ``schema``) and ``env.json``;
6. ``run`` the experiment; write ``results.json`` (atomic, with ``kind`` and ``schema``), its
   copy ``MODEL_RUN/analyses/<kind>/results.json`` when the model is an interp run, and the
   report(s).

A library call and the CLI therefore write identical files.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic

from interp.config import _Config
from interp.errors import ConfigError
from interp.experiments.base import Context, Experiment, R
from interp.experiments.registry import get_experiment
from interp.progress import SILENT, Progress
from interp.runs import RunDir

CONFIG_SCHEMA = 1


def default_out(kind: str) -> Path:
    """``runs/<kind>-<time>``, the default run directory of a command."""
    return Path("runs") / f"{kind}-{_dt.datetime.now():%Y%m%d-%H%M%S}"


@dataclass
class Outcome(Generic[R]):
    """Where an executed experiment went and what it found."""

    run_dir: Path
    results: R
    resumed: bool = False
    report: Path | None = None
    model_run: Path | None = None
    model_report: Path | None = None


def _experiment(which: str | Experiment, config: _Config) -> Experiment:
    exp = get_experiment(which) if isinstance(which, str) else which
    if not isinstance(config, exp.config_cls):
        raise ConfigError(
            f"{exp.kind} takes a {exp.config_cls.__name__}, not a {type(config).__name__}"
        )
    return exp


def run_config(kind: str, config: _Config) -> dict[str, Any]:
    """What ``config.json`` holds: the config's fields, its kind and the schema version."""
    return {"kind": kind, "schema": CONFIG_SCHEMA, **config.to_dict()}


def execute(
    which: str | Experiment,
    config: _Config,
    out: str | Path | None = None,
    *,
    resume: bool = False,
    overwrite: bool = False,
    report: bool = True,
    progress: Progress = SILENT,
    model: Any = None,
) -> Outcome:
    """Run ``config`` as experiment ``which`` into run directory ``out`` (see the module doc).

    ``model`` is a model object to analyse instead of loading ``config.model``."""
    exp = _experiment(which, config)
    if resume and overwrite:
        raise ConfigError("--resume and --overwrite contradict each other")
    if resume and not exp.resumable:
        raise ConfigError(f"{exp.kind} runs cannot be resumed; pass --overwrite or a new --out")
    config.validate()
    out = Path(out) if out is not None else default_out(exp.kind)
    fresh = not resume or RunDir.nothing_to_resume(out)  # not there yet, or blank: start fresh
    run: RunDir | None = None
    if fresh:
        RunDir.check_creatable(out, overwrite, exp.remedy)
    else:
        run = RunDir.open(out)
        stored = exp.config_cls.from_dict(run.config())
        config = exp.check_resume(stored, config)
    prepared = exp.prepare(config, model=model, progress=progress)
    if prepared.model_run is not None:
        RunDir(prepared.model_run).check_analysis(exp.kind)
    from interp.resources import preflight

    est = prepared.estimate
    if est is not None:  # an experiment made of others (reproduce) leaves it to its parts
        progress.note(preflight(est.disk, est.memory, est.what, out, resident=est.resident))
    stored_config = run_config(exp.kind, prepared.config)
    if run is None:
        run = RunDir.create(out, stored_config, overwrite=overwrite, remedy=exp.remedy)
    elif {k: v for k, v in run.config().items() if k != "created"} != stored_config:
        run.tree.write_json("config.json", {**run.config(), **stored_config})
    seed = getattr(prepared.config, "seed", 0)
    run.write_env(
        seed if isinstance(seed, int) else 0, str(getattr(prepared.config, "device", "cpu"))
    )
    results = exp.run(prepared, Context(run, resume=not fresh, progress=progress))
    body = results.to_dict()
    run.tree.write_json("results.json", body)
    outcome = Outcome(run.path, results, resumed=not fresh, model_run=prepared.model_run)
    if prepared.model_run is not None:
        name = f"{_dt.datetime.now():%Y%m%d-%H%M%S}-{run.path.resolve().name}"
        RunDir(prepared.model_run).write_analysis(exp.kind, body, name)
    if report:
        from interp.report import build_report

        outcome.report = build_report(run.path)
        if prepared.model_run is not None:
            outcome.model_report = build_report(prepared.model_run)
    return outcome


__all__ = ["CONFIG_SCHEMA", "Outcome", "default_out", "execute", "run_config"]
