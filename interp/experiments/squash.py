"""``squash``: over-squashing as the sensitivity of the last token's state to each position.

The analysis itself is :mod:`interp.analysis.sensitivity`; this file is the experiment around
it: which model, the estimate, the typed results and what the CLI prints.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from interp.analysis.sensitivity import (
    PROMPTS,
    SquashConfig,
    plan_squash,
    resolve_estimator,
    run_squash,
)
from interp.errors import ConfigError
from interp.experiments.base import (
    Context,
    Estimate,
    Experiment,
    ExperimentConfig,
    Prepared,
    Results,
    register_experiment,
)
from interp.experiments.headlines import squash_headline
from interp.experiments.subject import load_subject
from interp.progress import SILENT, Progress
from interp.report.tables import Table
from interp.resources import expected_peak, squash_estimate


@dataclass(frozen=True)
class SquashRun(ExperimentConfig):
    """``interp squash``: which model, on which device, which prompts and length."""

    model: str | None = None
    device: str = "cpu"
    squash: SquashConfig = field(default_factory=SquashConfig)

    def validate(self) -> None:
        unknown = [p for p in self.squash.prompts if p not in PROMPTS]
        if unknown or not self.squash.prompts:
            raise ConfigError(
                f"unknown prompt {unknown[0]!r}; choose from {', '.join(PROMPTS)}"
                if unknown
                else "no prompt given"
            )
        if self.squash.length < 2:
            raise ConfigError(f"--length must be at least 2, not {self.squash.length}")


@dataclass
class SquashResults(Results):
    kind: ClassVar[str] = "squash"
    schema: ClassVar[int] = 2  # 2: "estimator"

    config: dict[str, Any]
    layers: list[str]
    final_layer: str
    input_hook: str
    prompts: dict[str, Any]
    model: str | None = None
    estimator: dict[str, Any] | None = None
    headline: str = ""  # the finding in one sentence (interp.experiments.headlines)

    def tables(self) -> list[Table]:
        final = self.final_layer
        rows = []
        for name, r in self.prompts.items():
            s = r["shares"][final]
            rows.append(
                (
                    name,
                    f"{s['first_quarter']:.3f}",
                    f"{s['last_quarter_excl_last']:.3f}",
                    f"{s['last_token']:.3f}",
                )
            )
        columns = ("prompt", "first quarter", "last quarter (excl. last)", "last token")
        return [Table(f"share of the sensitivity of {final} at the last token", columns, rows)]


@register_experiment
class Squash(Experiment[SquashRun, SquashResults]):
    kind = "squash"
    config_cls = SquashRun
    results_cls = SquashResults
    description = "sensitivity of the last token's state to each input position, per layer"

    def prepare(
        self, config: SquashRun, model: Any = None, progress: Progress = SILENT
    ) -> Prepared[SquashRun]:

        subject = load_subject(config.model, config.device, model, progress, self.kind)
        c = subject.model.cfg
        n_ctx = int(c.n_ctx)
        sq = config.squash
        built = plan_squash(subject.model, sq)  # every prompt fits, before any line
        longest = max(len(tokens) for tokens, _ in built.values())
        d_model = int(c.d_model)
        copies = min(sq.chunk if resolve_estimator(sq, d_model) == "exact" else sq.probes, d_model)
        disk, memory = squash_estimate(
            int(c.n_layers),
            d_model,
            int(getattr(c, "d_mlp", 0) or 0),
            int(getattr(c, "n_heads", 1) or 1),
            min(longest, n_ctx),
            copies,
        )
        resident, peak = expected_peak(memory)
        spec = str(subject.run_dir) if subject.default else config.model
        return Prepared(
            config.replace(model=spec),
            Estimate(peak - resident, disk, "the sensitivities", resident=resident),
            model=subject.model,
            model_run=subject.run_dir,
            state={"label": subject.label, "built": built},
        )

    def run(self, prepared: Prepared[SquashRun], context: Context) -> SquashResults:
        results = run_squash(
            prepared.model,
            prepared.config.squash,
            progress=context.progress,
            built=prepared.state["built"],
        )
        results.pop("kind", None)
        return SquashResults(
            **results, model=prepared.state["label"], headline=squash_headline(results)
        )


__all__ = ["Squash", "SquashResults", "SquashRun"]
