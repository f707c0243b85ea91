"""``precache``: vanilla and myopic twins of one training job, compared (Wu et al. 2024).

A myopic twin gets no gradient into earlier positions; if it is clearly worse than its vanilla
twin, the vanilla model was computing features for later tokens (*pre-caching*), otherwise
what it passes forward is mostly computed for the current token anyway (*breadcrumbs*).  The
comparison is :func:`interp.analysis.precache_twins.run_precache`; this file is the experiment around
it: the config, its checks, the work estimate and the typed results.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from interp.analysis import precache_twins as _twins
from interp.analysis.myopia import MyopiaConfig
from interp.config import DataConfig, ModelConfig, OptimConfig, TrainConfig, TrainJob
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
from interp.models import check_model_config
from interp.resources import MAX_MODELS, MAX_SAMPLES, MAX_STEPS, check_limit, train_job_estimate
from interp.seed import small_model_threads, torch_threads
from interp.tasks import build_task
from interp.tasks.defaults import command_task_options


@dataclass(frozen=True)
class PrecacheConfig(ExperimentConfig):
    """The twins' training job (``model``, ``train``, ``data``) and what is compared."""

    model: ModelConfig
    train: TrainConfig
    data: DataConfig
    myopia: MyopiaConfig = field(default_factory=MyopiaConfig)

    @classmethod
    def default(cls) -> PrecacheConfig:
        """``interp precache`` with no option: twins on the pre-caching task."""
        return precache_config()

    @property
    def job(self) -> TrainJob:
        return TrainJob(self.model, self.train, self.data)

    def validate(self) -> None:

        for part in (self.data, self.model):  # the twins' job first, as the CLI builds it
            part.validate()
        check_model_config(self.model)
        self.train.validate()
        self.myopia.validate()
        data, seeds = self.data, len(self.myopia.seeds)
        if data.source == "task":
            build_task(data.task or "", data.task_options)  # unknown task or bad options
        check_limit(2 * seeds, f"--seeds {seeds}: the comparison of", MAX_MODELS, "models")
        check_limit(self.train.steps, "--steps", MAX_STEPS, "steps per twin")
        check_limit(self.myopia.token_probe_tokens, "--probe-tokens", MAX_SAMPLES, "tokens")
        layer, horizons = self.myopia.probe_layer, self.myopia.token_horizons
        if layer > self.model.n_layers:
            raise ConfigError(f"--probe-layer {layer} exceeds --layers {self.model.n_layers}")
        if data.source == "corpus" and horizons > self.model.n_ctx - 1:
            raise ConfigError(f"--probe-horizons {horizons} needs --ctx above {horizons}")


def precache_config(
    *,
    task: str | None = None,
    task_options: dict[str, Any] | None = None,
    corpus: str | None = None,
    layers: int = 2,
    d_model: int = 64,
    heads: int = 2,
    d_mlp: int = 256,
    ctx: int = 64,
    pe: str = "rope",
    steps: int = 1000,
    batch_size: int = 32,
    lr: float = 3e-3,
    warmup: int = 100,
    eval_every: int = 250,
    seeds: tuple[int, ...] = (0, 1),
    probe_layer: int = 1,
    tokenizer: str = "bpe",
    probe_horizons: int = 3,
    probe_tokens: int = 4000,
    val_fraction: float = 0.1,
    bpe_vocab: int = 1024,
    max_chars: int = 1_000_000,
    device: str = "cpu",
) -> PrecacheConfig:
    """The experiment's config from ``interp precache``'s options (the defaults are the
    command's: ``tests/test_api.py`` checks they agree); raises ConfigError on bad input (the
    config's own checks run in ``execute``).  A task's options are
    :func:`interp.tasks.defaults.command_task_options` under the ``task_options`` given."""
    task_options = dict(task_options or {})
    if corpus is not None and task is not None:
        raise ConfigError("give either --task or --corpus, not both")
    if corpus is None and task is None:
        task = "precache"
    if task is None and task_options:
        raise ConfigError("--task-option needs --task")
    if task is not None:
        task_options = command_task_options("precache", task, task_options)
    data = DataConfig(
        source="task" if task else "corpus",
        corpus=corpus or "builtin",
        task=task,
        task_options=task_options,
        tokenizer=tokenizer,
        bpe_vocab_size=bpe_vocab,
        max_chars=max_chars,
        val_fraction=val_fraction,
    )
    model = ModelConfig(
        n_layers=layers, d_model=d_model, n_heads=heads, d_mlp=d_mlp, n_ctx=ctx, positional=pe
    )
    train = TrainConfig(
        steps=steps,
        batch_size=batch_size,
        eval_every=eval_every,
        checkpoint_every=max(eval_every, steps // 4),
        device=device,
        optim=OptimConfig(lr=lr, warmup_steps=warmup, weight_decay=0.0),
    )
    myopia = MyopiaConfig(
        seeds=tuple(seeds),
        probe_layer=probe_layer,
        token_horizons=probe_horizons,
        token_probe_tokens=probe_tokens,
    )
    return PrecacheConfig(model, train, data, myopia)


@dataclass
class PrecacheResults(Results):
    kind: ClassVar[str] = "precache"
    schema: ClassVar[int] = 2  # 2: a vanilla twin that did not learn makes it inconclusive

    source: str
    per_seed: list[dict[str, Any]]
    summary: dict[str, Any]
    positions: dict[str, Any]
    probe: dict[str, Any] | None = None
    token_probe: dict[str, Any] | None = None
    verdict: dict[str, Any] = field(default_factory=dict)  # label, evidence, rel_threshold
    headline: str = ""

    def lines(self) -> list[str]:
        return [f"verdict: {self.verdict['label']}"] + [
            f"  - {line}" for line in self.verdict["evidence"]
        ]


def precache_headline(results: dict[str, Any]) -> str:
    """The verdict in a sentence with its number (the label is already guarded: pre-caching
    needs a gap above the threshold, positive over seeds, and the probe not against it)."""
    s, label = results["summary"], results["verdict"]["label"]
    ci = s.get("gap_ci")
    spread = f", 95% CI [{ci[0]:+.4f}, {ci[1]:+.4f}]" if ci else ", one seed (no interval)"
    # inconclusive: say why and what to try (the verdict's last sentence of evidence)
    why = f": {results['verdict']['evidence'][-1]}" if label == "inconclusive" else ""
    return (
        f"Myopic vs vanilla: {label}{why} (myopia gap {s['gap']:+.4f}, "
        f"{100 * s['rel_gap']:+.1f}% of the vanilla loss{spread})."
    )


@register_experiment
class Precache(Experiment[PrecacheConfig, PrecacheResults]):
    kind = "precache"
    config_cls = PrecacheConfig
    results_cls = PrecacheResults
    resumable = True
    writes_while_running = True
    # under torchrun each twin trains data-parallel (its own execute("train"): rank 0 writes);
    # every rank then evaluates and probes the same twins (the token probes all-reduce), so
    # the ranks make the same collective calls in the same order
    data_parallel = True
    description = "vanilla and myopic twins: pre-caching or breadcrumbs"

    def estimate(self, config: PrecacheConfig, report: bool = True) -> Estimate:

        disk, memory = train_job_estimate(config.job)  # twins train one after another
        twins = 2 * len(config.myopia.seeds)
        return Estimate(memory, twins * disk, f"training {twins} twins")

    def run(self, prepared: Prepared[PrecacheConfig], context: Context) -> PrecacheResults:
        config, bar = prepared.config, context.progress
        assert context.run is not None
        bar.start(config.train.steps * len(config.myopia.seeds) * 2, 0, "twins")
        done = [0]

        def tick(step: int) -> None:
            done[0] += 1
            bar.advance(done[0])

        with torch_threads(small_model_threads(config.job.model.d_model)):  # one for small twins
            results = _twins.run_precache(
                context.run.path, config.job, config.myopia, progress=bar.note, on_step=tick
            )
        return results_of(results)


def results_of(results: dict[str, Any]) -> PrecacheResults:
    """Typed results from :func:`interp.analysis.precache_twins.run_precache`'s dict."""
    body = {k: v for k, v in results.items() if k != "kind"}
    return PrecacheResults(**body, headline=precache_headline(results))


__all__ = [
    "Precache",
    "PrecacheConfig",
    "PrecacheResults",
    "precache_headline",
    "results_of",
]
