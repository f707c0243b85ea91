"""Counting with variables (the CoPE paper's task, after facebookresearch/RAM ``count_data_gen.py``).

A program of ``steps`` statements over ``n_vars`` variables, then ``print x``; the answer is the
value of ``x``.  Each statement draws SET ``x = 0 ;`` (weight 1), DUMMY ``pass;`` (weight 50) or
INCREMENT ``x ++;`` (weight 7).  An INCREMENT needs an existing variable whose value stays
``<= max_value``; a statement that cannot be generated is redrawn (up to 100 times), and a
program that prints before any SET is redrawn whole, as in the public generator.  Tokens are
the public tokenizer's whitespace-separated words: ``x`` ``=`` ``0`` ``;`` | ``pass;`` |
``x`` ``++;`` | ``print`` ``x``.  Only the answer is scored (at the ``x`` after ``print``).

Splits: ``train`` / ``val`` with ``min_steps .. max_steps`` statements (uniform); ``ood_long``
with ``max_steps + 1 .. ood_factor * max_steps``.  Rows are right-padded with ``<pad>``: a
training batch to its longest row, an evaluation split to the split's fixed width.
Programs longer than ``ceil(1.5 * steps) + 6`` tokens are redrawn (about 1.2 tokens per
statement on average, so this practically never happens); it bounds ``n_ctx``.

Tokens: ``<pad>`` 0, ``=`` 1, ``;`` 2, ``pass;`` 3, ``++;`` 4, ``print`` 5, values ``0 ..
max_value``, then the variable names ``a``, ``b``, ...
"""

from __future__ import annotations

import math
import random
import string
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from interp.errors import ConfigError
from interp.tasks.base import Batch, Task, register_task

PAD, EQ, SEMI, PASS, INC, PRINT = range(6)
WORDS = ("<pad>", "=", ";", "pass;", "++;", "print")
OP_WEIGHTS = {"set": 1, "dummy": 50, "increment": 7}


class GenerationFail(Exception):
    pass


@dataclass(frozen=True)
class CountVarsOptions:
    n_vars: int = 3
    min_steps: int = 3
    max_steps: int = 512
    max_value: int = 10
    ood_factor: int = 2

    def __post_init__(self) -> None:
        if not 1 <= self.n_vars <= 26:
            raise ValueError(f"n_vars must be in 1..26, got {self.n_vars}")
        if not 1 <= self.min_steps <= self.max_steps:
            raise ValueError(
                f"need 1 <= min_steps <= max_steps, got {self.min_steps}, {self.max_steps}"
            )
        if self.max_value < 1:
            raise ValueError(f"max_value must be >= 1, got {self.max_value}")
        if self.ood_factor < 2:
            raise ValueError(f"ood_factor must be >= 2, got {self.ood_factor}")


def token_budget(steps: int) -> int:
    """Most tokens a program of ``steps`` statements may have (before ``print x answer``)."""
    return math.ceil(1.5 * steps) + 6


@register_task
class CountVarsTask(Task):
    name = "count-vars"
    Options = CountVarsOptions
    description = "counting with variables: the value of x after SET / pass / INCREMENT steps"
    eval_splits: ClassVar[tuple[str, ...]] = ("val", "ood_long")

    def value_token(self, value: int) -> int:
        return len(WORDS) + value

    def var_token(self, index: int) -> int:
        return len(WORDS) + self.options.max_value + 1 + index

    def steps_for(self, split: str) -> tuple[int, int]:
        o = self.options
        table = {
            "train": (o.min_steps, o.max_steps),
            "val": (o.min_steps, o.max_steps),
            "ood_long": (o.max_steps + 1, o.ood_factor * o.max_steps),
        }
        if split not in table:
            raise ConfigError(
                f"count-vars has no split {split!r}; choose from {', '.join(sorted(table))}"
            )
        return table[split]

    def model_overrides(self) -> dict[str, Any]:
        longest = max(token_budget(self.steps_for(s)[1]) + 3 for s in self.eval_splits)
        d_vocab = len(WORDS) + self.options.max_value + 1 + self.options.n_vars
        return {"d_vocab": d_vocab, "n_ctx": longest, "input_kind": "tokens"}

    # ------------------------------------------------------------------ generation
    def _statement(self, rng: random.Random, values: dict[int, int]) -> list[int]:
        ops, weights = list(OP_WEIGHTS), list(OP_WEIGHTS.values())
        for _ in range(100):
            op = rng.choices(ops, weights, k=1)[0]
            if op == "set":
                var = rng.randrange(self.options.n_vars)
                values[var] = 0
                return [self.var_token(var), EQ, self.value_token(0), SEMI]
            if op == "dummy":
                return [PASS]
            if values:
                var = rng.choice(list(values))
                if values[var] + 1 <= self.options.max_value:
                    values[var] += 1
                    return [self.var_token(var), INC]
        raise GenerationFail

    def program(self, rng: random.Random, lo: int, hi: int) -> tuple[list[int], int]:
        """One program ending in ``print x`` and its answer (the value of ``x``)."""
        for _ in range(1000):
            steps = rng.randint(lo, hi)
            values: dict[int, int] = {}
            tokens: list[int] = []
            try:
                for _ in range(steps):
                    tokens += self._statement(rng, values)
            except GenerationFail:
                continue
            if not values or len(tokens) > token_budget(steps):
                continue
            var = rng.choice(list(values))
            return tokens + [PRINT, self.var_token(var)], values[var]
        raise RuntimeError("count-vars: failed to generate a program 1000 times")

    def sample(self, batch_size: int, generator: torch.Generator, split: str = "train") -> Batch:
        lo, hi = self.steps_for(split)
        seed = int(torch.randint(0, 2**62, (1,), generator=generator))
        rng = random.Random(seed)
        rows = []
        for _ in range(batch_size):
            program, answer = self.program(rng, lo, hi)
            rows.append(program + [self.value_token(answer)])
        # training batches are as wide as their longest row; evaluation splits always have the
        # split's full width, so their batches stack (the training loop sums loss by position)
        width = max(len(r) for r in rows) if split == "train" else token_budget(hi) + 3
        tokens = torch.full((batch_size, width), PAD)
        mask = torch.zeros((batch_size, width), dtype=torch.bool)
        for b, row in enumerate(rows):
            tokens[b, : len(row)] = torch.tensor(row)
            mask[b, len(row) - 2] = True  # the x after print predicts the answer
        targets = torch.roll(tokens, -1, dims=1)
        return Batch(tokens, targets, mask, "ce")

    def token_names(self) -> list[str]:
        values = [str(v) for v in range(self.options.max_value + 1)]
        return [*WORDS, *values, *string.ascii_lowercase[: self.options.n_vars]]
