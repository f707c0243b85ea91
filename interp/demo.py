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

from interp.config import DataConfig, ModelConfig, OptimConfig, TrainConfig
from interp.runs import RunDir
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


def demo_job(steps: int | None = None) -> TrainJob:
    train = DEMO_TRAIN if steps is None else DEMO_TRAIN.replace(steps=steps)
    return TrainJob(DEMO_MODEL, train, DEMO_DATA)


def cache_root() -> Path:
    return Path(os.environ.get("INTERP_CACHE", Path.home() / ".cache" / "interp"))


# bump when the data pipeline changes what the same config trains on (cached models go stale)
DATA_REVISION = 2  # 2: character-balanced validation split


def demo_run_dir(job: TrainJob) -> Path:
    keyed = {**job.to_dict(), "data_revision": DATA_REVISION}
    key = hashlib.sha256(json.dumps(keyed, sort_keys=True).encode()).hexdigest()[:12]
    return cache_root() / "demo" / key


def ensure_demo_model(
    steps: int | None = None,
    out: Path | None = None,
    on_start: Callable[[int, int], None] | None = None,
    on_step: Callable[[int], None] | None = None,
) -> tuple[RunDir, bool]:
    """Train the default model, or reuse it.  Returns (run, reused)."""
    job = demo_job(steps)
    path = Path(out) if out is not None else demo_run_dir(job)
    run = RunDir(path)
    if run.weights_path.is_file() and run.config_path.is_file():
        return run, True
    resume = run.config_path.is_file()  # a previous demo was interrupted: continue it
    return run_training(path, job, resume=resume, on_start=on_start, on_step=on_step), False
