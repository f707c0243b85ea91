"""Copy: ``<bos> x1 .. xn <sep> x1 .. xn``; only the copied half is scored.

A minimal induction-style task that exercises the task path end to end.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from interp.tasks.base import Batch, Task, register_task


@dataclass(frozen=True)
class CopyOptions:
    length: int = 8  # tokens to copy
    vocab: int = 16  # distinct data tokens

    def __post_init__(self) -> None:
        if self.length < 1:
            raise ValueError(f"length must be >= 1, got {self.length}")
        if self.vocab < 2:
            raise ValueError(f"vocab must be >= 2, got {self.vocab}")


@register_task
class CopyTask(Task):
    name = "copy"
    Options = CopyOptions
    description = "copy a random sequence after a separator"

    @property
    def bos(self) -> int:
        return self.options.vocab

    @property
    def sep(self) -> int:
        return self.options.vocab + 1

    def model_overrides(self) -> dict[str, Any]:
        return {
            "d_vocab": self.options.vocab + 2,
            "n_ctx": 2 * self.options.length + 2,
            "input_kind": "tokens",
        }

    def sample(self, batch_size: int, generator: torch.Generator, split: str = "train") -> Batch:
        n = self.options.length
        data = torch.randint(0, self.options.vocab, (batch_size, n), generator=generator)
        bos = torch.full((batch_size, 1), self.bos)
        sep = torch.full((batch_size, 1), self.sep)
        tokens = torch.cat([bos, data, sep, data], dim=1)
        targets = torch.roll(tokens, -1, dims=1)
        mask = torch.zeros_like(tokens, dtype=torch.bool)
        mask[:, n + 1 : 2 * n + 1] = True  # positions sep .. second-to-last predict the copy
        return Batch(tokens, targets, mask, "ce")

    def token_names(self) -> list[str]:
        return [str(i) for i in range(self.options.vocab)] + ["<bos>", "<sep>"]
