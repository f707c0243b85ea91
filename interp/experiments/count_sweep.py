"""``count sweep``: a model trained per (d, m) for query count or most-frequent count
(Yehudai et al. 2024); where accuracy falls (m_thr) against the width d.

The training and the summary are :mod:`interp.analysis.counting` (``run_sweep``: one cell per
(d, m) in the run's cell store, models of one shape trained together); this file is the
experiment around it: the config, the work estimate, typed results, the verdict and tables.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from interp.analysis import counting
from interp.analysis.counting import SweepConfig
from interp.executors import get_executor
from interp.experiments.base import (
    Context,
    Estimate,
    Experiment,
    ExperimentConfig,
    Prepared,
    Results,
    register_experiment,
)
from interp.progress import SILENT, Progress
from interp.report.tables import Table
from interp.resources import MAX_MODELS, MAX_SAMPLES, MAX_STEPS, check_limit, count_sweep_estimate
from interp.runs import RunDir


@dataclass(frozen=True)
class CountSweepConfig(ExperimentConfig):
    """``config.json`` of a sweep: ``{"sweep": {...}}`` beside its kind."""

    sweep: SweepConfig = field(default_factory=SweepConfig)

    @property
    def seed(self) -> int:
        return self.sweep.seed

    @property
    def device(self) -> str:
        return self.sweep.device

    def validate(self) -> None:

        s = self.sweep
        s.validate()
        check_limit(s.steps, "--steps", MAX_STEPS, "steps per model")
        check_limit(s.eval_samples, "--eval-samples", MAX_SAMPLES, "sequences per cell")
        cells = len(s.d_values) * len(s.m_values)
        check_limit(cells, "the --d x --m grid of", MAX_MODELS, "models")


@dataclass
class CountSweepResults(Results):
    kind: ClassVar[str] = "count-sweep"
    schema: ClassVar[int] = 1

    cells: list[dict[str, Any]]
    threshold: float
    thresholds: list[dict[str, Any]]
    fit: dict[str, float] | None = None
    headline: str = ""

    def tables(self) -> list[Table]:
        def fmt(v: float | None) -> str:
            return "—" if v is None else f"{v:.3f}"

        rows = [
            (
                str(t["d"]),
                f"{t['m_thr']:.2f}" if t["m_thr"] is not None else f"({t['censored']} the grid)",
                fmt(t["mean_acc_m_le_d"]),
                fmt(t["mean_acc_m_gt_d"]),
            )
            for t in self.thresholds
        ]
        title = "m_thr(d): accuracy falls to the threshold"
        return [Table(title, ("d", "m_thr", "acc m<=d", "acc m>d"), rows)]

    def lines(self) -> list[str]:
        fit = self.fit
        if not fit:
            return []
        return [f"fit: m_thr = {fit['slope']:.3f} d + {fit['intercept']:.2f} (R² {fit['r2']:.3f})"]


def sweep_headline(results: dict[str, Any]) -> str:
    """Whether accuracy drops once m exceeds d, with the numbers; guarded: a d whose cells
    with m <= d are not accurate themselves (an undertrained model) makes it inconclusive."""
    threshold = results["threshold"]
    rows = [t for t in results["thresholds"] if t["mean_acc_m_gt_d"] is not None]
    if not rows:
        return "Counting sweep: no cell with m > d, so the paper's drop cannot be tested."
    trained = [t for t in rows if (t["mean_acc_m_le_d"] or 0.0) >= threshold]
    parts = "; ".join(
        f"d={t['d']}: {_acc(t['mean_acc_m_le_d'])} vs {_acc(t['mean_acc_m_gt_d'])}" for t in rows
    )
    if len(trained) < len(rows):
        return (
            f"Counting sweep inconclusive: accuracy with m <= d is below {threshold:g} for "
            f"{len(rows) - len(trained)} of {len(rows)} widths (undertrained; mean accuracy "
            f"m <= d vs m > d: {parts})."
        )
    drop = all(t["mean_acc_m_le_d"] > t["mean_acc_m_gt_d"] for t in trained)
    verb = "drops" if drop else "does not drop"
    return f"Counting accuracy {verb} once m > d (mean accuracy m <= d vs m > d: {parts})."


def _acc(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


@register_experiment
class CountSweep(Experiment[CountSweepConfig, CountSweepResults]):
    kind = "count-sweep"
    config_cls = CountSweepConfig
    results_cls = CountSweepResults
    resumable = True
    writes_while_running = True
    description = "a model per (d, m) for counting; m_thr against d"

    def estimate(self, config: CountSweepConfig, report: bool = True) -> Estimate:

        s = config.sweep
        disk, memory = count_sweep_estimate(s.d_values, s.m_values, s.n, s.n_factor, s.n_layers,
                                            s.n_heads, s.mlp_ratio, s.batch_size, s.batched)  # fmt: skip
        return Estimate(memory, disk, f"the sweep of {len(s.d_values) * len(s.m_values)} models")

    def prepare(
        self,
        config: CountSweepConfig,
        model: Any = None,
        progress: Progress = SILENT,
        run: RunDir | None = None,
        executor: str | None = None,
        ray_address: str | None = None,
    ) -> Prepared[CountSweepConfig]:
        """``executor`` / ``ray_address``: where the groups train (:mod:`interp.executors`; a
        per-invocation choice, not in config.json: the cells are the same on each)."""
        chosen = get_executor(executor, ray_address)
        chosen.start()  # connected (or refused) before the run directory is written
        return Prepared(config, None, state={"executor": chosen})

    def run(self, prepared: Prepared[CountSweepConfig], context: Context) -> CountSweepResults:
        bar, started = context.progress, [False]
        assert context.run is not None
        executor = (prepared.state or {}).get("executor") or get_executor()

        def progress(done: int, total: int) -> None:
            if not started[0]:
                bar.start(total, done, "cells")
                started[0] = True
            else:
                bar.advance(done)

        try:
            results = counting.run_sweep(
                context.run, prepared.config.sweep, progress=progress, executor=executor
            )
        finally:
            executor.close()
        return CountSweepResults(**results, headline=sweep_headline(results))


__all__ = ["CountSweep", "CountSweepConfig", "CountSweepResults", "sweep_headline"]
