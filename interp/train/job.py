"""A training job end to end: configs -> run directory -> data -> model -> loop -> checkpoints.

This is the one library call behind ``interp train`` and ``interp demo``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from interp.config import DataConfig, TrainJob
from interp.data.corpus import canonical_spec
from interp.errors import InterpError
from interp.progress import Callbacks
from interp.runs import RunDir
from interp.safefs import Tree
from interp.train.sources import CorpusSource, DataSource, TaskSource
from interp.weights import load_job  # noqa: F401  (below models and train)


def with_absolute_corpus(job: TrainJob) -> TrainJob:
    """``job`` with a local corpus path made absolute (what a run records, so ``probe --model
    RUN`` and ``--resume`` read the same corpus from any working directory)."""
    if job.data.source != "corpus":
        return job

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


def corpus_check(
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
    on_note: Callable[[str], None] | None = None,
) -> RunDir:
    """Train into run directory ``out`` (new, or resumed from its last checkpoint): the
    ``train`` experiment through :func:`interp.experiments.execute`, without a report.

    A text run records its corpus (absolute path, fingerprint) in ``config.json``; resuming on
    a corpus whose fingerprint differs is refused unless ``allow_data_change``, and then the
    change is recorded (``config.json["data_changes"]``: step, old and new fingerprint).
    """
    from interp.experiments.train import train_run

    outcome = train_run(
        out, job, resume=resume, overwrite=overwrite,
        progress=Callbacks(on_start, on_step, on_note),
        allow_data_change=allow_data_change,
    )  # fmt: skip
    return RunDir(outcome.run_dir)
