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
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic

from interp import distributed as dist
from interp.config import _Config
from interp.errors import ConfigError, CorruptFileError
from interp.experiments.base import Context, Experiment, R
from interp.experiments.registry import get_experiment
from interp.progress import SILENT, Progress
from interp.resources import preflight
from interp.runs import RunDir, holds, release_run

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
    options: Mapping[str, Any] | None = None,
) -> Outcome:
    """Run ``config`` as experiment ``which`` into run directory ``out`` (see the module doc).

    ``model`` is a model object to analyse instead of loading ``config.model``; ``options``
    are per-invocation choices that are not part of the config (``allow_data_change``),
    passed to ``prepare``."""
    exp = _experiment(which, config)
    if dist.is_distributed():
        if not exp.data_parallel:
            raise ConfigError(
                f"{exp.kind} runs in one process; launch it without torchrun "
                "(train, probe and precache run data-parallel)"
            )
        if not dist.is_main():
            return _execute_worker(exp, config, out, resume, model, options)
    held_before = out is not None and holds(Path(out))
    outcome = _execute(exp, config, out, resume, overwrite, report, progress, model, options)
    if not held_before:  # done: the run is free again (an error keeps it held, so the CLI's
        release_run(outcome.run_dir)  # interruption line can still name it)
    return outcome


def _execute(
    exp: Experiment,
    config: _Config,
    out: str | Path | None,
    resume: bool,
    overwrite: bool,
    report: bool,
    progress: Progress,
    model: Any,
    options: Mapping[str, Any] | None = None,
) -> Outcome:
    if resume and overwrite:
        raise ConfigError("--resume and --overwrite contradict each other")
    if resume and not exp.resumable:
        raise ConfigError(f"{exp.kind} runs cannot be resumed; pass --overwrite or a new --out")
    if resume and out is None:
        raise ConfigError("--resume needs --out RUN_DIR")
    exp.validate(config)
    out = Path(out) if out is not None else default_out(exp.kind)
    fresh = not resume or RunDir.nothing_to_resume(out)  # not there yet, or blank: start fresh
    run: RunDir | None = None
    if fresh:
        RunDir.check_creatable(out, overwrite, exp.remedy)
    else:
        run = RunDir.open(out)
        stored_kind = run.config().get("kind")
        if stored_kind != exp.kind:
            raise ConfigError(f"--resume: {out} is a {stored_kind!r} run, not {exp.kind!r}")
        config = exp.check_resume(_stored_config(exp, run), config)

    # lines said once the work starts (its progress starts: a refused start, say a run another
    # process holds or a corrupt checkpoint, prints its one line only)
    notes: list[str] = []
    early = exp.estimate(config, report=report)
    if early is not None:  # known from the config: checked before any data is read
        notes.append(preflight(early.disk, early.memory, early.what, out))
    if resume and fresh:
        notes.append(nothing_to_resume_line(out))
    extra: dict[str, Any] = dict(options or {})
    if exp.resumable:
        extra["run"] = run
    prepared = exp.prepare(config, model=model, progress=progress, **extra)
    if prepared.model_run is not None:
        RunDir(prepared.model_run).check_analysis(exp.kind)
    est = prepared.estimate
    if est is not None:  # an experiment made of others (reproduce) leaves it to its parts
        progress.note(preflight(est.disk, est.memory, est.what, out, resident=est.resident))
    results = None
    if run is None and not exp.writes_while_running:
        # an analysis: computed first, its run directory written once it is done (a Ctrl-C or
        # an error mid-way leaves nothing behind)
        results = exp.run(
            prepared, Context(None, resume=False, progress=_Deferred(progress, notes))
        )
    run = _open_or_create(exp, prepared, run, out, overwrite)
    if exp.writes_while_running:  # data-parallel ranks wait for the run directory
        dist.broadcast_object((str(out), fresh, prepared.config))
    if results is None:
        context = Context(run, resume=not fresh, progress=_Deferred(progress, notes))
        results = exp.run(prepared, context)
    results._config = prepared.config  # what Results.save writes as config.json
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


def _execute_worker(
    exp: Experiment,
    config: _Config,
    out: str | Path | None,
    resume: bool,
    model: Any,
    options: Mapping[str, Any] | None,
) -> Outcome:
    """A data-parallel rank other than 0: the same work on its shard, writing nothing (rank 0
    checks the output, creates or reopens the run directory and writes every file)."""
    config.validate()
    extra: dict[str, Any] = dict(options or {})
    run: RunDir | None = None
    fresh = True
    if exp.writes_while_running:  # after rank 0 made (or reopened) the run directory
        where, fresh, config = dist.broadcast_object(None)
        run = RunDir(Path(where))  # read only here: no lock taken, nothing written
    if exp.resumable:
        extra["run"] = None if fresh else run
    prepared = exp.prepare(config, model=model, progress=SILENT, **extra)
    results = exp.run(prepared, Context(run, resume=not fresh, progress=SILENT))
    where = run.path if run is not None else Path(out) if out is not None else Path(".")
    return Outcome(where, results, resumed=not fresh)


class _Deferred:
    """``progress`` that says ``notes`` first, once the work starts."""

    def __init__(self, progress: Progress, notes: list[str]) -> None:
        self.progress, self.notes = progress, notes

    def _flush(self) -> None:
        while self.notes:
            if text := self.notes.pop(0):
                self.progress.note(text)

    def start(self, total: int, done: int = 0, label: str | None = None) -> None:
        self._flush()
        self.progress.start(total, done, label)

    def advance(self, done: int, **info: Any) -> None:
        self._flush()
        self.progress.advance(done, **info)

    def note(self, text: str) -> None:
        self._flush()
        self.progress.note(text)


def nothing_to_resume_line(out: Path) -> str:
    """What ``--resume`` says when ``out`` holds nothing to resume and a new run starts."""
    why = "it does not exist yet" if not Path(out).exists() else "no run was started there"
    return f"nothing to resume in {out} ({why}): starting a new run there"


def _stored_config(exp: Experiment, run: RunDir) -> Any:
    """The config a run was started with; an invalid one is one line naming its file."""

    try:
        stored = exp.config_cls.from_dict(run.config())
        exp.validate(stored)
        return stored
    except ConfigError as e:
        raise CorruptFileError(f"run config {run.config_path}: {e}") from e


def _open_or_create(
    exp: Experiment, prepared: Any, run: RunDir | None, out: Path, overwrite: bool
) -> RunDir:
    """The run directory with the prepared config in its ``config.json`` and an ``env.json``."""
    stored_config = run_config(exp.kind, prepared.config)
    if run is None:
        run = RunDir.create(out, stored_config, overwrite=overwrite, remedy=exp.remedy)
    elif {k: v for k, v in run.config().items() if k != "created"} != stored_config:
        run.tree.write_json("config.json", {**run.config(), **stored_config})
    seed = getattr(prepared.config, "seed", 0)
    executor = (prepared.state or {}).get("executor") if isinstance(prepared.state, dict) else None
    run.write_env(
        seed if isinstance(seed, int) else 0,
        str(getattr(prepared.config, "device", "cpu")),
        world_size=dist.world_size(),
        executor=executor.describe() if executor is not None else None,
    )
    return run


def run_in_memory(
    which: str | Experiment,
    config: _Config,
    *,
    model: Any = None,
    progress: Progress = SILENT,
) -> Any:
    """Run an experiment without a run directory (notebooks): validate, prepare, run with a
    scratch directory that is removed afterwards, and return its typed results.  Nothing is
    written anywhere else (no ``analyses/`` copy into a model's run); ``results.save(dir)``
    writes the run directory the CLI would."""
    import shutil
    import tempfile

    exp = _experiment(which, config)
    exp.validate(config)
    prepared = exp.prepare(config, model=model, progress=progress)
    if not exp.writes_while_running:
        results = exp.run(prepared, Context(None, resume=False, progress=progress))
        results._config = prepared.config
        return results
    scratch = Path(tempfile.mkdtemp(prefix=f"interp-{exp.kind}-"))
    try:
        run = RunDir.create(scratch / "run", run_config(exp.kind, prepared.config))
        results = exp.run(prepared, Context(run, resume=False, progress=progress))
    finally:
        release_run(scratch / "run")
        shutil.rmtree(scratch, ignore_errors=True)
    results._config = prepared.config  # what save() writes as config.json
    return results


def save_results(results: Any, directory: Path, overwrite: bool = False) -> Path:
    """The run directory of ``results`` (see :meth:`Results.save`)."""
    config = getattr(results, "_config", None)
    if config is None:
        raise ConfigError(
            "these results carry no config (they were read back, not run): nothing to save"
        )
    run = RunDir.create(directory, run_config(results.kind, config), overwrite=overwrite,
                        remedy="pass overwrite=True to replace it")  # fmt: skip
    seed = getattr(config, "seed", 0)
    run.write_env(seed if isinstance(seed, int) else 0, str(getattr(config, "device", "cpu")))
    run.tree.write_json("results.json", results.to_dict())
    from interp.report import build_report

    build_report(run.path)
    release_run(run.path)
    return run.path


__all__ = [
    "CONFIG_SCHEMA",
    "Outcome",
    "default_out",
    "execute",
    "run_config",
    "run_in_memory",
    "save_results",
]
