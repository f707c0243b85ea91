"""``reproduce``: one paper's finding end to end, the paper's numbers beside ours.

The reproductions themselves are registered in :mod:`interp.reproductions` (one module per
finding); this experiment runs one into its run directory and keeps its claims as results
(``results.json``, and ``claims.json`` for the report's claims table).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch

import interp.reproductions  # noqa: F401  (registers every reproduction and preset)
from interp.errors import ConfigError
from interp.executors import default_executor, get_executor
from interp.experiments.base import (
    Context,
    Experiment,
    ExperimentConfig,
    Prepared,
    Results,
    register_experiment,
)
from interp.presets import SCALES, estimate, get_preset
from interp.progress import SILENT, Progress
from interp.report.tables import Table
from interp.reproduce import get_reproduction
from interp.runs import NEW_OUT_ONLY


@dataclass(frozen=True)
class ReproduceConfig(ExperimentConfig):
    name: str = ""
    quick: bool = False  # a smaller, faster version of the cpu scale (smoke tests)
    scale: str = "cpu"  # cpu: the CPU-sized reproduction; paper: the paper's configuration
    device: str = "cpu"  # where a paper preset trains
    steps: int | None = None  # a paper preset's trainings capped at this many steps (smoke test)

    def to_dict(self) -> dict[str, Any]:
        """The cpu scale's fields are left out at their defaults: a cpu-scale config.json reads
        as before presets existed."""
        body = super().to_dict()
        defaults = {"scale": "cpu", "device": "cpu", "steps": None}
        return {k: v for k, v in body.items() if k not in defaults or v != defaults[k]}

    def validate(self) -> None:

        if not self.name:
            raise ConfigError("name a reproduction (see interp reproduce --list)")
        get_reproduction(self.name)
        if self.scale not in SCALES:
            raise ConfigError(f"unknown --scale {self.scale!r}; choose {', '.join(SCALES)}")
        if self.scale == "cpu":
            if self.steps is not None or self.device != "cpu":
                raise ConfigError("--steps-override and --device are for --scale paper; the cpu "
                                  "scale runs its own sizes on the CPU")  # fmt: skip
            return
        get_preset(self.name, self.scale)
        if self.quick:
            raise ConfigError("--quick is the cpu scale's smaller run; --scale paper runs the "
                              "paper's configuration (cap it with --steps-override N)")  # fmt: skip
        if self.steps is not None and (not isinstance(self.steps, int) or self.steps < 1):
            raise ConfigError(f"--steps-override must be >= 1, got {self.steps!r}")
        if self.device not in ("cpu", "cuda") and not self.device.startswith("cuda:"):
            raise ConfigError(f"unknown --device {self.device!r}; choose cpu or cuda")
        if self.device.startswith("cuda") and not torch.cuda.is_available():
            raise ConfigError(f"--device {self.device}: CUDA is not available on this machine")


@dataclass
class ReproduceResults(Results):
    kind: ClassVar[str] = "reproduce"
    schema: ClassVar[int] = 1

    name: str
    quick: bool
    claims: list[dict[str, Any]]
    scale: str = "cpu"
    estimate: dict[str, Any] | None = None  # a paper preset's estimated work and time

    def to_dict(self) -> dict[str, Any]:
        body = super().to_dict()
        if self.scale == "cpu":  # as before presets existed
            body.pop("scale")
            body.pop("estimate")
        return body

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
        self,
        config: ReproduceConfig,
        model: Any = None,
        progress: Progress = SILENT,
        executor: str | None = None,
        ray_address: str | None = None,
    ) -> Prepared[ReproduceConfig]:
        """``executor`` / ``ray_address``: where the sweeps inside it train (a per-invocation
        choice, as for the sweeps themselves; checked now, started by each sweep)."""
        if executor is not None:
            get_executor(executor, ray_address)
        if config.scale != "cpu":
            get_preset(config.name, config.scale).check()  # before the run directory exists
        state = {"sweeps_on": executor, "ray_address": ray_address}  # not "executor": its own
        return Prepared(config, None, state=state)  # each part checks its own resources

    def run(self, prepared: Prepared[ReproduceConfig], context: Context) -> ReproduceResults:

        config, state = prepared.config, prepared.state or {}
        with default_executor(state.get("sweeps_on"), state.get("ray_address")):
            return self._run(config, context)

    def _run(self, config: ReproduceConfig, context: Context) -> ReproduceResults:
        note = context.progress.note
        guess = None
        if config.scale == "cpu":
            found = get_reproduction(config.name).run(context.run.path, config.quick, note)
        else:
            preset = get_preset(config.name, config.scale)
            guess = estimate(preset, config.device)
            note(guess["text"])
            found = preset.run(context.run.path, note, config.device, config.steps)
        claims = [c.to_dict() for c in found]
        context.run.tree.write_json("claims.json", claims)
        return ReproduceResults(config.name, config.quick, claims, config.scale, guess)


__all__ = ["Reproduce", "ReproduceConfig", "ReproduceResults"]
