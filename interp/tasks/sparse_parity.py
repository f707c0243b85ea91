"""Sparse parity: ``n`` random bits, the label is the parity of the first ``k`` (PAIR 2023).

A fixed training set of ``n_train`` sequences (drawn once from ``split_seed``) and a fixed test
set of ``n_test`` fresh sequences.  Inputs are real vectors in {-1, +1} (``input_kind="vector"``,
one position); the target is the parity class 0 or 1.

Recipe that groks on a CPU (``interp grok --task sparse-parity`` defaults, measured on one core
of a shared VM, 30 bits, k = 3, 1,200 training sequences): the 1-hidden-layer ReLU MLP of width
256, full-batch AdamW lr 1e-2 (betas 0.9 / 0.98), weight decay 0.3, cross-entropy, {-1, +1}
inputs.  Train accuracy hits 1.0 by step ~75-300; test accuracy stays near 0.5 and then climbs to
1.0 around step 1,500-3,200 depending on the seed (seed 0: memorised at 75, >= 0.95 at 3,162);
4,000 steps take ~20-40 s per run.  With weight decay 0 the same run memorises and stays at
chance.  Also seen: width 128 / wd 0.3 and width 512 / wd 0.1-0.3 (lr 1e-2) grok, more slowly
or less reliably for width 128; wd 1 at lr 1e-2 stays near chance (lr x wd too strong) and the
previous lr 1e-3 / width 128 never left chance within 8,000 steps (Barak et al. 2022 and Merrill
et al. 2023 likewise use lr >= 1e-2 for sparse parity).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from interp.tasks.base import Batch, Task, register_task


@dataclass(frozen=True)
class SparseParityOptions:
    n_bits: int = 30
    k: int = 3  # parity of the first k bits
    n_train: int = 1200
    n_test: int = 2000
    split_seed: int = 0

    def __post_init__(self) -> None:
        for name in ("n_bits", "k", "n_train", "n_test"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.k > self.n_bits:
            raise ValueError(f"k ({self.k}) must be <= n_bits ({self.n_bits})")


def parity_data(n: int, n_bits: int, k: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """``n`` sequences: bits [n n_bits] in {-1, +1} (float) and labels [n] (parity of first k)."""
    bits = torch.randint(0, 2, (n, n_bits), generator=generator)
    labels = bits[:, :k].sum(1) % 2
    return bits.float() * 2 - 1, labels


@register_task
class SparseParityTask(Task):
    name = "sparse-parity"
    Options = SparseParityOptions
    description = "parity of the first k of n random bits, from a fixed training set"

    def dataset(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """(x_train [n_train n_bits], y_train [n_train], x_test, y_test), fixed by split_seed."""
        o = self.options
        g = torch.Generator().manual_seed(o.split_seed)
        x_train, y_train = parity_data(o.n_train, o.n_bits, o.k, g)
        # the test set does not depend on n_train (a smaller training set is a prefix of a larger)
        g_test = torch.Generator().manual_seed(o.split_seed + 1_000_003)
        x_test, y_test = parity_data(o.n_test, o.n_bits, o.k, g_test)
        return x_train, y_train, x_test, y_test

    def model_overrides(self) -> dict[str, Any]:
        return {"d_vocab": 2, "n_ctx": 1, "input_kind": "vector", "d_input": self.options.n_bits}

    def dataset_bytes(self) -> int:
        """The training and test bits: drawn as int64, turned into float32 {-1, +1}, and
        concatenated once more by the grokking loop (~24 bytes a bit)."""
        o = self.options
        return 24 * (o.n_train + o.n_test) * o.n_bits

    def sample(self, batch_size: int, generator: torch.Generator, split: str = "train") -> Batch:
        x_train, y_train, x_test, y_test = self.dataset()
        x, y = (x_train, y_train) if split == "train" else (x_test, y_test)
        pick = torch.randint(0, len(x), (batch_size,), generator=generator)
        mask = torch.ones(batch_size, 1, dtype=torch.bool)
        return Batch(x[pick].unsqueeze(1), y[pick].unsqueeze(1), mask, "ce")
