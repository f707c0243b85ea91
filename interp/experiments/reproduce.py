"""``reproduce``: one paper's finding end to end, the paper's numbers beside ours.

The reproductions themselves are registered in :mod:`interp.reproductions` (one module per
finding); this experiment runs one into its run directory and keeps its claims as results
(``results.json``, and ``claims.json`` for the report's claims table).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import interp.reproductions  # noqa: F401  (registers every reproduction)
from interp.errors import ConfigError
from interp.experiments.base import (
    Context,
    Experiment,
    ExperimentConfig,
    Prepared,
    Results,
    register_experiment,
)
from interp.progress import SILENT, Progress
from interp.report.tables import Table
from interp.reproduce import get_reproduction
from interp.runs import NEW_OUT_ONLY


@dataclass(frozen=True)
class ReproduceConfig(ExperimentConfig):
    name: str = ""
    quick: bool = False  # a smaller, faster version (smoke tests)

    def validate(self) -> None:

        if not self.name:
            raise ConfigError("name a reproduction (see interp reproduce --list)")
        get_reproduction(self.name)


@dataclass
class ReproduceResults(Results):
    kind: ClassVar[str] = "reproduce"
    schema: ClassVar[int] = 1

    name: str
    quick: bool
    claims: list[dict[str, Any]]

    def tables(self) -> list[Table]:
        verdict = {True: "pass", False: "fail", None: "—"}
        rows = [(c["claim"], c["paper"], c["ours"], verdict[c["passed"]]) for c in self.claims]
        return [Table(f"interp reproduce {self.name}", ("claim", "paper", "ours", "verdict"), rows)]


@register_experiment
class Reproduce(Experiment[ReproduceConfig, ReproduceResults]):
    kind = "reproduce"
    config_cls = ReproduceConfig
    results_cls = ReproduceResults
    writes_while_running = True
    description = "a scaled-down reproduction of one finding, claim by claim"

    @property
    def remedy(self) -> str:

        return NEW_OUT_ONLY

    def prepare(
        self, config: ReproduceConfig, model: Any = None, progress: Progress = SILENT
    ) -> Prepared[ReproduceConfig]:
        return Prepared(config, None)  # each part checks its own resources

    def run(self, prepared: Prepared[ReproduceConfig], context: Context) -> ReproduceResults:

        config = prepared.config
        repro = get_reproduction(config.name)
        claims = [
            c.to_dict() for c in repro.run(context.run.path, config.quick, context.progress.note)
        ]
        context.run.tree.write_json("claims.json", claims)
        return ReproduceResults(config.name, config.quick, claims)


__all__ = ["Reproduce", "ReproduceConfig", "ReproduceResults"]
