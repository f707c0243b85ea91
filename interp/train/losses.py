"""Per-token losses for every batch kind, and masked reductions."""

from __future__ import annotations

import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor

from interp.tasks.base import Batch


def per_token_loss(outputs: Tensor, batch: Batch) -> Float[Tensor, "batch pos"]:
    """Loss at every position (zero where the mask is off)."""
    if batch.loss == "ce":
        loss = F.cross_entropy(
            outputs.flatten(0, 1).float(), batch.targets.flatten(), reduction="none"
        ).view(batch.targets.shape)
    elif batch.loss == "huber":
        loss = F.huber_loss(outputs.float(), batch.targets.float(), reduction="none").mean(-1)
    elif batch.loss == "mse":
        loss = F.mse_loss(outputs.float(), batch.targets.float(), reduction="none").mean(-1)
    else:  # pragma: no cover - Batch.loss is a Literal
        raise ValueError(f"unknown loss kind {batch.loss!r}")
    return loss * batch.mask


def masked_mean(loss: Float[Tensor, "batch pos"], mask: Tensor) -> Tensor:
    return loss.sum() / mask.sum().clamp(min=1)


def accuracy_counts(outputs: Tensor, batch: Batch) -> tuple[int, int]:
    """(correct, scored) for classification batches; (0, 0) for regression."""
    if batch.loss != "ce":
        return 0, 0
    correct = (outputs.argmax(-1) == batch.targets) & batch.mask
    return int(correct.sum()), int(batch.mask.sum())


def per_position_sums(loss: Float[Tensor, "batch pos"], mask: Tensor) -> tuple[Tensor, Tensor]:
    return loss.sum(0).double(), mask.sum(0).double()


__all__ = ["accuracy_counts", "masked_mean", "per_position_sums", "per_token_loss"]
