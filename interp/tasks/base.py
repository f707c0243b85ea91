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

from interp.errors import ConfigError
from interp.options import parse_options

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

    def tokenizer(self, d_vocab: int) -> TaskTokenizer | None:
        """Text for a model of this task: its token names, space-separated (None without names)."""
        names = self.token_names()
        return TaskTokenizer(names, d_vocab, self.name) if names else None


class TaskTokenizer:
    """Token names of a task as a tokenizer: ``"<bos> 3 1 <sep>"`` <-> ``[16, 3, 1, 17]``.

    ``encode`` splits on whitespace and looks each name up (an unknown name is one line naming
    it); ``decode`` joins names with single spaces.  Ids the task does not name (output classes
    past its input vocabulary) are ``<ID>``.  ``<bos>`` / ``<eos>``, when the task has them, are
    the special tokens.  Nothing is added on encode, like every interp tokenizer.
    """

    kind = "task"

    def __init__(self, names: list[str], d_vocab: int, task: str = "task") -> None:
        self.task = task
        self.names = [names[i] if i < len(names) else f"<{i}>" for i in range(d_vocab)]
        self.vocab_size = d_vocab
        self.ids: dict[str, int] = {}
        for i, name in enumerate(self.names):
            self.ids.setdefault(name, i)
        self.bos_token_id: int | None = self.ids.get("<bos>")
        self.eos_token_id: int | None = self.ids.get("<eos>")

    def encode(self, text: str) -> list[int]:
        out = []
        for name in text.split():
            if name not in self.ids:
                shown = ", ".join(self.names[:12]) + (" ..." if len(self.names) > 12 else "")
                raise ConfigError(
                    f"{name!r} is not a token of task {self.task!r} (tokens: {shown}); "
                    "write tokens separated by spaces"
                )
            out.append(self.ids[name])
        return out

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return [self.encode(t) for t in texts]

    def decode(self, ids: list[int]) -> str:
        return " ".join(self.token(int(i)) for i in ids)

    def token(self, i: int) -> str:
        if not 0 <= i < self.vocab_size:
            raise ConfigError(
                f"token id {i} is out of range for task {self.task!r} (0..{self.vocab_size - 1})"
            )
        return self.names[i]

    def __repr__(self) -> str:
        return f"TaskTokenizer({self.task!r}, vocab_size={self.vocab_size})"


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
