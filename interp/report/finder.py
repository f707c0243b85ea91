"""The results finder: every set of one experiment kind's results a run holds (its own, the
analyses of its model, its sub-runs), and the run each set belongs to."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from interp.report.view import RunView, load_run_view


@dataclass(frozen=True)
class Found:
    """One set of results a run holds for an experiment kind."""

    results: Mapping[str, Any]
    source: str  # path relative to the run
    label: str  # "" for the run's own results, else where they came from
    newest: bool = False  # the latest of several analyses of this run's model


_SKIP = {"checkpoints", "cells", "tokenizer", "analyses"}


def _kind_of(run: RunView, folder: Path, results: Mapping[str, Any]) -> Any:
    if isinstance(results.get("kind"), str):
        return results["kind"]
    config = run.read_json(str((folder / "config.json").relative_to(run.path)))
    return config.get("kind") if isinstance(config, Mapping) else None


def find_results(run: RunView, kind: str) -> list[Found]:
    """Every set of ``kind`` results in ``run``: the only place that knows where they live.

    1. ``results.json`` when the run itself is a ``kind`` run;
    2. analyses of the run's model: ``analyses/<kind>/<analysis>/results.json`` (one folder per
       analysis run, newest marked) and the older single ``analyses/<kind>/results.json``;
    3. sub-runs one or two folders down (a reproduction's or sweep's parts) whose results or
       config say ``kind``."""
    found: list[Found] = []
    if run.config.get("kind") == kind:
        own = run.read_json("results.json")
        if isinstance(own, Mapping):
            found.append(Found(own, "results.json", ""))
    analyses: list[Found] = []
    legacy = run.read_json(f"analyses/{kind}/results.json")
    if isinstance(legacy, Mapping):
        analyses.append(Found(legacy, f"analyses/{kind}/results.json", "analysis"))
    folder = run.path / "analyses" / kind
    for path in sorted(folder.glob("*/results.json")) if folder.is_dir() else []:
        data = run.read_json(str(path.relative_to(run.path)))
        if isinstance(data, Mapping):
            analyses.append(
                Found(data, str(path.relative_to(run.path)), f"analysis {path.parent.name}")
            )
    if len(analyses) > 1:
        last = analyses[-1]
        analyses[-1] = Found(last.results, last.source, last.label, newest=True)
    found.extend(analyses)
    for pattern in ("*/results.json", "*/*/results.json"):
        for path in sorted(run.path.glob(pattern)):
            rel = path.relative_to(run.path)
            if rel.parts[0] in _SKIP or any(p.startswith(".") for p in rel.parts):
                continue
            data = run.read_json(str(rel))
            if isinstance(data, Mapping) and _kind_of(run, path.parent, data) == kind:
                found.append(Found(data, str(rel), str(rel.parent)))
    return found


def combined_results(run: RunView, kind: str) -> list[tuple[str, Mapping[str, Any]]]:
    """``(label, results)`` for every set of ``kind`` results in ``run``, for a section that
    shows them side by side (``label`` is empty for the run's own results)."""
    out = []
    for found in find_results(run, kind):
        label = found.label + (", newest" if found.newest else "")
        out.append((label, found.results))
    return out


def _view_of(run: RunView, found: Found) -> RunView:
    """The run a found set of results belongs to: a sub-run with its own ``config.json`` (its
    metrics, its config), else ``run`` itself."""
    folder = (run.path / found.source).parent
    if (
        folder != run.path
        and (folder / "config.json").is_file()
        and found.label
        and not found.label.startswith("analysis")
    ):
        return load_run_view(folder)
    return run
