"""Flip-Flop language (Liu et al. 2023): remember the last written bit through distractors.

A sequence is ``length`` instructions, each followed by a bit: ``w b`` writes ``b``, ``r b``
reads (``b`` is the last written bit), ``i b`` is ignored (``b`` random).  FFL(p) draws ``i``
with probability ``p`` and ``w`` / ``r`` with ``(1 - p) / 2`` each; the first instruction is
always ``w`` and the last always ``r``.  Only the bits after ``r`` are scored (the model sees
``r`` and must predict the bit).

Splits: ``train`` / ``val`` FFL(``p_ignore``, default 0.8); ``ood_dense`` FFL(0.1), many
writes and reads; ``ood_sparse`` FFL(0.98), long stretches of ignores.

Tokens: ``w`` 0, ``r`` 1, ``i`` 2, bit ``0`` 3, bit ``1`` 4.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from interp.errors import ConfigError
from interp.tasks.base import Batch, Task, register_task

W, R, IGNORE, BIT0, BIT1 = 0, 1, 2, 3, 4


@dataclass(frozen=True)
class FlipFlopOptions:
    length: int = 256  # instructions per sequence (tokens = 2 * length)
    p_ignore: float = 0.8  # training / validation FFL(p)
    p_dense: float = 0.1  # ood_dense FFL(p)
    p_sparse: float = 0.98  # ood_sparse FFL(p)

    def __post_init__(self) -> None:
        if self.length < 2:
            raise ValueError(f"length must be >= 2 (first w, last r), got {self.length}")
        for name in ("p_ignore", "p_dense", "p_sparse"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)}")


@register_task
class FlipFlopTask(Task):
    name = "flipflop"
    Options = FlipFlopOptions
    description = "Flip-Flop language: predict the bit after each read (last written bit)"
    eval_splits: ClassVar[tuple[str, ...]] = ("val", "ood_dense", "ood_sparse")

    def model_overrides(self) -> dict[str, Any]:
        return {"d_vocab": 5, "n_ctx": 2 * self.options.length, "input_kind": "tokens"}

    def p_for(self, split: str) -> float:
        o = self.options
        table = {"train": o.p_ignore, "val": o.p_ignore, "ood_dense": o.p_dense}
        table["ood_sparse"] = o.p_sparse
        if split not in table:
            raise ConfigError(
                f"flipflop has no split {split!r}; choose from {', '.join(sorted(table))}"
            )
        return table[split]

    def sample(self, batch_size: int, generator: torch.Generator, split: str = "train") -> Batch:
        p = self.p_for(split)
        n = self.options.length
        u = torch.rand(batch_size, n, generator=generator)
        instr = torch.where(u < p, IGNORE, torch.where(u < p + (1 - p) / 2, W, R))
        instr[:, 0], instr[:, -1] = W, R
        bits = torch.randint(0, 2, (batch_size, n), generator=generator)
        # the bit after a read is the bit of the latest write (instruction 0 is always a write)
        index = torch.arange(n).expand(batch_size, n)
        last_write = torch.where(instr == W, index, -1).cummax(dim=1).values
        bits = torch.where(instr == R, bits.gather(1, last_write), bits)
        tokens = torch.stack([instr, bits + BIT0], dim=2).reshape(batch_size, 2 * n)
        targets = torch.roll(tokens, -1, dims=1)
        mask = tokens == R  # at each read, predict the next token (the read bit)
        return Batch(tokens, targets, mask, "ce")

    def token_names(self) -> list[str]:
        return ["w", "r", "i", "0", "1"]
