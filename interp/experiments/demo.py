"""``demo``: the tour.  The default model (trained once, cached) and one small, honest example of
every finding the tool is for, written into one run with one report.

RUN/config.json      {"kind": "demo", "schema", <DemoConfig>}: every part's own config
RUN/<part>/          a sub-run of an existing experiment, made by :func:`execute` (probe,
                     collapse, squash, precache, count-construct, pe-bench, grok); a part whose
                     ``results.json`` is there is done and is skipped when the tour runs again
RUN/timings.json     seconds each part took when it ran (kept for the report when reused)
RUN/results.json     every part's headline; RUN/report.html: the findings first, each linked
                     to its section

Like ``reproduce``, the tour is made of other experiments: each part is an ``execute()`` call
into a sub-run (resumed when it is a resumable one, redone when an analysis stopped before its
results), so a tour stopped at any moment continues where it was.  The settings are small on
purpose (each part takes seconds to a minute on 2 CPU cores, measured: ``interp demo`` prints
the table), and each part's sentence claims only what its own guard allows.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from interp.analysis.collapse import CollapseConfig
from interp.analysis.counting import ConstructConfig
from interp.analysis.myopia import MyopiaConfig
from interp.analysis.pe_bench import PEBenchConfig
from interp.analysis.sensitivity import SquashConfig
from interp.config import DataConfig, ModelConfig, OptimConfig, TrainConfig
from interp.errors import ConfigError
from interp.experiments.base import (
    Context,
    Experiment,
    ExperimentConfig,
    Prepared,
    Results,
    register_experiment,
)
from interp.experiments.collapse import CollapseRun
from interp.experiments.grok import GrokRun
from interp.experiments.precache import PrecacheConfig
from interp.experiments.squash import SquashRun
from interp.grok.config import GrokConfig
from interp.io import read_json
from interp.progress import Progress
from interp.report.tables import Table
from interp.runs import RESUMABLE, RunDir
from probes.run import ProbeConfig

# ----------------------------------------------------------------------------- the settings
# Small and honest: each chosen by timing it on 2 shared CPU cores (see bench/RESULTS.md).
TOUR_PROBE = ProbeConfig(horizon=3, tokens=20_000, n_boot=200, test_positions=2048)
# BOS + n ones to 4,096 tokens: the default model's RoPE positions run past its 128 (as
# ``interp collapse`` does on it: interp.experiments.collapse.DEFAULT_CONTEXT)
TOUR_COLLAPSE = CollapseConfig(
    prompt="", formats=("float32", "bfloat16", "float8_e4m3fn"), separator=",", every=3,
    context=4096,
)  # fmt: skip
TOUR_SQUASH = SquashConfig(length=32)
TOUR_PRECACHE = PrecacheConfig(
    model=ModelConfig(n_layers=2, d_model=64, n_heads=2, d_mlp=256),
    train=TrainConfig(
        steps=300, batch_size=32, eval_every=100, eval_batches=2, checkpoint_every=300,
        optim=OptimConfig(lr=3e-3, warmup_steps=30, weight_decay=0.0),
    ),
    data=DataConfig(
        source="task", task="precache",
        task_options={"length": 24, "frequency": 3.0, "window": 10, "p": 1.0},
    ),
    myopia=MyopiaConfig(seeds=(0,), probe_layer=1),
)  # fmt: skip
TOUR_COUNTING = ConstructConfig(d_values=(4, 8), m_values=(2, 4, 8, 16), samples=200)
TOUR_COPE = PEBenchConfig(
    task="count-vars", task_options={"n_vars": 1, "max_steps": 8}, encodings=("absolute", "cope"),
    seeds=(0,), steps=150, batch_size=32, n_layers=2, d_model=32, n_heads=2, d_mlp=64,
    eval_sequences=96, n_maps=1, lr=3e-3,
)  # fmt: skip
# interp's CPU MLP, as the tour has always run it (explicit: grok's modadd default became PAIR's
# variant with d_embed 500 and seed 165, which needs ~50,000 steps)
TOUR_GROK = GrokConfig(task="modadd", variant="interp", p=67, d_embed=32, steps=8000, lr=3e-3,
                       log_every=250, seed=0)  # fmt: skip


@dataclass(frozen=True)
class Part:
    """One step of the tour: the experiment it runs and how its config is made."""

    kind: str
    title: str
    config: Callable[[DemoConfig, str], Any]  # (tour config, model spec) -> experiment config
    on_model: bool = False  # analyses the tour's model


PARTS: dict[str, Part] = {
    "probe": Part(
        "probe", "future-token probes, horizons 1-3",
        lambda c, m: c.probe.replace(model=m, device=c.device), on_model=True,
    ),
    "collapse": Part(
        "collapse", "representational collapse in fp32 / bf16 / fp8, with separators",
        lambda c, m: CollapseRun(model=m, device=c.device, collapse=c.collapse), on_model=True,
    ),
    "squash": Part(
        "squash", "over-squashing: sensitivity of the last token to each position",
        lambda c, m: SquashRun(model=m, device=c.device, squash=c.squash), on_model=True,
    ),
    "precache": Part(
        "precache", "myopic vs vanilla twins on the pre-caching task", lambda c, m: c.precache
    ),
    "counting": Part(
        "count-construct", "counting: the histogram construction", lambda c, m: c.counting
    ),
    "cope": Part("pe-bench", "CoPE vs absolute positions on counting", lambda c, m: c.cope),
    "grok": Part(
        "grok", "grokking: modular addition, memorise then generalise",
        lambda c, m: GrokRun(grok=c.grok.replace(device=c.device)),
    ),
}  # fmt: skip
PART_NAMES = tuple(PARTS)


@dataclass(frozen=True)
class DemoConfig(ExperimentConfig):
    """The tour: its model and each part's own config (``config.json`` stores them all)."""

    model: str | None = None  # a model run to tour; None: the cached default model
    model_steps: int | None = None  # the default model's training steps (None: its own)
    model_seed: int = 0  # the default model's seed (not 0: another cache entry)
    device: str = "cpu"
    parts: tuple[str, ...] = PART_NAMES
    probe: ProbeConfig = TOUR_PROBE
    collapse: CollapseConfig = TOUR_COLLAPSE
    squash: SquashConfig = TOUR_SQUASH
    precache: PrecacheConfig = TOUR_PRECACHE
    counting: ConstructConfig = TOUR_COUNTING
    cope: PEBenchConfig = TOUR_COPE
    grok: GrokConfig = TOUR_GROK

    def __post_init__(self) -> None:  # as JSON spells a tuple (no checks here: see validate)
        if isinstance(self.parts, list):
            object.__setattr__(self, "parts", tuple(self.parts))

    def validate(self) -> None:
        unknown = [p for p in self.parts if p not in PARTS]
        if unknown or not self.parts:
            raise ConfigError(
                f"unknown tour part {unknown[0]!r}; choose from {', '.join(PARTS)}"
                if unknown
                else "the tour has no part"
            )
        if len(set(self.parts)) != len(self.parts):
            raise ConfigError("a tour part is named twice")
        if (self.model_steps is not None or self.model_seed) and self.model is not None:
            raise ConfigError(
                "--steps and --seed are for the default model; a given model is as it is"
            )
        if self.model_steps is not None:
            from interp.resources import MAX_STEPS, check_limit

            check_limit(self.model_steps, "--steps", MAX_STEPS, "steps")
        from interp.experiments.registry import get_experiment

        for name in self.parts:  # each part's own checks, before anything runs
            part = PARTS[name]
            get_experiment(part.kind).validate(part.config(self, self.model or ""))


@dataclass
class DemoResults(Results):
    kind: ClassVar[str] = "demo"
    schema: ClassVar[int] = 1

    model: str  # the run directory of the model the analyses studied
    model_reused: bool
    model_summary: str  # its last validation loss
    steps: list[dict[str, Any]]  # name, kind, title, run, headline, seconds, reused
    seconds: float
    model_timing: dict[str, float] | None = None  # when the tour trained it
    headline: str = ""

    def tables(self) -> list[Table]:
        def sec(v: float | None) -> str:
            return "—" if v is None else f"{v:.1f}"

        rows = [
            (s["name"], s["kind"], "reused" if s["reused"] else "ran", sec(s["seconds"]),
             sec(s.get("cpu_seconds")))
            for s in self.steps
        ]  # fmt: skip
        if self.model_timing:
            rows.insert(0, ("model", "train", "reused" if self.model_reused else "ran",
                            sec(self.model_timing.get("seconds")),
                            sec(self.model_timing.get("cpu_seconds"))))  # fmt: skip
        columns = ("step", "experiment", "", "wall s", "CPU s")
        return [Table("the tour: each step (when it ran)", columns, rows)]

    def lines(self) -> list[str]:
        out = []
        if self.model_reused:
            out.append(f"reusing the cached default model in {self.model}")
        if self.model_summary:
            out.append(f"model: {self.model_summary}")
        out += [f"{s['name']}: {s['headline']}" for s in self.steps if s["headline"]]
        return out


def tour_headline(steps: list[Mapping[str, Any]], seconds: float) -> str:
    ran = [s for s in steps if not s["reused"]]
    return (
        f"The tour: {len(steps)} findings, one sentence each below and on the report's first "
        f"screen ({len(ran)} step(s) run now in {seconds:.0f} s, {len(steps) - len(ran)} reused)."
    )


class _Step:
    """The tour's progress for one part: its bar and notes name the part."""

    def __init__(self, progress: Progress, name: str) -> None:
        self.progress, self.name = progress, name

    def start(self, total: int, done: int = 0, label: str | None = None) -> None:
        self.progress.start(total, done, f"{self.name}: {label}" if label else self.name)

    def advance(self, done: int, **info: Any) -> None:
        self.progress.advance(done, **info)

    def note(self, text: str) -> None:
        self.progress.note(f"[{self.name}] {text}")


TIMINGS = "timings.json"


@register_experiment
class Demo(Experiment[DemoConfig, DemoResults]):
    kind = "demo"
    config_cls = DemoConfig
    results_cls = DemoResults
    resumable = True
    writes_while_running = True
    description = "the tour: the default model and one small example of every finding"

    @property
    def remedy(self) -> str:
        return RESUMABLE

    # prepare: the default (each part checks its own resources when it starts)

    def run(self, prepared: Prepared[DemoConfig], context: Context) -> DemoResults:
        from interp.experiments.execute import execute
        from interp.experiments.registry import get_experiment

        config, progress, run = prepared.config, context.progress, context.run
        assert run is not None
        t_start = time.perf_counter()
        n = len(config.parts) + 1
        timings = _read_timings(run)
        t0, c0 = time.perf_counter(), time.process_time()
        model_path, reused_model = self._model(config, _Step(progress, f"1/{n} model"))
        if not reused_model:
            timings["model"] = _took(t0, c0)
            run.tree.write_json(TIMINGS, timings)
        steps: list[dict[str, Any]] = []
        for i, name in enumerate(config.parts, start=2):
            part = PARTS[name]
            out = run.path / name
            step = _Step(progress, f"{i}/{n} {name}")
            done = (out / "results.json").is_file()
            if done:
                step.note(f"done earlier: {out}")
                results = read_json(out / "results.json", what=f"{name} results")
            else:
                step.note(part.title)
                t0, c0 = time.perf_counter(), time.process_time()
                exists = out.exists() and not RunDir.is_blank(out)
                resumable = get_experiment(part.kind).resumable
                outcome = execute(
                    part.kind, part.config(config, str(model_path)), out,
                    resume=exists and resumable, overwrite=exists and not resumable,
                    report=False, progress=step,
                )  # fmt: skip
                results = outcome.results.to_dict()
                timings[name] = _took(t0, c0)
                run.tree.write_json(TIMINGS, timings)
            steps.append(
                {
                    "name": name,
                    "kind": part.kind,
                    "title": part.title,
                    "run": name,
                    "headline": str(results.get("headline") or ""),
                    "seconds": timings.get(name, {}).get("seconds"),
                    "cpu_seconds": timings.get(name, {}).get("cpu_seconds"),
                    "reused": done,
                }
            )
        if config.model is None:  # the cached model's own report gains the analyses' sections
            from interp.report import build_report

            build_report(model_path)
        seconds = time.perf_counter() - t_start
        return DemoResults(
            str(model_path), reused_model, _model_summary(model_path), steps, round(seconds, 2),
            timings.get("model"), tour_headline(steps, seconds),
        )  # fmt: skip

    def _model(self, config: DemoConfig, progress: Progress) -> tuple[Path, bool]:
        """The model the analyses study: the given run, or the cached default model (trained
        now when it is not in the cache yet)."""
        if config.model is not None:
            return Path(config.model), True
        from interp.demo import ensure_demo_model

        run, reused = ensure_demo_model(
            steps=config.model_steps,
            device=config.device,
            seed=config.model_seed,
            on_start=lambda start, total: progress.start(total, start, "training"),
            on_step=lambda done: progress.advance(done),
            on_wait=progress.note,
            on_note=progress.note,
        )
        return run.path, reused


def _model_summary(path: Path) -> str:
    from interp.io import read_jsonl

    val = [r for r in read_jsonl(path / "metrics.jsonl") if isinstance(r, dict)]
    val = [r for r in val if r.get("split") == "val" and isinstance(r.get("loss"), float)]
    if not val:
        return ""
    return f"validation loss {val[-1]['loss']:.4f} at step {val[-1].get('step')} ({path})"


def _took(t0: float, c0: float) -> dict[str, float]:
    """Wall and CPU seconds since ``t0``/``c0`` (CPU over all threads: on a loaded machine the
    wall time says the load, the CPU time what the step costs)."""
    return {
        "seconds": round(time.perf_counter() - t0, 2),
        "cpu_seconds": round(time.process_time() - c0, 2),
    }


def _read_timings(run: RunDir) -> dict[str, dict[str, float]]:
    path = run.path / TIMINGS
    data = read_json(path, what="tour timings") if path.is_file() else {}
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.items() if isinstance(v, dict)}


TOUR = DemoConfig()  # what ``interp demo`` runs (tests swap in a tiny tour)

__all__ = ["PARTS", "Demo", "DemoConfig", "DemoResults", "tour_headline"]
