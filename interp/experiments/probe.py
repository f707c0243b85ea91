"""``probe``: future-token probes (future-lens ridge, vocabulary softmax) for every layer and
horizon, with unigram / bigram / model baselines.

The analysis is :mod:`probes.run` (``prepare`` on a loaded model, then ``run_probes``); this
file is the experiment around it: which model, the estimate, the typed results, the tables.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from interp.experiments.base import (
    Context,
    Estimate,
    Experiment,
    Prepared,
    Results,
    register_experiment,
)
from interp.experiments.headlines import probe_headline
from interp.experiments.subject import load_subject
from interp.progress import SILENT, Progress
from interp.report.tables import Table
from interp.resources import MAX_SAMPLES, check_limit, expected_peak
from probes.run import ProbeConfig, prepare, run_probes


@dataclass
class ProbeResults(Results):
    kind: ClassVar[str] = "probe"
    schema: ClassVar[int] = 2  # 2: metrics over the scored test positions; "evaluation"

    model: str
    model_config: dict[str, int]
    data: str
    layers: list[int]
    layer_labels: list[str]
    horizons: list[int]
    seq_len: int
    tokens: dict[str, Any]
    chance: dict[str, float]
    probes: dict[str, Any]
    baselines: dict[str, Any]
    timing_s: dict[str, float]
    tokens_per_s: float | None
    notes: list[str]
    evaluation: dict[str, Any] | None = None
    headline: str = ""  # the finding in one sentence (interp.experiments.headlines)

    def tables(self) -> list[Table]:
        h = self.horizons
        columns = ("layer", *(f"k = {k}" for k in h))
        tables = []
        for kind, probe in self.probes.items():
            rows = [
                (label, *(f"{v:.3f}" for v in row))
                for label, row in zip(
                    self.layer_labels, probe["metrics"]["top1"]["value"], strict=True
                )
            ]
            for name, base in self.baselines.items():
                values = base["top1"]["value"]
                values = values if isinstance(values, list) else [values]
                rows.append(
                    (f"{name} baseline", *("-" if v is None else f"{v:.3f}" for v in values))
                )
            tables.append(Table(f"{kind} top-1 accuracy by layer and horizon", columns, rows))
        return tables

    def lines(self) -> list[str]:
        return [f"note: {note}" for note in self.notes]


@register_experiment
class Probe(Experiment[ProbeConfig, ProbeResults]):
    kind = "probe"
    config_cls = ProbeConfig
    results_cls = ProbeResults
    data_parallel = True
    description = "future-token probes for every layer and horizon, with baselines"

    def prepare(
        self, config: ProbeConfig, model: Any = None, progress: Progress = SILENT
    ) -> Prepared[ProbeConfig]:
        from probes.collect import human_bytes
        from probes.run import estimate_memory

        check_limit(config.tokens, "--tokens", MAX_SAMPLES, "tokens")
        subject = load_subject(config.model, config.device, model, progress, self.kind)
        spec = str(subject.run_dir) if subject.default else (config.model or subject.label)
        config = config.replace(model=spec if model is None else None)
        prep = prepare(subject.model, config, spec)
        progress.note(f"data: {prep.data_note}; {prep.blocks.shape[0]} blocks of {prep.seq_len}")
        work = estimate_memory(subject.model, prep)
        resident, peak = expected_peak(work)
        if prep.vocab_memory is not None:
            progress.note(f"vocabulary probe: holds about {human_bytes(prep.vocab_memory)}")
        return Prepared(
            prep.config,
            Estimate(peak - resident, 8 * 2**20, "the probe", resident=resident),
            model=subject.model,
            model_run=subject.run_dir,
            state=prep,
        )

    def run(self, prepared: Prepared[ProbeConfig], context: Context) -> ProbeResults:
        results = run_probes(prepared.model, prepared.state, progress=context.progress)
        results.pop("kind", None)
        return ProbeResults(**results, headline=probe_headline(results))


__all__ = ["Probe", "ProbeResults"]
