"""Process-wide torch runtime state: the one seeding function, explicit generators, threads."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import numpy as np
import torch


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch global RNGs; return a fresh CPU generator seeded with ``seed``."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    return make_generator(seed)


def make_generator(seed: int) -> torch.Generator:
    g = torch.Generator()
    g.manual_seed(seed)
    return g


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run with ``n`` torch threads (restored after; ``None`` leaves them).

    Small models gain nothing from threads, and on a busy machine extra threads only spin
    (measured 10x slower with 2 threads than with 1 under load).
    """
    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# The widest model trained on one thread by :func:`small_model_threads`: interp's CPU defaults
# (d_model 64-128) train ~10x faster on 1 thread than on 2 shared cores (precache's default twins:
# 7.7 vs 0.6 steps/s); a GPT-2-sized model (768) has work enough for every core.
SMALL_D_MODEL = 256


def small_model_threads(d_model: int, environ: Mapping[str, str] | None = None) -> int | None:
    """The torch thread count to train a model of width ``d_model`` with: 1 for small models
    (``<= SMALL_D_MODEL``), ``None`` (torch's own count) for wider ones, and ``None`` whenever
    ``OMP_NUM_THREADS`` names a count: a count the user asked for is kept."""
    env = os.environ if environ is None else environ
    if env.get("OMP_NUM_THREADS", "").strip():
        return None
    return 1 if d_model <= SMALL_D_MODEL else None
