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


def tiny_tour():
    """Every part of the tour at a size that runs in seconds (numbers are not the point)."""
    from interp.analysis.collapse import CollapseConfig
    from interp.analysis.counting import ConstructConfig
    from interp.analysis.myopia import MyopiaConfig
    from interp.analysis.pe_bench import PEBenchConfig
    from interp.analysis.sensitivity import SquashConfig
    from interp.config import DataConfig, ModelConfig, OptimConfig, TrainConfig
    from interp.experiments import demo as tour
    from interp.experiments.precache import PrecacheConfig
    from interp.grok.config import GrokConfig
    from probes.run import ProbeConfig

    tiny = ModelConfig(n_layers=1, d_model=16, n_heads=2, d_mlp=32)
    train = TrainConfig(steps=2, batch_size=8, eval_every=2, eval_batches=1, checkpoint_every=2,
                        optim=OptimConfig(lr=3e-3, warmup_steps=1, weight_decay=0.0))  # fmt: skip
    return tour.DemoConfig(
        probe=ProbeConfig(horizon=3, tokens=1500, n_boot=20, test_positions=256, batch_size=8),
        collapse=CollapseConfig(
            prompt="", formats=("float32", "bfloat16", "float8_e4m3fn"), every=3, max_length=30
        ),
        squash=SquashConfig(length=6, prompts=("copy-first",)),
        precache=PrecacheConfig(
            model=tiny,
            train=train,
            data=DataConfig(
                source="task", task="precache", task_options={"length": 8, "window": 3}
            ),
            myopia=MyopiaConfig(seeds=(0,), probe_layer=1, probe_sequences=32),
        ),  # fmt: skip
        counting=ConstructConfig(d_values=(4,), m_values=(2, 8), samples=20),
        cope=PEBenchConfig(
            task="count-vars",
            task_options={"n_vars": 1, "max_steps": 4},
            encodings=("absolute", "cope"),
            seeds=(0,),
            steps=2,
            batch_size=8,
            n_layers=1,
            d_model=16,
            n_heads=2,
            d_mlp=32,
            eval_sequences=8,
            n_maps=1,
        ),  # fmt: skip
        grok=GrokConfig(p=11, steps=30, log_every=10),
    )
