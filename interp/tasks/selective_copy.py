"""Selective copy (Gu & Dao 2023): copy the data tokens scattered among blanks, in order.

A sequence is a body of ``length`` slots holding ``n_copy`` data tokens at random slots (the
rest are blanks), then a separator, then the data tokens in order.  Only the copy is scored
(the separator and each copied token predict the next data token).

Splits: ``train`` / ``val`` as configured; ``ood_sparse`` the same ``n_copy`` tokens in a body
``ood_factor`` times longer (more blanks, longer); ``ood_long`` ``ood_factor`` times as many
tokens in a body ``ood_factor`` times longer (same density, longer copy).

Tokens: data ``0 .. vocab-1``, blank ``vocab``, separator ``vocab + 1``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from interp.errors import ConfigError
from interp.tasks.base import Batch, Task, register_task


@dataclass(frozen=True)
class SelectiveCopyOptions:
    n_copy: int = 8  # data tokens per sequence
    length: int = 32  # body slots (data + blanks)
    vocab: int = 8  # distinct data tokens
    ood_factor: int = 2  # how much longer the out-of-distribution sets are

    def __post_init__(self) -> None:
        if self.n_copy < 1:
            raise ValueError(f"n_copy must be >= 1, got {self.n_copy}")
        if self.length < self.n_copy:
            raise ValueError(f"length ({self.length}) must be >= n_copy ({self.n_copy})")
        if self.vocab < 2:
            raise ValueError(f"vocab must be >= 2, got {self.vocab}")
        if self.ood_factor < 1:
            raise ValueError(f"ood_factor must be >= 1, got {self.ood_factor}")


@register_task
class SelectiveCopyTask(Task):
    name = "selective-copy"
    Options = SelectiveCopyOptions
    description = "copy the non-blank tokens of a sparse sequence after a separator"
    eval_splits: ClassVar[tuple[str, ...]] = ("val", "ood_sparse", "ood_long")

    @property
    def blank(self) -> int:
        return self.options.vocab

    @property
    def sep(self) -> int:
        return self.options.vocab + 1

    def shape_for(self, split: str) -> tuple[int, int]:
        """(n_copy, length) of a split."""
        o = self.options
        table = {
            "train": (o.n_copy, o.length),
            "val": (o.n_copy, o.length),
            "ood_sparse": (o.n_copy, o.length * o.ood_factor),
            "ood_long": (o.n_copy * o.ood_factor, o.length * o.ood_factor),
        }
        if split not in table:
            raise ConfigError(
                f"selective-copy has no split {split!r}; choose from {', '.join(sorted(table))}"
            )
        return table[split]

    def model_overrides(self) -> dict[str, Any]:
        longest = max(n + length + 1 for n, length in map(self.shape_for, self.eval_splits))
        return {"d_vocab": self.options.vocab + 2, "n_ctx": longest, "input_kind": "tokens"}

    def sample(self, batch_size: int, generator: torch.Generator, split: str = "train") -> Batch:
        n, length = self.shape_for(split)
        data = torch.randint(0, self.options.vocab, (batch_size, n), generator=generator)
        # n distinct slots per row, kept in increasing order
        slots = torch.rand(batch_size, length, generator=generator).argsort(dim=1)[:, :n]
        slots = slots.sort(dim=1).values
        body = torch.full((batch_size, length), self.blank)
        body.scatter_(1, slots, data)
        sep = torch.full((batch_size, 1), self.sep)
        tokens = torch.cat([body, sep, data], dim=1)
        targets = torch.roll(tokens, -1, dims=1)
        mask = torch.zeros_like(tokens, dtype=torch.bool)
        mask[:, length : length + n] = True  # sep .. second-to-last predict the copy
        return Batch(tokens, targets, mask, "ce")

    def token_names(self) -> list[str]:
        return [str(i) for i in range(self.options.vocab)] + ["_", "<sep>"]
