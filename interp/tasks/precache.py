"""Pre-caching (Wu, Morris, Levine 2024; their ``synthetic.py``): a task only a planner solves.

Inputs ``x_n ~ N(0, 1)`` and ``z_n ~ Bernoulli(p)``, i.i.d.; the model reads ``(x_n, z_n)``
through a linear embedding (``d_input = 2``, as in the public code) and predicts one real:

    y_n = z_n * sum_{i=1..window} sin(frequency * x_{n-i}) + (1 - z_n) * x_n

(terms before the start of the sequence are 0).  ``sin(frequency * x_n)`` never helps ``y_n``
itself, only later targets, so a model has to compute it at position n *for the future*:
vanilla training learns to, myopic training (no gradient from later losses into position n)
cannot and stays near the trivial baseline.  Scored with the Huber loss at every position.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from interp.tasks.base import Batch, Task, register_task


@dataclass(frozen=True)
class PrecacheOptions:
    window: int = 10  # how many past inputs each target sums
    frequency: float = 10.0  # sin(frequency * x)
    length: int = 64  # sequence length
    p: float = 1.0  # P(z_n = 1): probability that a target is the sum of past sines

    def __post_init__(self) -> None:
        if isinstance(self.window, bool) or not isinstance(self.window, int) or self.window < 1:
            raise ValueError(f"window must be a positive integer, got {self.window!r}")
        if isinstance(self.length, bool) or not isinstance(self.length, int) or self.length < 2:
            raise ValueError(f"length must be an integer >= 2, got {self.length!r}")
        if not isinstance(self.frequency, int | float) or self.frequency <= 0:
            raise ValueError(f"frequency must be positive, got {self.frequency!r}")
        if not isinstance(self.p, int | float) or not 0 <= self.p <= 1:
            raise ValueError(f"p must be in [0, 1], got {self.p!r}")


def precache_targets(
    x: Tensor, z: Tensor, window: int, frequency: float
) -> Tensor:  # [batch pos] -> [batch pos]
    """``z * sum_{i=1..window} sin(f x_{n-i}) + (1 - z) * x`` with zeros before the start."""
    feature = torch.sin(frequency * x)
    csum = torch.nn.functional.pad(feature.cumsum(1), (1, 0))  # csum[:, n] = sum_{m<n} feature
    n = torch.arange(x.shape[1])
    past = csum[:, n] - csum[:, (n - window).clamp(min=0)]
    return z * past + (1 - z) * x


@register_task
class PrecacheTask(Task):
    name = "precache"
    Options = PrecacheOptions
    description = "regress the sum of sin(10 x) over the last 10 inputs (needs pre-caching)"

    def model_overrides(self) -> dict[str, Any]:
        return {"input_kind": "vector", "d_input": 2, "d_vocab": 1, "n_ctx": self.options.length}

    def sample_xz(
        self, batch_size: int, generator: torch.Generator
    ) -> tuple[Tensor, Tensor]:  # ([batch pos], [batch pos])
        shape = (batch_size, self.options.length)
        x = torch.randn(shape, generator=generator)
        z = (torch.rand(shape, generator=generator) < self.options.p).float()
        return x, z

    def sample(self, batch_size: int, generator: torch.Generator, split: str = "train") -> Batch:
        o = self.options
        x, z = self.sample_xz(batch_size, generator)
        y = precache_targets(x, z, o.window, float(o.frequency))
        inputs = torch.stack([x, z], dim=-1)  # batch pos 2
        mask = torch.ones_like(x, dtype=torch.bool)
        return Batch(inputs, y.unsqueeze(-1), mask, "huber")

    def future_feature(self, inputs: Tensor) -> Tensor:
        """The pre-cached feature ``sin(frequency * x_n)`` [batch pos] (the probe target)."""
        return torch.sin(float(self.options.frequency) * inputs[..., 0])
