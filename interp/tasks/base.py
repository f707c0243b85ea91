"""Synthetic tasks: the interface, the batch they produce, and the registry.

A task samples batches from an explicit ``torch.Generator`` (never global RNG), says what model
shape it needs (``model_overrides``), and which loss scores it.  One file per task; each
registers itself with :func:`register_task`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor

from interp.config import parse_options
from interp.errors import ConfigError

LossKind = Literal["ce", "huber", "mse"]


@dataclass(frozen=True)
class Batch:
    """Inputs, targets and the mask of scored positions.

    inputs: [batch pos] token ids or [batch pos d_input] vectors
    targets: [batch pos] token ids (ce) or [batch pos d_vocab] reals (huber/mse)
    mask: [batch pos] bool, True where the position is scored
    """

    inputs: Tensor
    targets: Tensor
    mask: Tensor
    loss: LossKind = "ce"

    def to(self, device: str | torch.device) -> Batch:
        return dataclasses.replace(
            self,
            inputs=self.inputs.to(device),
            targets=self.targets.to(device),
            mask=self.mask.to(device),
        )


def lm_batch(tokens: Tensor) -> Batch:
    """Next-token prediction on packed token blocks: target at t is the token at t + 1."""
    targets = torch.roll(tokens, -1, dims=1)
    mask = torch.ones_like(tokens, dtype=torch.bool)
    mask[:, -1] = False
    return Batch(tokens, targets, mask, "ce")


class Task:
    """Base class of registered tasks.  Subclasses set ``name``, ``Options`` and ``sample``."""

    name: ClassVar[str]
    Options: ClassVar[type]
    description: ClassVar[str] = ""

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        self.options = parse_options(self.Options, options or {}, f"task {self.name!r}")

    def model_overrides(self) -> dict[str, Any]:
        """ModelConfig fields the task fixes (vocabulary, context, input kind...)."""
        raise NotImplementedError

    def sample(self, batch_size: int, generator: torch.Generator, split: str = "train") -> Batch:
        raise NotImplementedError

    def data_bytes(self, batch_size: int, batches: int = 1) -> int:
        """Memory the task's data takes while a model trains on it, a rough upper bound for
        :mod:`interp.resources` (checked before anything is allocated): ``batches`` sampled
        batches held at once (inputs, targets, mask, doubled for temporaries); a task that
        builds a fixed dataset to draw its batches from adds it (:meth:`dataset_bytes`)."""
        o = self.model_overrides()
        ctx, vector = int(o.get("n_ctx", 1)), o.get("input_kind") == "vector"
        inputs = 4 * int(o.get("d_input", 1)) if vector else 8
        targets = max(8, 4 * int(o.get("d_vocab", 1))) if vector else 8
        per_batch = 2 * batch_size * ctx * (inputs + targets + 1)
        return batches * per_batch + self.dataset_bytes()

    def dataset_bytes(self) -> int:
        """Bytes of the fixed dataset the task builds to sample from (0: drawn fresh)."""
        return 0

    def token_names(self) -> list[str] | None:
        """Human-readable names of token ids, when the task has a small vocabulary."""
        return None


_TASKS: dict[str, type[Task]] = {}


def register_task(cls: type[Task]) -> type[Task]:
    if cls.name in _TASKS:
        raise ValueError(f"task {cls.name!r} is registered twice")
    _TASKS[cls.name] = cls
    return cls


def task_names() -> tuple[str, ...]:
    return tuple(sorted(_TASKS))


def build_task(name: str, options: Mapping[str, Any] | None = None) -> Task:
    if name not in _TASKS:
        raise ConfigError(f"unknown task {name!r}; choose from {', '.join(task_names())}")
    return _TASKS[name](options)
