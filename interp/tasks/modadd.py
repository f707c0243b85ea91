"""Modular addition: ``a + b mod p`` over all pairs or the pairs ``a <= b``, with a fixed split.

Two views of the same data:

* the grokking view (:meth:`ModAddTask.dataset`): every pair once, ``a``, ``b``, the label, and
  a boolean train mask drawn once from ``split_seed`` (full-batch training, PAIR / Nanda);
* the task view (:meth:`ModAddTask.sample`): sequences ``a b =`` (``=`` is token ``p``) whose
  last position is scored against ``(a + b) mod p``, drawn from the train or test pairs, so the
  ordinary ``interp train --task modadd`` loop can use it too.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from interp.tasks.base import Batch, Task, register_task


@dataclass(frozen=True)
class ModAddOptions:
    p: int = 113  # the modulus
    pairs: Literal["all", "ordered"] = "all"  # all p*p pairs, or only a <= b (PAIR)
    train_fraction: float = 0.3
    split_seed: int = 0  # which pairs are training pairs
    split: str = "randperm"  # how they are drawn from the seed (SPLITS)

    def __post_init__(self) -> None:
        if isinstance(self.p, bool) or not isinstance(self.p, int) or self.p < 2:
            raise ValueError(f"p must be an integer >= 2, got {self.p!r}")
        if self.pairs not in ("all", "ordered"):
            raise ValueError(f"pairs must be 'all' or 'ordered', got {self.pairs!r}")
        if not 0 < self.train_fraction < 1:
            raise ValueError(f"train_fraction must be in (0, 1), got {self.train_fraction}")
        if self.split not in SPLITS:
            raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {self.split!r}")


@dataclass(frozen=True)
class PairData:
    """Every pair once.  a, b, label: [n_pairs] int64; train: [n_pairs] bool."""

    a: Tensor
    b: Tensor
    label: Tensor
    train: Tensor

    @property
    def n_train(self) -> int:
        return int(self.train.sum())


def all_pairs(p: int, ordered: bool) -> tuple[Tensor, Tensor]:
    """Every pair ``(a, b)`` once (row-major); with ``ordered`` only ``a <= b``."""
    a, b = torch.meshgrid(torch.arange(p), torch.arange(p), indexing="ij")
    a, b = a.flatten(), b.flatten()
    if ordered:
        keep = a <= b
        a, b = a[keep], b[keep]
    return a, b


def train_mask(n: int, fraction: float, seed: int) -> Tensor:
    """A fixed random subset of ``round(fraction * n)`` (at least 1, at most n - 1) of n items."""
    n_train = min(max(round(fraction * n), 1), n - 1)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    mask = torch.zeros(n, dtype=torch.bool)
    mask[perm[:n_train]] = True
    return mask


def _first(order: list[int] | Tensor, n: int, n_train: int) -> Tensor:
    mask = torch.zeros(n, dtype=torch.bool)
    mask[torch.as_tensor(order[:n_train], dtype=torch.long)] = True
    return mask


def pair_split(n: int, fraction: float, seed: int) -> Tensor:
    """PAIR's notebook: ``np.random.seed(seed); indices = np.random.permutation(n)``, the first
    ``int(fraction * n)`` train (numpy's legacy Mersenne Twister, the same draw)."""
    order = np.random.RandomState(seed).permutation(n).tolist()
    return _first(order, n, min(max(int(fraction * n), 1), n - 1))


def nanda_split(n: int, fraction: float, seed: int) -> Tensor:
    """Nanda et al.'s ``gen_train_test``: ``random.seed(seed); random.shuffle(pairs)``, the first
    ``int(fraction * n)`` train (a shuffle's swaps depend only on the length, so shuffling the
    indices moves the pairs the same way)."""
    order = list(range(n))
    random.Random(seed).shuffle(order)
    return _first(order, n, min(max(int(fraction * n), 1), n - 1))


# how a split is drawn from its seed: interp's (torch), PAIR's (numpy), Nanda's (random)
SPLITS: dict[str, Callable[[int, float, int], Tensor]] = {
    "randperm": train_mask,
    "pair": pair_split,
    "nanda": nanda_split,
}


@register_task
class ModAddTask(Task):
    name = "modadd"
    Options = ModAddOptions
    description = "a + b mod p as 'a b =' (grokking); fixed train/test split of the pairs"

    @property
    def p(self) -> int:
        return self.options.p

    @property
    def eq(self) -> int:
        return self.options.p

    def dataset(self) -> PairData:
        o = self.options
        a, b = all_pairs(o.p, o.pairs == "ordered")
        mask = SPLITS[o.split](len(a), o.train_fraction, o.split_seed)
        return PairData(a, b, (a + b) % o.p, mask)

    def sequences(self, data: PairData | None = None) -> Tensor:
        """``[n_pairs 3]`` token ids ``a b =``."""
        data = data or self.dataset()
        return torch.stack([data.a, data.b, torch.full_like(data.a, self.eq)], dim=1)

    def model_overrides(self) -> dict[str, Any]:
        return {"d_vocab": self.p + 1, "n_ctx": 3, "input_kind": "tokens"}

    def dataset_bytes(self) -> int:
        """Every pair at once: the p x p grids, a, b, label, mask, the ``a b =`` sequences and
        their temporaries, ~96 bytes a pair (int64)."""
        return 96 * self.p * self.p

    def sample(self, batch_size: int, generator: torch.Generator, split: str = "train") -> Batch:
        data = self.dataset()
        pool = torch.nonzero(data.train if split == "train" else ~data.train).flatten()
        pick = pool[torch.randint(0, len(pool), (batch_size,), generator=generator)]
        tokens = self.sequences(data)[pick]
        targets = torch.zeros_like(tokens)
        targets[:, -1] = data.label[pick]
        mask = torch.zeros_like(tokens, dtype=torch.bool)
        mask[:, -1] = True
        return Batch(tokens, targets, mask, "ce")

    def token_names(self) -> list[str]:
        return [str(i) for i in range(self.p)] + ["="]
