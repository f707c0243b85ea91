"""Counting tasks of Yehudai et al. 2024 ("When can transformers count to n?"): QC and MFC.

Tokens: data tokens ``0 .. m-1``, then ``<bos> = m``.  The answer is a count, read as a
classification over the model's output classes ``0 .. n`` at the last position only:

* ``qc`` (query count):        ``<bos> x_1 .. x_n q``  ->  #{i : x_i = q}     (answer 0 .. n)
* ``mfc`` (most frequent count): ``<bos> x_1 .. x_n``  ->  max_t #{i : x_i = t} (answer 1 .. n)

Only the last position is scored (``mask`` is True there alone).  ``n`` defaults to ``10 m``
(the paper's choice).  The model's ``d_vocab`` (input and output size share one number in our
model family) is ``max(m + 1, n + 1)``: inputs use ``0 .. m``, outputs ``0 .. n``.

Sampling (option ``sampling``): ``uniform`` draws every x_i i.i.d. uniform over the m tokens;
``dirichlet`` first draws per-sequence token frequencies from a flat Dirichlet, then x_i from
them (more varied counts, a less peaked label distribution).  For ``qc`` the query is drawn
uniformly from the m tokens (``query="uniform"``, answer ~ Binomial(n, 1/m) under uniform
sampling) or from the tokens of the sequence itself (``query="present"``, answer >= 1).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from jaxtyping import Int
from torch import Tensor

from interp.tasks.base import Batch, Task, register_task

SAMPLINGS = ("uniform", "dirichlet")
QUERIES = ("uniform", "present")


def _check_int(name: str, value: Any, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")


@dataclass(frozen=True)
class CountOptions:
    m: int = 8  # data-token vocabulary
    n: int | None = None  # sequence length (data tokens); default 10 m
    sampling: str = "uniform"  # uniform | dirichlet

    def __post_init__(self) -> None:
        _check_int("m", self.m, 2)
        if self.n is not None:
            _check_int("n", self.n, 1)
        if self.sampling not in SAMPLINGS:
            raise ValueError(
                f"sampling must be one of {', '.join(SAMPLINGS)}, got {self.sampling!r}"
            )

    @property
    def length(self) -> int:
        return self.n if self.n is not None else 10 * self.m


@dataclass(frozen=True)
class QueryCountOptions(CountOptions):
    query: str = "uniform"  # uniform | present

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.query not in QUERIES:
            raise ValueError(f"query must be one of {', '.join(QUERIES)}, got {self.query!r}")


def histogram(x: Int[Tensor, "batch n"], m: int) -> Int[Tensor, "batch m"]:
    """Occurrences of every token 0 .. m-1 in each row."""
    counts = torch.zeros(x.shape[0], m, dtype=torch.long)
    return counts.scatter_add_(1, x, torch.ones_like(x))


class _CountTask(Task):
    Options: ClassVar[type] = CountOptions
    extra_tokens: ClassVar[int] = 0  # tokens after the n data tokens (the query for qc)

    @property
    def m(self) -> int:
        return self.options.m

    @property
    def n(self) -> int:
        return self.options.length

    @property
    def bos(self) -> int:
        return self.m

    @property
    def n_classes(self) -> int:
        """Output classes: the counts 0 .. n."""
        return self.n + 1

    @property
    def seq_len(self) -> int:
        return 1 + self.n + self.extra_tokens

    def model_overrides(self) -> dict[str, Any]:
        return {
            "d_vocab": max(self.m + 1, self.n_classes),
            "n_ctx": self.seq_len,
            "input_kind": "tokens",
        }

    def _data(self, batch_size: int, generator: torch.Generator) -> Tensor:
        if self.options.sampling == "uniform":
            return torch.randint(0, self.m, (batch_size, self.n), generator=generator)
        weights = -torch.rand(batch_size, self.m, generator=generator).clamp_min(1e-12).log()
        return torch.multinomial(weights, self.n, replacement=True, generator=generator)

    def labelled(self, batch_size: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """(tokens [batch seq_len], answers [batch])."""
        raise NotImplementedError

    def sample(self, batch_size: int, generator: torch.Generator, split: str = "train") -> Batch:
        tokens, answers = self.labelled(batch_size, generator)
        targets = torch.zeros_like(tokens)
        targets[:, -1] = answers
        mask = torch.zeros_like(tokens, dtype=torch.bool)
        mask[:, -1] = True
        return Batch(tokens, targets, mask, "ce")

    def token_names(self) -> list[str]:
        return [str(i) for i in range(self.m)] + ["<bos>"]


@register_task
class QueryCountTask(_CountTask):
    name = "qc"
    Options = QueryCountOptions
    description = "query count: <bos> x1..xn q -> occurrences of q (Yehudai et al. 2024)"
    extra_tokens = 1

    def labelled(self, batch_size: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        x = self._data(batch_size, generator)
        if self.options.query == "uniform":
            q = torch.randint(0, self.m, (batch_size,), generator=generator)
        else:
            pick = torch.randint(0, self.n, (batch_size,), generator=generator)
            q = x.gather(1, pick[:, None])[:, 0]
        answers = histogram(x, self.m).gather(1, q[:, None])[:, 0]
        bos = torch.full((batch_size, 1), self.bos)
        return torch.cat([bos, x, q[:, None]], dim=1), answers


@register_task
class MostFrequentCountTask(_CountTask):
    name = "mfc"
    Options = CountOptions
    description = "most frequent count: <bos> x1..xn -> count of the most frequent token"

    def labelled(self, batch_size: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        x = self._data(batch_size, generator)
        answers = histogram(x, self.m).max(dim=1).values
        bos = torch.full((batch_size, 1), self.bos)
        return torch.cat([bos, x], dim=1), answers


COUNT_TASKS = ("qc", "mfc")
