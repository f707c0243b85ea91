"""The training loop, :func:`fit`, and the minibatch recipe built on it, :func:`train`.

:func:`fit` serves every trainer: text and task minibatches (:func:`train`), full-batch training
(:mod:`interp.train.full_batch`, grokking) and many models trained at once
(:class:`interp.train.stacked.Stacked`: count sweeps, grok sweeps).  A step is: learning rate
from the schedule, the batch of that step, the loss (one number, or one per stacked model),
a NaN/inf check, backward, gradient norms (clipped), an AdamW step, then the hooks.

No file I/O here: metrics, checkpoints and progress leave through hooks and the
:class:`~interp.progress.Progress` protocol, so the CLI, tests and sweeps drive it alike.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from interp import distributed as dist
from interp.config import TrainConfig
from interp.errors import ConfigError, NumericalError
from interp.progress import SILENT, Eta, Progress
from interp.train.grad_modes import grad_mode
from interp.train.losses import accuracy_counts, masked_mean, per_position_sums, per_token_loss
from interp.train.optim import Schedule, build_optimizer, schedule
from interp.train.sources import DataSource
from interp.train.stacked import Stacked

MetricsCallback = Callable[[dict[str, Any]], None]
CheckpointCallback = Callable[[int, nn.Module, torch.optim.Optimizer], None]

__all__ = ["Step", "evaluate", "fit", "train"]


@dataclass(frozen=True)
class Step:
    """What a hook sees after each optimizer step: ``done`` steps are finished; the step's
    learning rate, its training loss(es) (one per model) and gradient norms (``None`` when the
    loop was not asked to compute them)."""

    done: int
    lr: float
    losses: list[float]
    grad_norms: list[float] | None


Hook = Callable[[Step], None]


def fit(
    model: nn.Module,
    loss_of: Callable[[Any], Tensor],
    batch_at: Callable[[int], Any],
    optimizer: torch.optim.Optimizer,
    lr: Schedule,
    steps: int,
    start: int = 0,
    clip: float | None = None,
    hooks: Sequence[Hook] = (),
    progress: Progress = SILENT,
) -> None:
    """Train ``model`` from step ``start`` to ``steps``.

    ``loss_of(batch_at(step))`` is a scalar loss, or a ``[model]`` tensor of per-model losses
    (their sum is backpropagated) for a :class:`Stacked` model.  ``clip``: ``None`` computes no
    gradient norm; otherwise each model's norm is computed and checked, and clipped to ``clip``
    when it is positive.  A non-finite loss or norm raises :class:`NumericalError` with the step
    and, for stacked models, the model's slot (before the optimizer step: weights stay finite).
    """
    progress.start(steps, start)
    eta = Eta(progress, steps, start, "training")
    for step in range(start, steps):
        rate = lr(step)
        for group in optimizer.param_groups:
            group["lr"] = rate
        loss = loss_of(batch_at(step))
        losses = _finite("loss", loss.detach(), step)
        optimizer.zero_grad(set_to_none=True)
        (loss if loss.ndim == 0 else loss.sum()).backward()
        norms = None if clip is None else _finite("gradient norm", grad_norms_(model, clip), step)
        optimizer.step()
        info = Step(step + 1, rate, losses, norms)
        for hook in hooks:
            hook(info)
        progress.advance(step + 1, loss=sum(losses) / len(losses))  # shown beside the bar
        eta.step(step + 1)


def _finite(quantity: str, values: Tensor, step: int) -> list[float]:
    """``values`` as floats; the first non-finite one raises (naming its model when stacked)."""
    out = values.reshape(-1).tolist()
    for i, v in enumerate(out):
        if not math.isfinite(v):
            raise NumericalError(quantity, v, step, model=i if values.ndim else None)
    return out


def grad_norms_(model: nn.Module, max_norm: float) -> Tensor:
    """Gradient norm over all parameters (``[model]`` for a :class:`Stacked` model, one norm per
    model), after clipping the gradients to ``max_norm`` when it is positive."""
    if isinstance(model, Stacked):
        return model.clip_grad_norms_(max_norm)
    params = [p for p in model.parameters() if p.grad is not None]
    if max_norm > 0:
        return torch.nn.utils.clip_grad_norm_(params, max_norm)
    return torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in params]))


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
    progress: Progress = SILENT,
) -> torch.optim.Optimizer:
    """Minibatch training of one model from ``start_step`` to ``cfg.steps``; returns the optimizer.

    Warmup + cosine, gradient clipping, train rows every ``log_every`` steps, validation rows
    every ``eval_every``, ``on_checkpoint(step, model, optimizer)`` every ``checkpoint_every``
    (and at the end).  ``cfg.grad_mode`` (vanilla | myopic) holds for the loop only; the model
    leaves in the mode it came in.
    """
    device = cfg.device
    model.to(device).train()
    optimizer = optimizer or build_optimizer(model, cfg.optim)
    shape: list[int] = []  # tokens per step, from the first batch
    world = dist.world_size()
    net = _data_parallel(model, cfg) if world > 1 else model

    def batch_at(step: int) -> Any:
        batch = source.train_batch(step)
        shape[:] = shape or [int(batch.inputs.shape[0] * batch.inputs.shape[1])]
        if world > 1:  # this rank's rows of the step's global batch
            rows = batch.inputs.shape[0] // world
            part = slice(dist.rank() * rows, (dist.rank() + 1) * rows)
            batch = dataclasses.replace(
                batch, inputs=batch.inputs[part], targets=batch.targets[part], mask=batch.mask[part]
            )
        return batch.to(device)

    def loss_of(batch: Any) -> Tensor:
        if world == 1:
            return masked_mean(per_token_loss(model(batch.inputs), batch), batch.mask)
        # the global batch's masked mean: its value on every rank, the gradient of this rank's
        # share (DDP averages the gradients over the ranks, hence the factor ``world``)
        total = per_token_loss(net(batch.inputs), batch).sum()
        sums = torch.stack([total.detach(), batch.mask.sum().to(total.dtype)])
        dist.all_reduce_sum([sums])
        scored = sums[1].clamp(min=1)
        local = total * world / scored
        return local - local.detach() + sums[0] / scored

    log = _minibatch_log(
        model, source, cfg, optimizer, shape, on_metrics, on_checkpoint, evaluate_=dist.is_main()
    )
    try:
        with grad_mode(model, cfg.grad_mode):
            lr = schedule(cfg.optim, cfg.steps)
            fit(
                model,
                loss_of,
                batch_at,
                optimizer,
                lr,
                cfg.steps,
                start_step,
                clip=cfg.optim.grad_clip,
                hooks=[log],
                progress=progress,
            )
    except NumericalError as e:
        if on_checkpoint is None or e.kept:
            raise
        raise e.replace(kept="last checkpoint kept") from e
    return optimizer


def _data_parallel(model: nn.Module, cfg: TrainConfig) -> nn.Module:
    """``model`` in DistributedDataParallel (its gradients averaged over the ranks in
    backward); the global batch must split evenly over the ranks."""
    from torch.nn.parallel import DistributedDataParallel

    world = dist.world_size()
    if cfg.batch_size % world:
        raise ConfigError(
            f"--batch-size {cfg.batch_size} does not split over {world} processes: "
            "give a multiple of the process count (the batch is the global one)"
        )
    device = torch.device(cfg.device)
    ids = [device.index or 0] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)


def _minibatch_log(
    model: nn.Module,
    source: DataSource,
    cfg: TrainConfig,
    optimizer: torch.optim.Optimizer,
    tokens_per_step: list[int],
    on_metrics: MetricsCallback | None,
    on_checkpoint: CheckpointCallback | None,
    evaluate_: bool = True,
) -> Hook:
    """The hook of :func:`train`: train and validation rows, checkpoints of finite weights
    (``evaluate_`` False: a data-parallel rank other than 0, whose rows nobody writes)."""
    emit = on_metrics or (lambda row: None)
    val = source.val_batches()
    t0 = time.perf_counter()

    def hook(s: Step) -> None:
        done, last = s.done, s.done == cfg.steps
        if done % cfg.log_every == 0 or last:
            emit({
                "step": done, "split": "train", "loss": s.losses[0], "lr": s.lr,
                "grad_norm": s.grad_norms[0] if s.grad_norms is not None else None,
                "tokens": done * tokens_per_step[0], "elapsed": time.perf_counter() - t0,
            })  # fmt: skip
        if evaluate_ and (done % cfg.eval_every == 0 or last):
            emit({"step": done, "split": "val", **evaluate(model, val, cfg.device)})
        if on_checkpoint and (done % cfg.checkpoint_every == 0 or last):
            if not all(bool(torch.isfinite(p).all()) for p in model.parameters()):
                raise NumericalError("weights", None, done - 1, kept="last checkpoint kept")
            on_checkpoint(done, model, optimizer)

    return hook
