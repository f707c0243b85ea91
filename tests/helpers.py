"""Tiny-default builders for tests (never downloaded)."""

from __future__ import annotations

from typing import Any

from interp.config import DataConfig, ModelConfig, OptimConfig, TrainConfig
from interp.models import HookedTransformer


def tiny_config(**overrides: Any) -> ModelConfig:
    base = dict(n_layers=2, d_model=16, n_heads=2, d_mlp=32, n_ctx=12, d_vocab=20)
    base.update(overrides)
    return ModelConfig(**base)


def tiny_model(seed: int = 0, **overrides: Any) -> HookedTransformer:
    return HookedTransformer(tiny_config(**overrides), seed=seed).eval()


def tiny_task_job(steps: int = 30, **train: Any):
    from interp.train.job import TrainJob

    tcfg = dict(
        steps=steps,
        batch_size=8,
        eval_every=10,
        eval_batches=2,
        checkpoint_every=10,
        log_every=5,
        seed=0,
        optim=OptimConfig(lr=3e-3, warmup_steps=5),
    )
    tcfg.update(train)
    return TrainJob(
        ModelConfig(n_layers=1, d_model=16, n_heads=2, d_mlp=32),
        TrainConfig(**tcfg),
        DataConfig(source="task", task="copy", task_options={"length": 4, "vocab": 6}),
    )
