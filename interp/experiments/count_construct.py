"""``count construct``: the hand-built histogram model for query count (Yehudai et al. 2024),
exact when d >= m, evaluated on random data at every (d, m).

The analysis is :mod:`interp.analysis.counting` (``run_construct``); this file is the experiment
around it: the work estimate, typed results, the headline and the table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from interp.analysis import counting
from interp.analysis.counting import ConstructConfig
from interp.experiments.base import (
    Context,
    Estimate,
    Experiment,
    Prepared,
    Results,
    register_experiment,
)
from interp.progress import SILENT, Progress
from interp.report.tables import Table
from interp.resources import MAX_SAMPLES, REPORT_BYTES, check_limit, check_work, construct_estimate
from interp.runs import NEW_OUT_ONLY


@dataclass
class ConstructResults(Results):
    kind: ClassVar[str] = "count-construct"
    schema: ClassVar[int] = 1

    cells: list[dict[str, Any]]
    threshold: float
    thresholds: list[dict[str, Any]]
    fit: dict[str, float] | None
    headline: str = ""

    def tables(self) -> list[Table]:
        rows = [
            (
                str(c["d"]),
                str(c["m"]),
                str(c["n"]),
                f"{c['accuracy']:.3f}",
                "yes" if c["exact"] else "no",
            )
            for c in self.cells
        ]
        return [
            Table(
                "histogram construction (query count)", ("d", "m", "n", "accuracy", "exact"), rows
            )
        ]


def construct_headline(results: dict[str, Any]) -> str:
    """Exact where d >= m (the construction's claim), and how accuracy fares beyond."""
    cells = results["cells"]
    inside = [c for c in cells if c["m"] <= c["d"]]
    beyond = [c for c in cells if c["m"] > c["d"]]
    parts = []
    if inside:
        exact = sum(1 for c in inside if c["exact"])
        parts.append(f"exact in {exact} of {len(inside)} cells with m <= d")
    if beyond:
        mean = sum(c["accuracy"] for c in beyond) / len(beyond)
        parts.append(f"mean accuracy {mean:.3f} in the {len(beyond)} cells with m > d")
    text = "Histogram construction: " + "; ".join(parts)
    if inside and any(not c["exact"] for c in inside):
        text += " (inconclusive: the construction should be exact wherever m <= d)"
    return text + "."


@register_experiment
class CountConstruct(Experiment[ConstructConfig, ConstructResults]):
    kind = "count-construct"
    config_cls = ConstructConfig
    results_cls = ConstructResults
    description = "the hand-built histogram model for query count, at every (d, m)"

    @property
    def remedy(self) -> str:

        return NEW_OUT_ONLY

    def prepare(
        self, config: ConstructConfig, model: Any = None, progress: Progress = SILENT
    ) -> Prepared[ConstructConfig]:

        check_limit(config.samples, "--samples", MAX_SAMPLES, "sequences per (d, m)")
        memory, work = construct_estimate(
            config.d_values, config.m_values, config.n, config.samples
        )
        cells = len(config.d_values) * len(config.m_values)
        what = f"the construction ({cells} cells x {config.samples:,} sequences)"
        progress.note(check_work(work, what, "use fewer --samples, fewer cells or a shorter --n"))
        return Prepared(config, Estimate(memory, REPORT_BYTES, "the construction"))

    def run(self, prepared: Prepared[ConstructConfig], context: Context) -> ConstructResults:
        bar = context.progress

        def progress(done: int, total: int) -> None:
            bar.start(total, 0, "sequences") if done == 0 else bar.advance(done)

        results = counting.run_construct(prepared.config, progress=progress)
        return ConstructResults(**results, headline=construct_headline(results))


__all__ = ["ConstructResults", "CountConstruct", "construct_headline"]
