"""Quickstart: train a tiny hooked model on the copy task, then look inside it.

    python examples/quickstart.py            # ~20 s on 2 CPU cores

Shows the library path behind `interp train`: configs -> run directory -> model -> cache.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch

import interp
from interp.config import DataConfig, ModelConfig, OptimConfig, TrainConfig
from interp.report import build_report
from interp.train.job import TrainJob, run_training


def main() -> None:
    out = Path(tempfile.mkdtemp()) / "copy-run"
    job = TrainJob(
        model=ModelConfig(n_layers=2, d_model=64, n_heads=4, d_mlp=128, positional="rope"),
        train=TrainConfig(steps=300, batch_size=32, eval_every=50, optim=OptimConfig(lr=3e-3)),
        data=DataConfig(source="task", task="copy", task_options={"length": 8, "vocab": 16}),
    )
    run = run_training(out, job)
    last = [r for r in run.metrics() if r["split"] == "val"][-1]
    print(f"trained: validation loss {last['loss']:.4f}, accuracy {last['accuracy']:.3f}")

    model = interp.load_model(run.path)  # the same loader takes HF directories and hub names
    batch = model.task.sample(1, torch.Generator().manual_seed(0))
    _, cache = model.run_with_cache(batch.inputs)
    # an induction-style head attends from each copied token to the token after its first occurrence
    for layer in range(model.cfg.n_layers):
        pattern = cache[f"blocks.{layer}.attn.hook_pattern"][0]  # [head, query, key]
        offset = torch.stack([pattern[h].argmax(-1) for h in range(pattern.shape[0])])
        print(f"layer {layer}: argmax key per query, head 0: {offset[0].tolist()}")
    print(f"report: {build_report(run.path)}")


if __name__ == "__main__":
    main()
