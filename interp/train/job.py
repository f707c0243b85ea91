"""A training job end to end: configs -> run directory -> data -> model -> loop -> checkpoints.

This is the one library call behind ``interp train`` and ``interp demo``.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from interp.config import DataConfig, ModelConfig, TrainConfig
from interp.errors import ConfigError, CorruptFileError, InterpError
from interp.models.transformer import HookedTransformer
from interp.progress import Callbacks
from interp.runs import RunDir
from interp.safefs import Tree
from interp.seed import seed_everything
from interp.train.checkpoint import (
    latest_checkpoint,
    restore_checkpoint,
    save_checkpoint,
    save_weights,
)
from interp.train.loop import train
from interp.train.optim import build_optimizer
from interp.train.sources import CorpusSource, DataSource, TaskSource

KIND = "train"


@dataclass(frozen=True)
class TrainJob:
    model: ModelConfig
    train: TrainConfig
    data: DataConfig

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": KIND,
            "seed": self.train.seed,
            "model": self.model.to_dict(),
            "train": self.train.to_dict(),
            "data": self.data.to_dict(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainJob:
        if d.get("kind") != KIND:
            raise ConfigError(f"config kind is {d.get('kind')!r}, expected {KIND!r}")
        for key in ("model", "train", "data"):
            if key not in d:
                raise ConfigError(f"config is missing the {key!r} section")
        return cls(
            ModelConfig.from_dict(d["model"]),
            TrainConfig.from_dict(d["train"]),
            DataConfig.from_dict(d["data"]),
        )


def load_job(run: RunDir) -> TrainJob:
    """The job of a training run; an invalid field is one line naming its ``config.json``."""
    try:
        return TrainJob.from_dict(run.config())
    except ConfigError as e:
        raise CorruptFileError(f"run config {run.config_path}: {e}") from e


def with_absolute_corpus(job: TrainJob) -> TrainJob:
    """``job`` with a local corpus path made absolute (what a run records, so ``probe --model
    RUN`` and ``--resume`` read the same corpus from any working directory)."""
    if job.data.source != "corpus":
        return job
    from interp.data.corpus import canonical_spec

    return TrainJob(job.model, job.train, job.data.replace(corpus=canonical_spec(job.data.corpus)))


def corpus_record(corpus: Any) -> dict[str, Any]:
    """What ``config.json["corpus"]`` keeps of the corpus a run trained on (checked on resume)."""
    return {
        "fingerprint": corpus.fingerprint,
        "documents": len(corpus.documents),
        "chars": corpus.n_chars,
    }


def _tokenizer_for(data: DataConfig, run_dir: Path | None, corpus: Any) -> Any:
    from interp.data import ByteTokenizer, load_tokenizer, train_bpe

    tok_dir = run_dir / "tokenizer" if run_dir is not None else None
    if tok_dir is not None and tok_dir.is_dir():
        return load_tokenizer(tok_dir)
    if data.tokenizer == "byte":
        tok = ByteTokenizer()
    else:
        tok = train_bpe(corpus.documents, data.bpe_vocab_size)
    if tok_dir is not None:
        save_tokenizer(tok, tok_dir)
    return tok


def save_tokenizer(tokenizer: Any, tok_dir: Path) -> None:
    """Assemble the tokenizer folder under a temporary name and rename it into place, so a kill
    mid-save never leaves a half-written ``tokenizer/`` that a resume would trust.  Paths go
    through the run's :class:`~interp.safefs.Tree` (no write through a planted link)."""
    tok_dir = Path(tok_dir)
    tree = Tree(tok_dir.parent)
    tmp = f".tmp-{tok_dir.name}"
    tree.remove(tmp)
    tokenizer.save(tree.mkdir(tmp))
    tree.remove(tok_dir.name)
    tree.rename(tmp, tok_dir.name)


def resolve(
    job: TrainJob,
    run_dir: Path | None = None,
    on_corpus: Callable[[Any], None] | None = None,
) -> tuple[TrainJob, DataSource, Any]:
    """Fix the model shape from the data (vocabulary, context) and build the data source.

    Returns the resolved job, the data source, and the tokenizer (or task) the model reads.
    ``on_corpus(corpus)`` sees a text corpus as soon as it is loaded, before it is tokenised
    (a resume checks its fingerprint there, and may refuse).
    """
    data, tcfg = job.data, job.train
    if data.source == "task":
        from interp.tasks import build_task

        task = build_task(data.task or "", data.task_options)
        model = job.model.replace(**task.model_overrides())
        source: DataSource = TaskSource(task, tcfg.batch_size, tcfg.seed, tcfg.eval_batches)
        return TrainJob(model, tcfg, data), source, task
    from interp.data import build_text_dataset, load_corpus

    corpus = load_corpus(data.corpus, max_chars=data.max_chars)
    if on_corpus is not None:
        on_corpus(corpus)
    tokenizer = _tokenizer_for(data, run_dir, corpus)
    model = job.model.replace(d_vocab=tokenizer.vocab_size, input_kind="tokens")
    dataset = build_text_dataset(
        corpus, tokenizer, block_len=model.n_ctx, val_fraction=data.val_fraction, seed=tcfg.seed
    )
    source = CorpusSource(dataset.train, dataset.val, tcfg.batch_size, tcfg.seed, tcfg.eval_batches)
    return TrainJob(model, tcfg, data), source, tokenizer


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in d.items():
        if (
            isinstance(value, dict)
            and value
            and key != "task_options"
            and key != "positional_options"
        ):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


# resolved from the data (compared through the data config) or allowed to grow on resume
_RESUME_FREE = {"train.steps", "model.d_vocab", "model.n_ctx", "model.input_kind", "model.d_input"}


def _check_resume_matches(stored: TrainJob, asked: TrainJob) -> TrainJob:
    """On resume, the stored config wins; a different request (other than more steps) is refused.

    Extending ``steps`` stretches the cosine schedule over the new total from the resume point.
    """
    s, a = _flatten(stored.to_dict()), _flatten(asked.to_dict())
    for key in sorted(set(s) | set(a)):
        if key in _RESUME_FREE or s.get(key) == a.get(key):
            continue
        raise InterpError(
            f"--resume: {key} is {a.get(key)!r} but the run was started with {s.get(key)!r}; "
            "use the same options (or a new --out)"
        )
    return TrainJob(stored.model, stored.train.replace(steps=asked.train.steps), stored.data)


def _corpus_check(
    config: dict[str, Any], run: RunDir, allow_change: bool, changes: list[dict[str, Any]]
) -> Callable[[Any], None]:
    """On resume: the corpus must be the one the run trained on (same fingerprint), unless
    ``allow_change``; a change allowed is appended to ``changes`` (recorded in config.json)."""
    recorded = config.get("corpus")

    def check(corpus: Any) -> None:
        before = recorded.get("fingerprint") if isinstance(recorded, dict) else None
        if before is None or before == corpus.fingerprint:
            return  # a run from before fingerprints: the current one is recorded from now on
        if not allow_change:
            raise InterpError(
                f"--resume: the corpus changed since the run started ({corpus.name} has "
                f"fingerprint {corpus.fingerprint}, {run.config_path} records {before}); "
                "restore it, or pass --allow-data-change to continue on the new data "
                "(recorded in config.json)"
            )
        changes.append({"from": before, "to": corpus.fingerprint})

    return check


def run_training(
    out: Path,
    job: TrainJob,
    resume: bool = False,
    overwrite: bool = False,
    on_step: Callable[[int], None] | None = None,
    on_start: Callable[[int, int], None] | None = None,
    allow_data_change: bool = False,
) -> RunDir:
    """Train into run directory ``out`` (new, or resumed from its last checkpoint).

    A text run records its corpus (absolute path, fingerprint) in ``config.json``; resuming on
    a corpus whose fingerprint differs is refused unless ``allow_data_change``, and then the
    change is recorded (``config.json["data_changes"]``: step, old and new fingerprint).
    """
    out = Path(out)
    job = with_absolute_corpus(job)
    if resume and RunDir.nothing_to_resume(out):
        resume = False  # not there yet, or killed before its config.json: nothing to continue
    corpora: list[Any] = []
    changes: list[dict[str, Any]] = []
    if resume:
        run = RunDir.open(out)
        config = run.config()
        stored = with_absolute_corpus(load_job(run))
        check = _corpus_check(config, run, allow_data_change, changes)

        def on_corpus(corpus: Any) -> None:
            check(corpus)
            corpora.append(corpus)

        job, source, reader = resolve(_check_resume_matches(stored, job), run.path, on_corpus)
        from interp.resources import model_config_preflight

        model_config_preflight(job.model.to_dict(), run.config_path)
    else:
        RunDir.check_creatable(out, overwrite)
        resolved, source, reader = resolve(job, None, corpora.append)
        config = resolved.to_dict()
        if corpora:
            config["corpus"] = corpus_record(corpora[0])
        run = RunDir.create(out, config, overwrite=overwrite)
        job = resolved
        if hasattr(reader, "save") and job.data.source == "corpus":
            save_tokenizer(reader, run.path / "tokenizer")
    run.write_env(job.train.seed, job.train.device)

    seed_everything(job.train.seed)
    model = HookedTransformer(job.model, seed=job.train.seed)
    optimizer = build_optimizer(model, job.train.optim)
    start = 0
    ckpt = latest_checkpoint(run.path) if resume else None
    if ckpt is not None:
        restore_checkpoint(ckpt, model, optimizer)
        start = ckpt.step
    if resume:
        _update_config(run, config, job, stored, corpora, changes, start)
        run.truncate_metrics_after(start)
    if start >= job.train.steps:
        save_weights(run.weights_path, model.state_dict())
        return run
    train(
        model,
        source,
        job.train,
        optimizer=optimizer,
        start_step=start,
        on_metrics=run.append_metrics,
        on_checkpoint=lambda step, m, opt: save_checkpoint(run.path, step, m, opt),
        progress=Callbacks(on_start, on_step),
    )
    save_weights(run.weights_path, model.state_dict())
    return run


def _update_config(
    run: RunDir,
    config: dict[str, Any],
    job: TrainJob,
    stored: TrainJob,
    corpora: list[Any],
    changes: list[dict[str, Any]],
    step: int,
) -> None:
    """After a resume's checkpoint is restored (a refused resume changes nothing): more steps,
    the corpus record (first recorded for a run from before fingerprints), a data change."""
    new = dict(config)
    if job.train.steps != stored.train.steps:
        new["train"] = job.train.to_dict()
    if job.data.to_dict() != config.get("data"):
        new["data"] = job.data.to_dict()  # a relative corpus path of an older run, made absolute
    if corpora:
        new["corpus"] = corpus_record(corpora[0])
    if changes:
        when = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
        history = config.get("data_changes")
        history = list(history) if isinstance(history, list) else []
        new["data_changes"] = history + [{"step": step, **c, "at": when} for c in changes]
    if new != config:
        run.tree.write_json("config.json", new)
