"""``grok-sweep``: a weight decay x train size x width x seed grid of small MLPs, trained many
at a time (one batched training per width), each run labelled no-learn / memorise / grok /
generalise (PAIR's phase diagrams; :mod:`interp.grok.detect`), or still-rising (a memorise run
whose test accuracy was still climbing when training stopped).

SWEEP/config.json               {"kind": "grok-sweep", "schema", "sweep": GrokSweepConfig}
SWEEP/cells/group_XXX.json      one finished group (:class:`interp.cells.CellStore`;
                                ``resume`` skips it, every saved group checked first)
SWEEP/checkpoints/...           the group in training (``resume`` continues it)
SWEEP/results.json, SWEEP/report.html
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from interp.cells import CellStore
from interp.executors import Executor, LocalExecutor, get_executor
from interp.experiments.base import (
    Context,
    Estimate,
    Experiment,
    ExperimentConfig,
    Prepared,
    Results,
    register_experiment,
)
from interp.experiments.grok import build_model
from interp.grok.config import GrokSweepConfig
from interp.grok.detect import LABELS, PAIR_LABELS, summarise_run
from interp.progress import SILENT, Callbacks, Progress, Scaled
from interp.resources import MAX_STEPS, check_limit
from interp.runs import ListOf, Num, OneOf, RunDir
from interp.seed import torch_threads
from interp.train.checkpoint import latest_checkpoint, restore_checkpoint, save_checkpoint
from interp.train.full_batch import train_full_batch_many
from interp.train.optim import Optim

CURVES = ("train_loss", "test_loss", "test_acc", "weight_norm")


@dataclass(frozen=True)
class GrokSweepRun(ExperimentConfig):
    """``interp grok sweep``: the grid (config.json's ``sweep``)."""

    sweep: GrokSweepConfig = field(default_factory=GrokSweepConfig)

    def validate(self) -> None:
        self.sweep.validate()

    @property
    def seed(self) -> int:
        return self.sweep.seed

    @property
    def device(self) -> str:
        return self.sweep.device


@dataclass
class GrokSweepResults(Results):
    kind: ClassVar[str] = "grok-sweep"
    schema: ClassVar[int] = 1

    task: str
    n_runs: int
    seconds: float
    runs_per_second: float
    thresholds: dict[str, float]
    label_counts: dict[str, int]
    steps: list[int]
    runs: list[dict[str, Any]]
    headline: str = ""

    def lines(self) -> list[str]:
        return [f"{self.runs_per_second:.2f} runs/s"]


def label_counts(runs: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """Runs per label, in :data:`~interp.grok.detect.LABELS` order: PAIR's four always (as
    results.json had them), ``still-rising`` where a run has it."""
    counts = {label: sum(r["label"] == label for r in runs) for label in LABELS}
    return {k: v for k, v in counts.items() if k in PAIR_LABELS or v}


def sweep_headline(r: Mapping[str, Any]) -> str:
    counts = ", ".join(f"{k} {v}" for k, v in r["label_counts"].items())
    text = f"{r['n_runs']} runs: {counts}"  # no timing: a resumed sweep has the same headline
    if r["n_runs"] and r["label_counts"].get("no-learn", 0) == r["n_runs"]:
        # the baseline: a run that never fits its training set shows no phase of anything
        return (
            f"Inconclusive: no run fitted its training set ({text}); try more --steps or a "
            "larger --lr."
        )
    return text


# ------------------------------------------------------------------------------ saved groups
_CURVE = ListOf(Num(none=True))
GROUP_CELL = {
    "group": int,
    "steps": ListOf(int),
    "runs": ListOf(
        {
            "label": OneOf(*LABELS),
            "memorisation_step": Num(0, none=True),
            "grokking_step": Num(0, none=True),
            "final_train_accuracy": Num(0, 1, none=True),
            "final_test_accuracy": Num(0, 1, none=True),
            "curves": {k: _CURVE for k in CURVES},
        }
    ),
}


def group_key(group: int) -> str:
    return f"group_{group:03d}"


def group_check(group: int, points: list[dict[str, Any]]) -> Callable[[Any], str | None]:
    """What a saved group must hold beyond its shape: the grid points it was trained for."""

    def check(cell: Any) -> str | None:
        if cell["group"] != group or len(cell["runs"]) != len(points):
            return (
                f"it holds group {cell['group']} of {len(cell['runs'])} runs, not group {group} "
                f"of {len(points)}"
            )
        for i, (r, point) in enumerate(zip(cell["runs"], points, strict=True)):
            for key, value in point.items():
                if r.get(key) != value:
                    return f"runs[{i}].{key} is {r.get(key)!r}, the sweep's is {value!r}"
            for name, curve in r["curves"].items():
                if len(curve) != len(cell["steps"]):
                    return f"runs[{i}].curves.{name} does not match the logged steps"
        return None

    return check


# ------------------------------------------------------------------------------ one group
def _batched_checkpoints(cfg: GrokSweepConfig, run_dir: Path, group: int, resume: bool) -> dict:
    """``train_full_batch_many`` hooks saving / restoring one group's state (safetensors + JSON)."""

    def on_checkpoint(step: int, stack: nn.Module, opt: torch.optim.Optimizer, rows: dict) -> None:
        save_checkpoint(run_dir, step, stack, opt, extra={"group": group, "rows": rows}, keep=1)

    def restore(stack: nn.Module, opt: torch.optim.Optimizer) -> tuple[int, dict] | None:
        ckpt = latest_checkpoint(run_dir)
        if not resume or ckpt is None or ckpt.extra.get("group") != group:
            return None
        restore_checkpoint(ckpt, stack, opt)
        rows = {
            k: [[float("nan") if v is None else v for v in r] for r in rs]
            for k, rs in ckpt.extra["rows"].items()
        }
        return ckpt.step, rows

    return {
        "checkpoint_every": cfg.checkpoint_every,
        "on_checkpoint": on_checkpoint,
        "restore": restore,
    }


def train_group(
    cfg: GrokSweepConfig,
    points: list[dict[str, Any]],
    progress: Progress = SILENT,
    checkpoints: tuple[Path, int, bool] | None = None,
) -> tuple[list[dict[str, Any]], list[int]]:
    """Train one group of same-width points together: one summary per point, and the logged
    steps.  ``checkpoints=(run_dir, group, resume)`` saves the batched state every
    ``cfg.checkpoint_every`` steps and, with ``resume``, continues from one of that group."""
    configs = [cfg.run_config(pt) for pt in points]
    x, y, masks = cfg.spec.sweep_data(configs)
    hist = train_full_batch_many(
        [build_model(c) for c in configs], x, y, masks, [c.weight_decay for c in configs],
        cfg.steps, Optim(lr=cfg.lr), log_every=cfg.log_every, progress=progress,
        device=cfg.device,
        labels=["run " + ", ".join(f"{k} {v}" for k, v in pt.items()) for pt in points],
        **(_batched_checkpoints(cfg, *checkpoints) if checkpoints else {}),
    )  # fmt: skip
    out = []
    for i, point in enumerate(points):
        curves = {
            "train_loss": hist.train_loss[i],
            "test_loss": hist.test_loss[i],
            "test_acc": hist.test_acc[i],
            "weight_norm": hist.weight_norm[i],
        }
        summary = summarise_run(hist.steps, hist.train_loss[i], hist.test_loss[i],
                                hist.train_acc[i], hist.test_acc[i], cfg.rule)  # fmt: skip
        out.append({**point, **summary, "curves": curves})
    return out, hist.steps


# ------------------------------------------------------------------------------ the sweep
def saved_groups(cfg: GrokSweepConfig, run: RunDir) -> dict[int, dict[str, Any]]:
    """The groups ``run`` saved, each checked against the grid points it must hold."""
    store, saved = CellStore(run, spec=GROUP_CELL), {}
    for g, points in enumerate(cfg.groups()):
        if store.has(group_key(g)):
            saved[g] = store.get(group_key(g), group_check(g, points))
    return saved


def group_cell(
    cfg: GrokSweepConfig,
    item: tuple[int, list[dict[str, Any]]],
    progress: Progress = SILENT,
    checkpoints: tuple[Path, bool] | None = None,
) -> dict[str, Any]:
    """Group ``g`` of the grid trained (``item = (g, points)``): its saved cell.  Depends on
    ``cfg`` and ``item`` alone (a Ray task runs it anywhere); in this process it also reports
    progress and checkpoints into ``checkpoints = (run_dir, resume)``."""
    g, points = item
    where = (checkpoints[0], g, checkpoints[1]) if checkpoints is not None else None
    summaries, steps = train_group(cfg, points, progress, checkpoints=where)
    return {"group": g, "runs": summaries, "steps": steps}


def run_groups(
    cfg: GrokSweepConfig,
    context: Context,
    saved: dict[int, dict[str, Any]] | None = None,
    executor: Executor | None = None,
) -> GrokSweepResults:
    """Every group, trained (by ``executor``, default local: one after another here) or read
    back from its saved cell; the labelled runs.  Each finished group is saved here as it
    comes back, so a kill keeps every finished group on either executor."""
    assert context.run is not None
    run, progress = context.run, context.progress
    executor = executor or LocalExecutor()
    groups = cfg.groups()
    store = CellStore(run, spec=GROUP_CELL)
    if saved is None:
        saved = saved_groups(cfg, run) if context.resume else {}
    cells = dict(saved)
    todo = [(g, points) for g, points in enumerate(groups) if g not in saved]
    n_cells = sum(len(points) for points in groups)
    t0 = time.perf_counter()
    if executor.in_process:  # steps of every group, checkpoints for --resume mid-group
        progress.start(cfg.steps * len(groups), 0, "grok sweep")

        at = [0]  # where the bar is: saved groups before this one move it on

        def work(item: tuple[int, list[dict[str, Any]]]) -> dict[str, Any]:
            done = item[0] * cfg.steps
            if at[0] < done:
                progress.advance(done)
            at[0] = done + cfg.steps
            return group_cell(cfg, item, Scaled(progress, done), (run.path, context.resume))

        total, unit = cfg.steps * len(groups), None
    else:  # groups done elsewhere: cells done / total
        work = partial(group_cell, cfg)
        total, unit = n_cells, sum(len(cells[g]["runs"]) for g in cells)
        progress.start(total, unit, "cells")

    def save(index: int, cell: dict[str, Any]) -> None:
        nonlocal unit
        g = cell["group"]
        store.put(group_key(g), cell)
        cells[g] = cell
        if unit is not None:
            unit += len(cell["runs"])
            progress.advance(unit)

    executor.map(work, todo, save)
    if executor.in_process and at[0] < total:  # the last groups were saved already
        progress.advance(total)
    runs = [r for g in range(len(groups)) for r in cells[g]["runs"]]
    steps = cells[len(groups) - 1]["steps"] if groups else []
    seconds = time.perf_counter() - t0
    results = {
        "task": cfg.task,
        "n_runs": len(runs),
        "seconds": seconds,
        "runs_per_second": len(runs) / max(seconds, 1e-9),
        "thresholds": cfg.rule.to_dict(),
        "label_counts": label_counts(runs),
        "steps": steps,
        "runs": runs,
    }
    return GrokSweepResults(**results, headline=sweep_headline(results))


@register_experiment
class GrokSweep(Experiment[GrokSweepRun, GrokSweepResults]):
    kind = "grok-sweep"
    config_cls = GrokSweepRun
    results_cls = GrokSweepResults
    resumable = True
    writes_while_running = True
    description = "a grid of grokking MLPs trained many at a time, each run labelled"

    def estimate(self, config: GrokSweepRun, report: bool = True) -> Estimate:

        cfg = config.sweep
        check_limit(cfg.steps, "--steps", MAX_STEPS, "steps per run")
        disk, memory = cfg.spec.sweep_estimate(cfg)
        return Estimate(memory, disk, f"the sweep of {len(cfg.points())} runs")

    def prepare(
        self,
        config: GrokSweepRun,
        model: Any = None,
        progress: Progress = SILENT,
        run: RunDir | None = None,
        executor: str | None = None,
        ray_address: str | None = None,
    ) -> Prepared[GrokSweepRun]:
        """``executor`` / ``ray_address``: where the groups train (:mod:`interp.executors`; a
        per-invocation choice, not in config.json: the cells are the same on each)."""
        chosen = get_executor(executor, ray_address)
        # a resumed sweep: every saved group checked now, before hours of training, not after
        saved = saved_groups(config.sweep, run) if run is not None else None
        chosen.start()  # connected (or refused) before the run directory is written
        return Prepared(config, None, state={"saved": saved, "executor": chosen})

    def run(self, prepared: Prepared[GrokSweepRun], context: Context) -> GrokSweepResults:
        state = prepared.state or {}
        saved = state.get("saved") if context.resume else None
        executor = state.get("executor") or get_executor()
        try:
            with torch_threads(1):
                return run_groups(prepared.config.sweep, context, saved, executor)
        finally:
            executor.close()


def run_sweep(
    out: Path,
    cfg: GrokSweepConfig,
    overwrite: bool = False,
    on_start: Callable[[int, int], None] | None = None,
    on_step: Callable[[int], None] | None = None,
    resume: bool = False,
    report: bool = False,
) -> Any:
    """Train the grid into ``out`` (:func:`interp.experiments.execute` of a
    :class:`GrokSweepRun`); ``resume`` continues a stopped sweep to the same results."""
    from interp.experiments.execute import execute

    progress = Callbacks(on_start, on_step)
    return execute("grok-sweep", GrokSweepRun(cfg), out, resume=resume, overwrite=overwrite,
                   report=report, progress=progress)  # fmt: skip


__all__ = [
    "GROUP_CELL",
    "GrokSweep",
    "GrokSweepResults",
    "GrokSweepRun",
    "group_check",
    "run_sweep",
    "train_group",
]
