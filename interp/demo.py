"""The embedded-default job: a small GPT-2-shaped model on the built-in corpus, cached.

``interp demo`` trains it once (a few minutes on 2 CPU cores), keeps it in the cache keyed by
its config, and reuses it afterwards; later analyses (probes, collapse) use it as their default
model, so everything works offline.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from interp.config import DataConfig, ModelConfig, OptimConfig, TrainConfig
from interp.errors import ConfigError, InterpError
from interp.runs import NEW_OUT_ONLY, RunDir, holds, lock_run, release_run
from interp.train.job import TrainJob, run_training

# RoPE, not learned absolute positions: collapse analyses need positions that fade with distance
# (see MISSION.md §2); otherwise GPT-2 shaped: pre-LayerNorm, GELU, 4x MLP, biases.
DEMO_MODEL = ModelConfig(
    n_layers=4,
    d_model=128,
    n_heads=4,
    d_mlp=512,
    n_ctx=128,
    act_fn="gelu_new",
    normalization="layernorm",
    positional="rope",
    tied_embeddings=True,
)
DEMO_TRAIN = TrainConfig(
    steps=600,
    batch_size=16,
    eval_every=100,
    eval_batches=8,
    checkpoint_every=100,
    log_every=10,
    seed=0,
    optim=OptimConfig(lr=3e-3, warmup_steps=60, weight_decay=0.1),
)
DEMO_DATA = DataConfig(
    source="corpus", corpus="builtin", max_chars=3_000_000, tokenizer="bpe", bpe_vocab_size=2048
)


STEPS_ENV = "INTERP_DEMO_STEPS"  # a shorter default model (smoke tests, CI): its own cache entry


def demo_job(steps: int | None = None, seed: int = 0) -> TrainJob:
    if steps is None and os.environ.get(STEPS_ENV, "").strip():
        try:
            steps = int(os.environ[STEPS_ENV])
        except ValueError:
            raise ConfigError(f"{STEPS_ENV} must be a whole number of steps") from None
        if steps < 1:
            raise ConfigError(f"{STEPS_ENV} must be at least 1")
    train = DEMO_TRAIN if steps is None else DEMO_TRAIN.replace(steps=steps)
    train = train if seed == DEMO_TRAIN.seed else train.replace(seed=seed)  # its own entry
    return TrainJob(DEMO_MODEL, train, DEMO_DATA)


def cache_root() -> Path:
    return Path(os.environ.get("INTERP_CACHE", Path.home() / ".cache" / "interp"))


# bump when the data pipeline changes what the same config trains on (cached models go stale)
DATA_REVISION = 2  # 2: character-balanced validation split


def demo_run_dir(job: TrainJob) -> Path:
    keyed = {**job.to_dict(), "data_revision": DATA_REVISION}
    key = hashlib.sha256(json.dumps(keyed, sort_keys=True).encode()).hexdigest()[:12]
    return cache_root() / "demo" / key


def tour_run_dir(config: Any, model_dir: Path) -> Path:
    """Where ``interp demo`` keeps the tour of ``config`` (a :class:`DemoConfig`) over the
    default model in ``model_dir``: keyed by both, so another tour or model is another run."""
    keyed = {"tour": config.to_dict(), "model": model_dir.name}
    key = hashlib.sha256(json.dumps(keyed, sort_keys=True).encode()).hexdigest()[:12]
    return cache_root() / "tour" / key


def ensure_demo_model(
    steps: int | None = None,
    out: Path | None = None,
    on_start: Callable[[int, int], None] | None = None,
    on_step: Callable[[int], None] | None = None,
    on_wait: Callable[[str], None] | None = None,
    device: str = "cpu",
    seed: int = 0,
    on_note: Callable[[str], None] | None = None,
) -> tuple[RunDir, bool]:
    """Train the default model, or reuse it.  Returns (run, reused).

    Two processes asking at once (two analyses without ``--model``): the second waits for the
    first to finish training (``on_wait(message)`` is told once), then reuses its model.  Waiting,
    not refusing: the cache is shared state the user never named, both want the same model, and
    waiting costs nothing (the alternative is training it twice).  The shared cache's lock is
    released as soon as the model is ready; an explicit ``out`` stays locked for the command.
    ``device`` is where it trains (not part of the cache key: the same model wherever made)."""
    job = demo_job(steps, seed)
    path = Path(out) if out is not None else demo_run_dir(job)
    job = TrainJob(job.model, job.train.replace(device=device), job.data)
    run = RunDir(path)
    if run.weights_path.is_file() and run.config_path.is_file():
        return run, True
    if path.exists() and not run.config_path.is_file() and not RunDir.is_blank(path):
        # a folder of someone else's files: refused, untouched (not even a lock file in it)
        raise InterpError(f"run directory {path} already exists; {NEW_OUT_ONLY}")
    path.mkdir(parents=True, exist_ok=True)
    held_before = holds(path)

    def waiting(pid: str) -> None:
        if on_wait is not None:
            on_wait(
                f"waiting for another interp process (pid {pid}) to finish training the default "
                f"model in {path}"
            )

    lock_run(path, wait=True, on_wait=waiting, hint=_RESUME_HINT if out is None else _AGAIN_HINT)
    try:
        if run.weights_path.is_file() and run.config_path.is_file():
            return run, True  # trained by the process we waited for
        resume = run.config_path.is_file()  # a previous demo was interrupted: continue it
        trained = run_training(
            path, job, resume=resume, on_start=on_start, on_step=on_step, on_note=on_note
        )
        return trained, False
    finally:
        if out is None and not held_before:
            release_run(path)


_RESUME_HINT = "the next command that uses the default model continues its training"
_AGAIN_HINT = "the same command continues its training"
