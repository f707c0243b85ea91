"""``grok``: one model trained full batch until it memorises, then (perhaps) generalises.

RUN/config.json     {"kind": "grok", "schema", "grok": GrokConfig (resolved)}
RUN/metrics.jsonl   train / val / fourier rows at every logged step
RUN/checkpoints/step_XXXXXXX/{model,optim}.safetensors + state.json  weights, AdamW state and
                    RNG every ``checkpoint_every`` steps and at the end (``resume`` continues
                    from the latest; :mod:`interp.train.checkpoint`)
RUN/model.safetensors, RUN/results.json, RUN/report.html

Training is :func:`interp.train.full_batch.train_full_batch`; what depends on the task is its
entry in :mod:`interp.grok.tasks`.  A resumed run ends with the same weights and metrics rows
as an uninterrupted one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

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
from interp.grok.config import GrokConfig
from interp.grok.detect import LabelRule, summarise_run, verdict
from interp.grok.measures import fourier_results, fourier_row
from interp.progress import SILENT, Callbacks, Progress
from interp.resources import MAX_STEPS, check_limit
from interp.runs import RunDir
from interp.seed import seed_everything, torch_threads
from interp.train.checkpoint import (
    latest_checkpoint,
    restore_checkpoint,
    save_checkpoint,
    weights_bytes,
)
from interp.train.full_batch import FullBatchData, train_full_batch
from interp.train.optim import build_optimizer


def build_data(cfg: GrokConfig) -> FullBatchData:
    """Every example of the task once, with the fixed train mask."""
    return cfg.spec.build_data(cfg)


def build_model(cfg: GrokConfig) -> nn.Module:
    return cfg.spec.build_model(cfg)


@dataclass(frozen=True)
class GrokRun(ExperimentConfig):
    """``interp grok``: the run's :class:`GrokConfig` (config.json's ``grok``)."""

    grok: GrokConfig = field(default_factory=GrokConfig)

    def validate(self) -> None:
        self.grok.validate()

    def resolved(self) -> GrokRun:
        return self.replace(grok=self.grok.resolved())

    @property
    def seed(self) -> int:
        return self.grok.init_seed

    @property
    def device(self) -> str:
        return self.grok.device


_FOURIER = ("key_frequencies", "key_frequency_rule", "embed_power", "top_k_share", "circles")


@dataclass
class GrokResults(Results):
    kind: ClassVar[str] = "grok"
    schema: ClassVar[int] = 1

    memorisation_step: int | None
    grokking_step: int | None
    grok_delay: int | None
    label: str
    min_train_loss: float | None
    min_test_loss: float | None
    max_test_train_ratio: float | None
    final_train_accuracy: float | None
    final_test_accuracy: float | None
    thresholds: dict[str, float]
    n_train: int
    n_test: int
    final_weight_norm: float | None
    steps_per_second: float | None
    seconds: float | None
    # modular addition only (tasks with ``fourier``): absent from results.json otherwise
    key_frequencies: list[int] | None = None
    key_frequency_rule: str | None = None  # set where they are Nanda's (each neuron's dominant)
    embed_power: list[float] | None = None
    top_k_share: float | None = None
    circles: list[dict[str, Any]] | None = None
    headline: str = ""
    definition: str = ""  # the model's definition (interp.grok.variants): whose code it follows

    def to_dict(self) -> dict[str, Any]:
        body = super().to_dict()
        body = {k: v for k, v in body.items() if not (k in _FOURIER and v is None)}
        if not self.definition:  # an unchanged MLP definition: results.json as before
            body.pop("definition")
        return body

    def lines(self) -> list[str]:
        out = [f"model: {self.definition}"] if self.definition else []
        if self.key_frequencies is not None:
            rule = self.key_frequency_rule or "top of the embedding spectrum"
            out.append(
                f"key frequencies {self.key_frequencies} ({rule}; top-k share of embedding "
                f"power {self.top_k_share:.2f})"
            )
        if self.steps_per_second is not None:
            out.append(f"{self.steps_per_second:.0f} steps/s")
        return out


def _step(step: int | None) -> str:
    return "none" if step is None else str(step)


def grok_headline(r: Mapping[str, Any], sentence: str = "") -> str:
    """The verdict sentence (:func:`interp.grok.detect.verdict`), then the numbers."""
    train, test = r["final_train_accuracy"], r["final_test_accuracy"]
    accuracy = "n/a" if train is None or test is None else f"{train:.3f}/{test:.3f}"
    return (
        (f"{sentence[0].upper()}{sentence[1:]}. " if sentence else "")
        + f"memorisation step {_step(r['memorisation_step'])}, "
        f"grokking step {_step(r['grokking_step'])}, "
        f"label {r['label']}; final train/test accuracy {accuracy}"
    )


class _Buffered:
    """Collects metrics rows and appends them to the run in chunks (fewer fsyncs)."""

    def __init__(self, run: RunDir, every: int = 60) -> None:
        self.run, self.every, self.rows = run, every, []

    def __call__(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        if len(self.rows) >= self.every:
            self.flush()

    def flush(self) -> None:
        if self.rows:
            self.run.tree.append_jsonl("metrics.jsonl", self.rows)
            self.rows = []


def _restore(run: RunDir, model: nn.Module, optimizer: torch.optim.Optimizer) -> int:
    """Load the latest checkpoint (if any); the step to continue from.  Rows logged from that
    step on are dropped: they are logged again."""
    ckpt = latest_checkpoint(run.path)
    start = 0
    if ckpt is not None:
        restore_checkpoint(ckpt, model, optimizer)
        start = ckpt.step
    run.truncate_metrics_after(start - 1)
    return start


def train_run(cfg: GrokConfig, run: RunDir, resume: bool, progress: Progress) -> GrokResults:
    """Train ``cfg`` (resolved) into ``run``; its results."""
    assert cfg.steps is not None
    seed_everything(cfg.seed)
    data = build_data(cfg)
    model = build_model(cfg).to(cfg.device)
    optimizer = build_optimizer(model, cfg.optim)
    start = _restore(run, model, optimizer) if resume else 0
    all_pairs = cfg.pairs == "all"
    analyse = (lambda m: fourier_row(m, cfg, data, all_pairs)) if cfg.spec.fourier else None
    sink = _Buffered(run)
    ckpt_steps = sorted({*range(0, cfg.steps + 1, cfg.checkpoint_every), cfg.steps})

    def checkpoint(step: int, m: nn.Module, opt: torch.optim.Optimizer) -> None:
        sink.flush()  # the rows before this step are on disk before the checkpoint is
        save_checkpoint(run.path, step, m, opt, keep=len(ckpt_steps))

    try:
        timing = train_full_batch(
            model, data, cfg.steps, cfg.optim, log_every=cfg.log_every, on_metrics=sink,
            analyse=analyse, on_checkpoint=checkpoint, checkpoint_steps=ckpt_steps,
            progress=progress, device=cfg.device, optimizer=optimizer, start_step=start,
            loss=cfg.definition.loss,
        )  # fmt: skip
    finally:
        sink.flush()
    run.tree.write_bytes("model.safetensors", weights_bytes(model.state_dict()))
    return summarise(run.metrics(), cfg, model.cpu(), data, timing)


def summarise(
    rows: list[dict[str, Any]],
    cfg: GrokConfig,
    model: nn.Module,
    data: FullBatchData,
    timing: Mapping[str, Any],
) -> GrokResults:
    rule = LabelRule()
    train = [r for r in rows if r.get("split") == "train"]
    val = {r["step"]: r for r in rows if r.get("split") == "val"}
    steps = [r["step"] for r in train]
    train_acc = [r.get("accuracy") for r in train]
    test_acc = [val.get(s, {}).get("accuracy") for s in steps]
    test_loss = [val.get(s, {}).get("loss") for s in steps]
    summary = summarise_run(steps, [r.get("loss") for r in train], test_loss, train_acc, test_acc,
                            rule)  # fmt: skip
    results: dict[str, Any] = {
        **summary,
        "thresholds": rule.to_dict(),
        "n_train": int(data.train.sum()),
        "n_test": int((~data.train).sum()),
        "final_weight_norm": train[-1].get("weight_norm") if train else None,
        "steps_per_second": timing.get("steps_per_second"),
        "seconds": timing.get("seconds"),
    }
    if cfg.spec.fourier:
        every_pair = data if cfg.pairs == "all" else None
        results |= fourier_results(model, cfg.top_k, every_pair, cfg.p)
    sentence = verdict(steps, train_acc, test_acc, rule)
    return GrokResults(**results, headline=grok_headline(results, sentence),
                       definition=cfg.definition.label if cfg.definition.in_results else "")  # fmt: skip


@register_experiment
class Grok(Experiment[GrokRun, GrokResults]):
    kind = "grok"
    config_cls = GrokRun
    results_cls = GrokResults
    resumable = True
    writes_while_running = True
    description = "one model trained full batch: memorisation, grokking, Fourier structure"

    def check_resume(self, stored: GrokRun, asked: GrokRun) -> GrokRun:
        """The stored config, if the request resolves to it (the base check).  A run made with
        another variant (say interp's MLP, the modadd default before PAIR's) is refused in one
        line naming the ``--variant`` that continues it: the defaults that follow from the
        variant (d_embed, seed) then match too."""
        old, new = stored.grok.variant, asked.grok.resolved().variant
        if old is not None and old != new:
            default = " (the default)" if asked.grok.variant is None else ""
            raise ConfigError(
                f"--resume: the run was started with --variant {old} (its config.json) but this "
                f"asks for {new}{default}; add --variant {old} to continue it (or use a new --out)"
            )
        return super().check_resume(stored, asked.resolved())

    def estimate(self, config: GrokRun, report: bool = True) -> Estimate:

        cfg = config.grok.resolved()
        assert cfg.steps is not None
        check_limit(cfg.steps, "--steps", MAX_STEPS, "steps")
        checkpoints = cfg.steps // cfg.checkpoint_every + 2
        disk, memory = cfg.spec.estimate(cfg, checkpoints, cfg.steps // cfg.log_every + 1)
        return Estimate(memory, disk, "the run")

    def prepare(
        self, config: GrokRun, model: Any = None, progress: Progress = SILENT, run: Any = None
    ) -> Prepared[GrokRun]:
        return Prepared(config.resolved(), None)

    def run(self, prepared: Prepared[GrokRun], context: Context) -> GrokResults:
        assert context.run is not None
        with torch_threads(1):
            return train_run(prepared.config.grok, context.run, context.resume, context.progress)


def run_grok(
    out: Path,
    cfg: GrokConfig,
    overwrite: bool = False,
    on_start: Callable[[int, int], None] | None = None,
    on_step: Callable[[int], None] | None = None,
    resume: bool = False,
    report: bool = False,
) -> Any:
    """Train one grokking run into ``out`` (new, or ``resume``d from its last checkpoint):
    :func:`interp.experiments.execute` of a :class:`GrokRun`; returns its ``Outcome``."""
    from interp.experiments.execute import execute

    progress = Callbacks(on_start, on_step)
    return execute("grok", GrokRun(cfg), out, resume=resume, overwrite=overwrite,
                   report=report, progress=progress)  # fmt: skip


__all__ = [
    "Grok",
    "GrokResults",
    "GrokRun",
    "build_data",
    "build_model",
    "grok_headline",
    "run_grok",
    "summarise",
    "train_run",
]
