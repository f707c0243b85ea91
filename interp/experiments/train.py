"""``train``: a hooked transformer trained on text or a synthetic task, as an experiment.

The data plumbing (resolving the model's shape from the data, the tokenizer, the corpus record)
is :mod:`interp.train.job`; the loop is :func:`interp.train.loop.train`.  This file is the
experiment around them: its needs are known from the config alone (checked before any data is
read), ``prepare`` reads the data and resolves the job, ``run`` trains into the run directory
(checkpoints as it goes, resumable after a kill, bit-identical).
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import Any, ClassVar

from interp import distributed as dist
from interp.errors import ConfigError, InterpError
from interp.experiments.base import (
    Context,
    Estimate,
    Experiment,
    Prepared,
    Results,
    register_experiment,
)
from interp.models import check_model_config
from interp.models.transformer import HookedTransformer
from interp.progress import SILENT, Progress
from interp.resources import model_config_preflight, train_job_estimate
from interp.runs import RunDir
from interp.seed import seed_everything
from interp.train.checkpoint import (
    latest_checkpoint,
    restore_checkpoint,
    save_checkpoint,
    save_weights,
)
from interp.train.job import (
    TrainJob,
    corpus_check,
    corpus_record,
    resolve,
    save_tokenizer,
    with_absolute_corpus,
)
from interp.train.loop import train
from interp.train.optim import build_optimizer


@dataclass
class TrainResults(Results):
    kind: ClassVar[str] = "train"
    schema: ClassVar[int] = 1

    steps: int
    final: dict[str, Any] | None = None  # the last validation row (step, loss, accuracy, ...)
    resumed_from: int = 0

    def lines(self) -> list[str]:
        if not self.final:
            return []
        last = self.final
        acc = f", accuracy {last['accuracy']:.3f}" if "accuracy" in last else ""
        return [f"step {last['step']}: validation loss {last['loss']:.4f}{acc}"]


@dataclass
class _Plan:
    """What ``prepare`` resolved: the data source, the tokenizer (or task), the corpus read,
    and on a resume the stored job and config it continues."""

    source: Any
    reader: Any
    corpora: list[Any] = field(default_factory=list)
    changes: list[dict[str, Any]] = field(default_factory=list)
    stored: TrainJob | None = None
    stored_config: dict[str, Any] | None = None


@register_experiment
class Train(Experiment[TrainJob, TrainResults]):
    kind = "train"
    config_cls = TrainJob
    results_cls = TrainResults
    resumable = True
    writes_while_running = True
    data_parallel = True
    description = "train a hooked transformer on text or a synthetic task"

    def validate(self, config: TrainJob) -> None:
        for part in (config.data, config.model):  # the model's encoding before the loop's fields
            part.validate()
        check_model_config(config.model)
        config.train.validate()

    def estimate(self, config: TrainJob, report: bool = True) -> Estimate:

        disk, memory = train_job_estimate(config, report=report)
        return Estimate(memory, disk, "training")

    def check_resume(self, stored: TrainJob, asked: TrainJob) -> TrainJob:
        return super().check_resume(with_absolute_corpus(stored), with_absolute_corpus(asked))

    def prepare(
        self,
        config: TrainJob,
        model: Any = None,
        progress: Progress = SILENT,
        run: RunDir | None = None,
        allow_data_change: bool = False,
    ) -> Prepared[TrainJob]:
        if allow_data_change and run is None:
            raise ConfigError("--allow-data-change only applies with --resume")
        job = with_absolute_corpus(config)
        if run is None:
            plan = _Plan(None, None)
            job, plan.source, plan.reader = resolve(job, None, plan.corpora.append)
            return Prepared(job, None, state=plan)
        stored_config = run.config()
        plan = _Plan(None, None, stored=job, stored_config=stored_config)
        check = corpus_check(stored_config, run, allow_data_change, plan.changes)

        def on_corpus(corpus: Any) -> None:
            check(corpus)
            plan.corpora.append(corpus)

        job, plan.source, plan.reader = resolve(job, run.path, on_corpus)

        model_config_preflight(job.model.to_dict(), run.config_path)
        return Prepared(job, None, state=plan)

    def run(self, prepared: Prepared[TrainJob], context: Context) -> TrainResults:

        job, plan, run = prepared.config, prepared.state, context.run
        assert run is not None  # writes_while_running: its directory exists
        main = dist.is_main()  # data-parallel: the other ranks read the run, never write it
        if plan.stored is None and main:
            _record_fresh(run, job, plan)
        seed_everything(job.train.seed)
        model = HookedTransformer(job.model, seed=job.train.seed)
        optimizer = build_optimizer(model, job.train.optim)
        start = 0
        ckpt = latest_checkpoint(run.path) if plan.stored is not None else None
        if ckpt is not None:
            restore_checkpoint(ckpt, model, optimizer)
            start = ckpt.step
        if plan.stored is not None and main:
            _record_resume(run, job, plan, start)
            run.truncate_metrics_after(start)
            if start:
                context.progress.note(f"resuming from step {start} of {job.train.steps}")
        if start < job.train.steps:
            train(
                model,
                plan.source,
                job.train,
                optimizer=optimizer,
                start_step=start,
                on_metrics=run.append_metrics if main else None,
                on_checkpoint=(
                    (lambda step, m, opt: save_checkpoint(run.path, step, m, opt)) if main else None
                ),
                progress=context.progress,
            )
        if not main:
            return TrainResults(job.train.steps, None, resumed_from=start)
        save_weights(run.weights_path, model.state_dict())
        val = [r for r in run.metrics() if r.get("split") == "val"]
        return TrainResults(job.train.steps, val[-1] if val else None, resumed_from=start)


def _record_fresh(run: RunDir, job: TrainJob, plan: _Plan) -> None:
    """A new text run records its corpus (fingerprint, size) and saves its tokenizer."""
    if plan.corpora:
        run.tree.write_json(
            "config.json", {**run.config(), "corpus": corpus_record(plan.corpora[0])}
        )
    if hasattr(plan.reader, "save") and job.data.source == "corpus":
        save_tokenizer(plan.reader, run.path / "tokenizer")


def _record_resume(run: RunDir, job: TrainJob, plan: _Plan, step: int) -> None:
    """After a resume's checkpoint is restored: the corpus record (first recorded for a run
    from before fingerprints) and an allowed data change (step, old and new fingerprint)."""
    config = run.config()
    new = dict(config)
    if plan.corpora:
        new["corpus"] = corpus_record(plan.corpora[0])
    if plan.changes:
        when = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
        history = config.get("data_changes")
        history = list(history) if isinstance(history, list) else []
        new["data_changes"] = history + [{"step": step, **c, "at": when} for c in plan.changes]
    if new != config:
        run.tree.write_json("config.json", new)


def train_run(
    out: Any,
    job: TrainJob,
    *,
    resume: bool = False,
    overwrite: bool = False,
    report: bool = False,
    progress: Progress = SILENT,
    allow_data_change: bool = False,
) -> Any:
    """:func:`interp.experiments.execute` of a training job (the library's one way to train)."""
    from interp.experiments.execute import execute

    if not isinstance(job, TrainJob):
        raise InterpError(f"train takes a TrainJob, not a {type(job).__name__}")
    options = {"allow_data_change": True} if allow_data_change else {}
    return execute(
        "train", job, out, resume=resume, overwrite=overwrite, report=report,
        progress=progress, options=options,
    )  # fmt: skip


__all__ = ["Train", "TrainResults", "train_run"]
