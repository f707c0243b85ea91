"""Full-batch AdamW on a fixed training set (the grokking setting).  No file I/O inside.

Every step uses the whole training set; at each logged step the model is evaluated on every
example (train and test) and rows leave through ``on_metrics``:

    {"step", "split": "train", "loss", "accuracy", "weight_norm", "lr"}
    {"step", "split": "val",   "loss", "accuracy"}
    {"step", "split": "fourier", ...}            (from the ``analyse`` callback, when given)
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from interp.errors import NumericalError
from interp.grok.models import weight_norm
from interp.seed import torch_threads  # noqa: F401  (re-exported for grok modules)

MetricsCallback = Callable[[dict[str, Any]], None]
CheckpointCallback = Callable[[int, nn.Module, torch.optim.Optimizer], None]


@dataclass(frozen=True)
class FullBatchData:
    """Every example once.  x: [example ...] inputs; y: [example] classes; train: [example] bool."""

    x: Tensor
    y: Tensor
    train: Tensor

    def to(self, device: str) -> FullBatchData:
        return FullBatchData(self.x.to(device), self.y.to(device), self.train.to(device))


@dataclass(frozen=True)
class Optim:
    """The papers' AdamW: constant lr 1e-3, betas (0.9, 0.98), decoupled weight decay on all."""

    lr: float = 1e-3
    weight_decay: float = 1.0
    beta1: float = 0.9
    beta2: float = 0.98

    def build(self, params: Iterable[nn.Parameter]) -> torch.optim.AdamW:
        return torch.optim.AdamW(
            params, lr=self.lr, betas=(self.beta1, self.beta2), weight_decay=self.weight_decay
        )


def log_steps(total: int, every: int, per_decade: int = 16) -> list[int]:
    """Steps to log: 0, every multiple of ``every``, and a log-spaced grid (dense early on)."""
    steps = {0, total, *range(every, total + 1, every)}
    i = 0
    while (s := round(10 ** (i / per_decade))) <= total:
        steps.add(s)
        i += 1
    return sorted(steps)


@torch.no_grad()
def split_metrics(logits: Tensor, y: Tensor, train: Tensor) -> dict[str, dict[str, float]]:
    """Mean cross-entropy and accuracy on the train and test examples."""
    loss = F.cross_entropy(logits, y, reduction="none")
    correct = (logits.argmax(-1) == y).float()
    out = {}
    for name, mask in (("train", train), ("val", ~train)):
        if mask.any():
            out[name] = {"loss": float(loss[mask].mean()), "accuracy": float(correct[mask].mean())}
    return out


def train_full_batch(
    model: nn.Module,
    data: FullBatchData,
    steps: int,
    optim: Optim,
    log_every: int = 100,
    on_metrics: MetricsCallback | None = None,
    analyse: Callable[[nn.Module], dict[str, Any]] | None = None,
    on_checkpoint: CheckpointCallback | None = None,
    checkpoint_steps: Iterable[int] = (),
    on_step: Callable[[int], None] | None = None,
    device: str = "cpu",
    threads: int | None = 1,
    optimizer: torch.optim.Optimizer | None = None,
    start_step: int = 0,
) -> dict[str, Any]:
    """Train ``model`` from ``start_step`` to ``steps`` full-batch steps; returns timings.

    ``on_checkpoint(step, model, optimizer)`` runs at each of ``checkpoint_steps`` *before* that
    step is logged, so a run resumed from a checkpoint at step ``s`` (``start_step=s`` with the
    restored ``optimizer``) logs ``s`` and everything after it again, exactly as the
    uninterrupted run did.  Runs with ``threads`` torch threads (see :func:`torch_threads`;
    ``None`` leaves them)."""
    with torch_threads(threads):
        return _train_full_batch(
            model,
            data,
            steps,
            optim,
            log_every,
            on_metrics,
            analyse,
            on_checkpoint,
            checkpoint_steps,
            on_step,
            device,
            optimizer,
            start_step,
        )


def _train_full_batch(
    model: nn.Module,
    data: FullBatchData,
    steps: int,
    optim: Optim,
    log_every: int,
    on_metrics: MetricsCallback | None,
    analyse: Callable[[nn.Module], dict[str, Any]] | None,
    on_checkpoint: CheckpointCallback | None,
    checkpoint_steps: Iterable[int],
    on_step: Callable[[int], None] | None,
    device: str,
    optimizer: torch.optim.Optimizer | None,
    start_step: int,
) -> dict[str, Any]:
    emit = on_metrics or (lambda row: None)
    model.to(device).train()
    data = data.to(device)
    x_train, y_train = data.x[data.train], data.y[data.train]
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = optimizer if optimizer is not None else optim.build(params)
    logged, ckpts = set(log_steps(steps, log_every)), set(checkpoint_steps)
    t0, t_logging = time.perf_counter(), 0.0
    for step in range(start_step, steps + 1):
        if on_checkpoint is not None and step in ckpts and (step > start_step or step == 0):
            on_checkpoint(step, model, optimizer)
        if step in logged:
            t_log = time.perf_counter()
            model.eval()
            with torch.no_grad():
                metrics = split_metrics(model(data.x), data.y, data.train)
            model.train()
            train_row = {"step": step, "split": "train", **metrics["train"]}
            train_row |= {"weight_norm": weight_norm(model), "lr": optim.lr}
            emit(train_row)
            if "val" in metrics:
                emit({"step": step, "split": "val", **metrics["val"]})
            if analyse is not None:
                emit({"step": step, "split": "fourier", **analyse(model)})
            t_logging += time.perf_counter() - t_log
        if step == steps:
            break
        loss = F.cross_entropy(model(x_train), y_train)
        if not math.isfinite(value := float(loss.detach())):
            raise NumericalError(f"loss is {value} at step {step}; stopping")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if on_step is not None:
            on_step(step + 1)
    elapsed = time.perf_counter() - t0
    return {
        "steps_per_second": (steps - start_step) / max(elapsed - t_logging, 1e-9),
        "seconds": elapsed,
        "seconds_logging": t_logging,
    }
