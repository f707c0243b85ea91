"""Scales of a reproduction: ``cpu`` (the CPU-sized reproduction registered in
:mod:`interp.reproduce`) and ``paper`` (the paper's own configuration, as its public code has
it), registered by ``(reproduction, scale)``.

A paper preset is data: a frozen :class:`Preset` subclass per reproduction whose fields are the
paper's numbers (each module cites the file of the paper's code they come from).  It knows its
work (:meth:`Preset.work`: optimizer steps and floating-point operations), so its running time
on a device is estimated before anything runs (:func:`estimate_seconds`), and it runs through
the experiments layer (:meth:`Preset.run`), ``steps`` capped for a smoke test.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch

from interp.errors import ConfigError
from interp.reproduce import Claim, ProgressFn

SCALES = ("cpu", "paper")

# A step of a small model on a GPU is bound by kernel launches, not arithmetic: the time a
# full-batch step of the tiny grokking models takes whatever its FLOPs (assumed, seconds)
STEP_LATENCY = {"cpu": 2e-4, "cuda": 1.5e-3}
# Sustained float32 throughput assumed where it is not measured (FLOP/s): an H200 runs
# ~60 TFLOP/s in plain float32 matmuls (TF32 off; dense TF32 peak ~495); two shared CPU cores
# ~20 GFLOP/s
ASSUMED_FLOPS = {"cuda": 6.0e13, "cpu": 2.0e10}


@dataclass(frozen=True)
class Work:
    """What a preset trains: ``steps`` optimizer steps in all and ``flops`` floating-point
    operations (forward and backward, ~6 x parameters x tokens, plus attention)."""

    steps: int
    flops: float

    def __add__(self, other: Work) -> Work:
        return Work(self.steps + other.steps, self.flops + other.flops)


def train_flops(params: int, tokens: int, layers: int = 0, ctx: int = 0, d_model: int = 0) -> float:
    """One training step: 6 N T for the weights, 12 L T^2 d / T per token for attention."""
    return 6.0 * params * tokens + 12.0 * layers * ctx * d_model * tokens


@dataclass(frozen=True)
class Preset:
    """Base of a reproduction's paper preset: its fields are the paper's configuration."""

    reproduction: ClassVar[str]
    source: ClassVar[str]  # where the numbers come from (the paper's code, file)

    def work(self) -> Work:
        raise NotImplementedError

    def check(self) -> None:
        """Refuse in one line (``ConfigError``) what cannot run here, before anything is
        written (a dataset the preset downloads and this machine cannot reach); the default
        checks nothing."""

    def run(self, out: Path, progress: ProgressFn, device: str, steps: int | None) -> list[Claim]:
        """Train the paper's configuration into ``out`` on ``device``; ``steps`` caps every
        training at that many steps (a smoke test); the claims, the paper's numbers beside ours."""
        raise NotImplementedError

    def describe(self) -> str:
        return self.source


_PRESETS: dict[tuple[str, str], Preset] = {}


def register_preset(preset: Preset, scale: str = "paper") -> Preset:
    key = (preset.reproduction, scale)
    if key in _PRESETS:
        raise ValueError(f"preset {key} is registered twice")
    _PRESETS[key] = preset
    return preset


def get_preset(name: str, scale: str) -> Preset:
    if scale not in SCALES:
        raise ConfigError(f"unknown --scale {scale!r}; choose {', '.join(SCALES)}")
    if (name, scale) not in _PRESETS:
        known = ", ".join(sorted(n for n, s in _PRESETS if s == scale)) or "none"
        raise ConfigError(f"reproduction {name!r} has no {scale} preset; presets: {known}")
    return _PRESETS[(name, scale)]


def preset_names(scale: str = "paper") -> tuple[str, ...]:
    return tuple(sorted(n for n, s in _PRESETS if s == scale))


def measured_flops(device: str, size: int = 1024, repeats: int = 5) -> float:
    """float32 matmul throughput of ``device`` (FLOP/s), measured now (about a second)."""
    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    sync: Callable[[], None] = torch.cuda.synchronize if device.startswith("cuda") else lambda: None
    (a @ b).sum().item()  # warm up
    sync()
    t0 = time.perf_counter()
    for _ in range(repeats):
        a = a @ b
        a = a / a.norm()
    sync()
    return 2.0 * size**3 * repeats / max(time.perf_counter() - t0, 1e-9)


def estimate_seconds(work: Work, device: str, flops_per_second: float) -> float:
    kind = "cuda" if device.startswith("cuda") else "cpu"
    return work.steps * STEP_LATENCY[kind] + work.flops / flops_per_second


def estimate(preset: Preset, device: str, measure: bool = True) -> dict[str, Any]:
    """The preset's work and its estimated time on ``device``: from a throughput measured on it
    (``measure``, and the device is present), else the assumed one (:data:`ASSUMED_FLOPS`)."""
    kind = "cuda" if device.startswith("cuda") else "cpu"
    present = kind == "cpu" or torch.cuda.is_available()
    rate = measured_flops(device, 2048 if kind == "cuda" else 1024) if measure and present else None
    flops_per_second = rate if rate is not None else ASSUMED_FLOPS[kind]
    work = preset.work()
    seconds = estimate_seconds(work, device, flops_per_second)
    how = "measured" if rate is not None else "assumed"
    return {
        "device": device,
        "steps": work.steps,
        "flops": work.flops,
        "flops_per_second": flops_per_second,
        "throughput": how,
        "seconds": seconds,
        "text": (
            f"{preset.reproduction} at paper scale: {work.steps:,} optimizer steps, "
            f"{work.flops:.2e} FLOPs; ~{format_duration(seconds)} on {device} "
            f"({flops_per_second / 1e9:,.1f} GFLOP/s {how}, "
            f"{STEP_LATENCY[kind] * 1e3:.1f} ms a step latency assumed)"
        ),
    }


def format_duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172_800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86_400:.1f} days"


def capped(steps: int, cap: int | None) -> int:
    """A training's steps under a smoke test's cap."""
    return steps if cap is None else min(steps, cap)


__all__ = [
    "SCALES",
    "Preset",
    "Work",
    "capped",
    "estimate",
    "estimate_seconds",
    "format_duration",
    "get_preset",
    "measured_flops",
    "preset_names",
    "register_preset",
    "train_flops",
]
