"""The training loop: AdamW, warmup + cosine, clipping, periodic evaluation.

No file I/O here: metrics and checkpoints leave through callbacks, so the loop can be driven
by the CLI, by tests and by sweeps alike.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from interp.config import OptimConfig, TrainConfig
from interp.errors import NumericalError
from interp.train.grad_modes import grad_mode
from interp.train.losses import accuracy_counts, masked_mean, per_position_sums, per_token_loss
from interp.train.schedule import lr_at
from interp.train.sources import DataSource

MetricsCallback = Callable[[dict[str, Any]], None]
CheckpointCallback = Callable[[int, nn.Module, torch.optim.Optimizer], None]


def make_optimizer(model: nn.Module, cfg: OptimConfig) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices only.

    Not decayed: biases, norm gains, and every parameter of a positional encoding (the learned
    absolute table ``pos_embed.*`` and per-layer parts ``blocks.{l}.attn.position.*``, e.g. CoPE's
    position embeddings), so position tables are not shrunk towards zero.
    """
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        positional = name.startswith("pos_embed.") or ".position." in name
        (decay if p.ndim >= 2 and not positional else no_decay).append(p)
    groups = [
        {"params": decay, "weight_decay": cfg.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), eps=1e-8)


@torch.no_grad()
def evaluate(model: nn.Module, batches: list, device: str = "cpu") -> dict[str, Any]:
    """Mean loss, per-position loss and accuracy over fixed batches."""
    was_training = model.training
    model.eval()
    total, count, correct, scored = 0.0, 0.0, 0, 0
    pos_sum = pos_count = None
    for batch in batches:
        batch = batch.to(device)
        out = model(batch.inputs)
        loss = per_token_loss(out, batch)
        total += float(loss.sum())
        count += float(batch.mask.sum())
        s, c = per_position_sums(loss, batch.mask)
        pos_sum = s if pos_sum is None else pos_sum + s
        pos_count = c if pos_count is None else pos_count + c
        a, n = accuracy_counts(out, batch)
        correct, scored = correct + a, scored + n
    model.train(was_training)
    row: dict[str, Any] = {"loss": total / max(count, 1.0)}
    if pos_sum is not None:
        by_pos = (pos_sum / pos_count.clamp(min=1)).tolist()
        row["loss_by_pos"] = [
            v if c > 0 else None for v, c in zip(by_pos, pos_count.tolist(), strict=True)
        ]
    if scored:
        row["accuracy"] = correct / scored
    return row


def train(
    model: nn.Module,
    source: DataSource,
    cfg: TrainConfig,
    optimizer: torch.optim.Optimizer | None = None,
    start_step: int = 0,
    on_metrics: MetricsCallback | None = None,
    on_checkpoint: CheckpointCallback | None = None,
    on_step: Callable[[int], None] | None = None,
) -> torch.optim.Optimizer:
    """Train ``model`` from ``start_step`` to ``cfg.steps``.  Returns the optimizer.

    ``cfg.grad_mode`` (vanilla | myopic) holds for the loop only; the model leaves in the mode
    it came in.
    """
    with grad_mode(model, cfg.grad_mode):
        return _train(model, source, cfg, optimizer, start_step, on_metrics, on_checkpoint, on_step)


def _train(
    model: nn.Module,
    source: DataSource,
    cfg: TrainConfig,
    optimizer: torch.optim.Optimizer | None,
    start_step: int,
    on_metrics: MetricsCallback | None,
    on_checkpoint: CheckpointCallback | None,
    on_step: Callable[[int], None] | None,
) -> torch.optim.Optimizer:
    device = cfg.device
    model.to(device).train()
    optimizer = optimizer or make_optimizer(model, cfg.optim)
    emit = on_metrics or (lambda row: None)
    val = source.val_batches()
    t0 = time.perf_counter()
    tokens_per_step = None
    for step in range(start_step, cfg.steps):
        lr = lr_at(step, cfg.steps, cfg.optim)
        for group in optimizer.param_groups:
            group["lr"] = lr
        batch = source.train_batch(step).to(device)
        tokens_per_step = tokens_per_step or int(batch.inputs.shape[0] * batch.inputs.shape[1])
        loss = masked_mean(per_token_loss(model(batch.inputs), batch), batch.mask)
        if not math.isfinite(loss_value := float(loss.detach())):
            raise NumericalError(
                f"loss is {loss_value} at step {step}; stopping (last checkpoint kept)"
            )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        params = [p for p in model.parameters() if p.grad is not None]
        if cfg.optim.grad_clip > 0:
            grad_norm = float(torch.nn.utils.clip_grad_norm_(params, cfg.optim.grad_clip))
        else:
            grad_norm = float(
                torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in params]))
            )
        if not math.isfinite(grad_norm):
            raise NumericalError(
                f"gradient norm is {grad_norm} at step {step}; stopping (last checkpoint kept)"
            )
        optimizer.step()
        done = step + 1
        if done % cfg.log_every == 0 or done == cfg.steps:
            emit(
                {
                    "step": done,
                    "split": "train",
                    "loss": loss_value,
                    "lr": lr,
                    "grad_norm": grad_norm,
                    "tokens": done * tokens_per_step,
                    "elapsed": time.perf_counter() - t0,
                }
            )
        if done % cfg.eval_every == 0 or done == cfg.steps:
            emit({"step": done, "split": "val", **evaluate(model, val, device)})
        if on_checkpoint and (done % cfg.checkpoint_every == 0 or done == cfg.steps):
            if not all(bool(torch.isfinite(p).all()) for p in model.parameters()):
                raise NumericalError(
                    f"weights are not finite after step {step}; stopping (last checkpoint kept)"
                )
            on_checkpoint(done, model, optimizer)
        if on_step:
            on_step(done)
    return optimizer
