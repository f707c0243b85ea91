"""Scaled-down reproductions of the papers' findings, registered by name.

A reproduction runs end to end into one output directory and returns its claims: each claim
sets the paper's number beside ours with a pass/fail for the qualitative statement.
``interp reproduce NAME`` prints them as a table and writes ``claims.json`` and a report.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from interp.errors import ConfigError


@dataclass(frozen=True)
class Claim:
    claim: str  # the qualitative statement tested
    paper: str  # the paper's number or description
    ours: str  # what we measured
    passed: bool | None  # None = reported, not judged

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


ProgressFn = Callable[[str], None]
ReproductionFn = Callable[[Path, bool, ProgressFn], list[Claim]]  # (out_dir, quick, progress)


@dataclass(frozen=True)
class Reproduction:
    name: str
    description: str
    run: ReproductionFn


_REPRODUCTIONS: dict[str, Reproduction] = {}


def register_reproduction(
    name: str, description: str
) -> Callable[[ReproductionFn], ReproductionFn]:
    def wrap(fn: ReproductionFn) -> ReproductionFn:
        if name in _REPRODUCTIONS:
            raise ValueError(f"reproduction {name!r} is registered twice")
        _REPRODUCTIONS[name] = Reproduction(name, description, fn)
        return fn

    return wrap


def reproduction_names() -> tuple[str, ...]:
    """Names registered so far (``import interp.reproductions`` registers them all)."""
    return tuple(sorted(_REPRODUCTIONS))


def get_reproduction(name: str) -> Reproduction:
    if name not in _REPRODUCTIONS:
        known = ", ".join(reproduction_names()) or "none registered yet"
        raise ConfigError(f"unknown reproduction {name!r}; choose from {known}")
    return _REPRODUCTIONS[name]
