"""Data sources for the training loop: the batch at step s is a pure function of (seed, s).

That makes resume exact: the checkpoint only needs the step to restore the data position.
"""

from __future__ import annotations

from typing import Protocol

import torch
from torch import Tensor

from interp.tasks.base import Batch, Task, lm_batch


def _step_generator(seed: int, stream: int, index: int) -> torch.Generator:
    # distinct, reproducible streams without touching global RNG
    return torch.Generator().manual_seed((seed * 1_000_003 + stream * 7_919 + index) % (2**63 - 1))


class DataSource(Protocol):
    def train_batch(self, step: int) -> Batch: ...
    def val_batches(self) -> list[Batch]: ...


class CorpusSource:
    """Packed token blocks, shuffled per epoch with a seeded permutation."""

    def __init__(
        self, train: Tensor, val: Tensor, batch_size: int, seed: int, eval_batches: int
    ) -> None:
        self.train, self.val = train, val
        self.batch_size, self.seed, self.eval_batches = batch_size, seed, eval_batches
        self._perm_epoch, self._perm = -1, torch.empty(0, dtype=torch.long)

    def _permutation(self, epoch: int) -> Tensor:
        if epoch != self._perm_epoch:
            g = _step_generator(self.seed, 1, epoch)
            self._perm, self._perm_epoch = torch.randperm(len(self.train), generator=g), epoch
        return self._perm

    def train_batch(self, step: int) -> Batch:
        n = len(self.train)
        start = step * self.batch_size
        idx = []
        for i in range(start, start + self.batch_size):
            idx.append(int(self._permutation(i // n)[i % n]))
        return lm_batch(self.train[idx])

    def val_batches(self) -> list[Batch]:
        n = min(len(self.val), self.eval_batches * self.batch_size)
        return [lm_batch(self.val[i : i + self.batch_size]) for i in range(0, n, self.batch_size)]


class TaskSource:
    """Fresh task samples every step; a fixed validation set."""

    def __init__(self, task: Task, batch_size: int, seed: int, eval_batches: int) -> None:
        self.task, self.batch_size, self.seed, self.eval_batches = (
            task,
            batch_size,
            seed,
            eval_batches,
        )
        self._val: list[Batch] | None = None

    def train_batch(self, step: int) -> Batch:
        return self.task.sample(self.batch_size, _step_generator(self.seed, 2, step), "train")

    def val_batches(self) -> list[Batch]:
        if self._val is None:
            g = _step_generator(self.seed, 3, 0)
            self._val = [
                self.task.sample(self.batch_size, g, "val") for _ in range(self.eval_batches)
            ]
        return self._val
