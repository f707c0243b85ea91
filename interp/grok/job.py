"""``interp grok`` and ``interp grok sweep`` end to end: config -> run directory -> results.

RUN/config.json     {"kind": "grok", "seed", "grok": GrokConfig}  (or kind "grok-sweep")
RUN/metrics.jsonl   train / val / fourier rows at every logged step
RUN/checkpoints/step_XXXXXXX/{model,optim}.safetensors + state.json  weights, AdamW state and
                    RNG every ``checkpoint_every`` steps and at the end (``--resume`` continues
                    from the latest; :mod:`interp.train.checkpoint`)
SWEEP/cells/group_XXX.json   one finished batched group of a sweep (``--resume`` skips it)
RUN/model.safetensors, RUN/results.json, RUN/report.html
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from interp.analysis.fourier import frequency_power, key_frequencies, project_on_frequency
from interp.config import _Config, check_optimizer
from interp.errors import ConfigError, InterpError
from interp.grok.detect import LABELS, LabelRule, summarise_run
from interp.grok.models import FixedFourierMLP, NandaTransformer, PairMLP, ParityMLP
from interp.grok.progress import restricted_excluded_loss
from interp.io import atomic_write_json, dumps_json
from interp.progress import Callbacks
from interp.runs import ListOf, Num, OneOf, RunDir, ShapeError, read_cell
from interp.seed import seed_everything, torch_threads
from interp.tasks import build_task
from interp.train.checkpoint import (
    latest_checkpoint,
    restore_checkpoint,
    save_checkpoint,
    save_weights,
)
from interp.train.full_batch import FullBatchData, train_full_batch, train_full_batch_many
from interp.train.optim import Optim, build_optimizer

MODELS = ("mlp", "fixed", "transformer")
TASKS = ("modadd", "sparse-parity")


def _check(cond: bool, message: str) -> None:
    if not cond:
        raise ConfigError(message)


@dataclass(frozen=True)
class GrokConfig(_Config):
    """One grokking run.  ``None`` fields take the model's paper default (see ``resolved``)."""

    task: str = "modadd"
    model: str = "mlp"
    p: int = 67
    pairs: str | None = None  # ordered (a <= b, PAIR) for MLPs, all (Nanda) for the transformer
    train_fraction: float | None = None  # 0.4 (PAIR) for MLPs, 0.3 (Nanda) for the transformer
    n_bits: int = 30
    k: int = 3
    n_train: int = 1200
    n_test: int = 2000
    width: int | None = None  # 24 (PAIR mod-add), 5 (fixed), 256 (parity)
    d_embed: int = 32
    frequency: int = 1  # the fixed model's embedding frequency
    d_model: int = 128
    weight_decay: float | None = None  # 1.0 (mod-add), 0.3 (parity)
    lr: float | None = None  # 1e-3 (mod-add, the papers'), 1e-2 (parity)
    beta1: float = 0.9
    beta2: float = 0.98
    steps: int | None = None  # 50,000 (mod-add), 4,000 (parity)
    log_every: int = 100
    checkpoint_every: int = 10_000
    top_k: int = 5  # frequencies counted in the "top-k share"
    seed: int = 0
    data_seed: int | None = None  # which examples are training examples (default: seed)
    device: str = "cpu"

    def __post_init__(self) -> None:
        _check(self.task in TASKS, f"unknown grok task {self.task!r}; choose {', '.join(TASKS)}")
        _check(
            self.model in MODELS, f"unknown grok model {self.model!r}; choose {', '.join(MODELS)}"
        )
        _check(
            self.task == "modadd" or self.model == "mlp",
            f"--model {self.model} is for modadd; sparse-parity uses the mlp",
        )
        parity = self.task == "sparse-parity"  # the defaults of ``resolved``
        check_optimizer(
            self.lr if self.lr is not None else (1e-2 if parity else 1e-3),
            self.weight_decay if self.weight_decay is not None else (0.3 if parity else 1.0),
            self.beta1,
            self.beta2,
        )
        _check(
            self.steps is None or (isinstance(self.steps, int) and self.steps >= 1),
            f"steps must be >= 1, got {self.steps!r}",
        )
        for name in ("log_every", "checkpoint_every", "d_embed", "d_model", "top_k"):
            value = getattr(self, name)
            _check(isinstance(value, int) and value >= 1, f"{name} must be >= 1, got {value!r}")
        _check(self.width is None or self.width >= 1, f"width must be >= 1, got {self.width}")
        _check(self.seed >= 0, f"seed must be >= 0, got {self.seed}")
        self.task_object()  # p < 2, a train fraction outside (0, 1), k > n_bits: ConfigError

    def resolved(self) -> GrokConfig:
        """The config with every ``None`` default filled in (what config.json records).

        Sparse parity defaults to width 256, lr 1e-2, wd 0.3, 4,000 steps: it memorises the
        1,200 training sequences by step ~300 and reaches 100% test accuracy around step
        1,500-2,500 (see :mod:`interp.tasks.sparse_parity`); lr 1e-3 / width 128 never left
        chance within 8,000 steps."""
        transformer = self.model == "transformer"
        parity = self.task == "sparse-parity"
        default = 256 if parity else {"fixed": 5, "transformer": 512}.get(self.model, 24)
        width = self.width if self.width is not None else default

        def pick(value: Any, parity_default: Any, modadd_default: Any) -> Any:
            if value is not None:
                return value
            return parity_default if parity else modadd_default

        return self.replace(
            weight_decay=pick(self.weight_decay, 0.3, 1.0),
            lr=pick(self.lr, 1e-2, 1e-3),
            steps=pick(self.steps, 4_000, 50_000),
            pairs=self.pairs or ("all" if transformer else "ordered"),
            train_fraction=(
                self.train_fraction
                if self.train_fraction is not None
                else (0.3 if transformer else 0.4)
            ),
            width=width,
        )

    def task_object(self) -> Any:
        if self.task == "modadd":
            c = self.resolved() if self.pairs is None or self.train_fraction is None else self
            return build_task(
                "modadd",
                {
                    "p": c.p,
                    "pairs": c.pairs,
                    "train_fraction": c.train_fraction,
                    "split_seed": c.split_seed,
                },
            )
        return build_task(
            "sparse-parity",
            {
                "n_bits": self.n_bits,
                "k": self.k,
                "n_train": self.n_train,
                "n_test": self.n_test,
                "split_seed": self.split_seed,
            },
        )

    @property
    def split_seed(self) -> int:
        return self.seed if self.data_seed is None else self.data_seed

    @property
    def optim(self) -> Optim:
        c = self.resolved()
        assert c.lr is not None and c.weight_decay is not None
        return Optim(c.lr, c.weight_decay, c.beta1, c.beta2)


def build_data(cfg: GrokConfig) -> FullBatchData:
    """Every example of the task once, with the fixed train mask."""
    task = cfg.task_object()
    if cfg.task == "sparse-parity":
        x_train, y_train, x_test, y_test = task.dataset()
        train = torch.cat([torch.ones(len(y_train)), torch.zeros(len(y_test))]).bool()
        return FullBatchData(torch.cat([x_train, x_test]), torch.cat([y_train, y_test]), train)
    data = task.dataset()
    x = task.sequences(data) if cfg.model == "transformer" else torch.stack([data.a, data.b], 1)
    return FullBatchData(x, data.label, data.train)


def build_model(cfg: GrokConfig) -> nn.Module:
    cfg = cfg.resolved()
    assert cfg.width is not None
    if cfg.task == "sparse-parity":
        return ParityMLP(cfg.n_bits, cfg.width, seed=cfg.seed)
    if cfg.model == "fixed":
        return FixedFourierMLP(cfg.p, width=cfg.width, frequency=cfg.frequency, seed=cfg.seed)
    if cfg.model == "transformer":
        return NandaTransformer(cfg.p, d_model=cfg.d_model, d_mlp=cfg.width, seed=cfg.seed)
    return PairMLP(cfg.p, cfg.width, cfg.d_embed, seed=cfg.seed)


def fourier_row(
    model: nn.Module, cfg: GrokConfig, data: FullBatchData, all_pairs: bool
) -> dict[str, Any]:
    """Embedding and neuron spectra, key frequencies, top-k share (and Nanda's losses)."""
    spec = frequency_power(model.embedding)
    neurons = frequency_power(model.neuron_weights())
    keys = key_frequencies(spec, cfg.top_k)
    row: dict[str, Any] = {
        "embed_power": spec.power,
        "neuron_power": neurons.power,
        "key_frequencies": keys,
        "top_k_share": spec.top_share(cfg.top_k),
        "neuron_top_k_share": neurons.top_share(cfg.top_k),
    }
    if cfg.model == "transformer" and all_pairs:
        with torch.no_grad():
            logits = model(data.x.to(cfg.device))
        row |= restricted_excluded_loss(logits, data.y, data.train, cfg.p, keys)
    return row


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
            from interp.io import append_jsonl

            append_jsonl(self.run.metrics_path, self.rows)
            self.rows = []


def run_grok(
    out: Path,
    cfg: GrokConfig,
    overwrite: bool = False,
    on_start: Callable[[int, int], None] | None = None,
    on_step: Callable[[int], None] | None = None,
    threads: int | None = 1,
    resume: bool = False,
) -> tuple[RunDir, dict[str, Any]]:
    """Train one grokking run into ``out`` (new, or ``resume``d from its last checkpoint);
    returns the run and its results.  A resumed run ends with the same weights and metrics
    rows as an uninterrupted one (the checkpoint holds the AdamW state and the RNG)."""
    with torch_threads(threads):
        return _run_grok(out, cfg, overwrite, on_start, on_step, resume)


def _open_for_resume(out: Path, kind: str, key: str, asked: Mapping[str, Any]) -> RunDir:
    """The run in ``out`` if it is a ``kind`` run started with the same ``config[key]``."""
    run = RunDir.open(out)
    config = run.config()
    if config.get("kind") != kind:
        raise InterpError(f"--resume: {out} is a {config.get('kind')!r} run, not {kind!r}")
    stored = config.get(key, {})
    for name in sorted(set(stored) | set(asked)):
        if stored.get(name) != asked.get(name):
            raise InterpError(
                f"--resume: {name} is {asked.get(name)!r} but the run was started with "
                f"{stored.get(name)!r}; use the same options (or a new --out)"
            )
    return run


def _run_grok(
    out: Path,
    cfg: GrokConfig,
    overwrite: bool,
    on_start: Callable[[int, int], None] | None,
    on_step: Callable[[int], None] | None,
    resume: bool,
) -> tuple[RunDir, dict[str, Any]]:
    cfg = cfg.resolved()
    assert cfg.steps is not None
    resume = resume and not RunDir.nothing_to_resume(out)  # nothing there yet: a new run
    if resume:
        run = _open_for_resume(out, "grok", "grok", json_roundtrip(cfg.to_dict()))
    else:
        RunDir.check_creatable(out, overwrite)  # config already validated; nothing written yet
        run = RunDir.create(
            out, {"kind": "grok", "seed": cfg.seed, "grok": cfg.to_dict()}, overwrite
        )
    run.write_env(cfg.seed, cfg.device)
    seed_everything(cfg.seed)
    data = build_data(cfg)
    model = build_model(cfg).to(cfg.device)
    optimizer = build_optimizer(model, cfg.optim)
    ckpt = latest_checkpoint(run.path) if resume else None
    start = 0
    if ckpt is not None:
        restore_checkpoint(ckpt, model, optimizer)
        start = ckpt.step
    if resume:  # rows from ``start`` on are logged again
        run.truncate_metrics_after(start - 1)
    modadd = cfg.task == "modadd"
    analyse = (lambda m: fourier_row(m, cfg, data, cfg.pairs == "all")) if modadd else None
    sink = _Buffered(run)
    ckpt_steps = sorted({*range(0, cfg.steps + 1, cfg.checkpoint_every), cfg.steps})

    def checkpoint(step: int, m: nn.Module, opt: torch.optim.Optimizer) -> None:
        sink.flush()  # the rows before this step are on disk before the checkpoint is
        save_checkpoint(run.path, step, m, opt, keep=len(ckpt_steps))

    try:
        timing = train_full_batch(
            model,
            data,
            cfg.steps,
            cfg.optim,
            log_every=cfg.log_every,
            on_metrics=sink,
            analyse=analyse,
            on_checkpoint=checkpoint,
            checkpoint_steps=ckpt_steps,
            progress=Callbacks(on_start, on_step),
            device=cfg.device,
            optimizer=optimizer,
            start_step=start,
        )
    finally:
        sink.flush()
    save_weights(run.weights_path, model.state_dict())
    results = summarise(run, cfg, model.cpu(), data, timing)
    atomic_write_json(run.path / "results.json", results)
    return run, results


def json_roundtrip(obj: Any) -> Any:
    """``obj`` as it reads back from JSON (tuples become lists), for comparing with a config."""
    return json.loads(dumps_json(obj))


def summarise(
    run: RunDir, cfg: GrokConfig, model: nn.Module, data: FullBatchData, timing: Mapping[str, Any]
) -> dict[str, Any]:
    rule = LabelRule()
    rows = run.metrics()
    train = [r for r in rows if r.get("split") == "train"]
    val = {r["step"]: r for r in rows if r.get("split") == "val"}
    steps = [r["step"] for r in train]
    summary = summarise_run(
        steps,
        [r.get("loss") for r in train],
        [val.get(s, {}).get("loss") for s in steps],
        [r.get("accuracy") for r in train],
        [val.get(s, {}).get("accuracy") for s in steps],
        rule,
    )
    results: dict[str, Any] = {
        **summary,
        "thresholds": rule.to_dict(),
        "n_train": int(data.train.sum()),
        "n_test": int((~data.train).sum()),
        "final_weight_norm": train[-1].get("weight_norm") if train else None,
        "steps_per_second": timing.get("steps_per_second"),
        "seconds": timing.get("seconds"),
    }
    if cfg.task == "modadd":
        spec = frequency_power(model.embedding)
        top = spec.top(cfg.top_k)
        results["key_frequencies"] = sorted(top)
        results["embed_power"] = spec.power
        results["top_k_share"] = spec.top_share(cfg.top_k)
        results["circles"] = [
            {"frequency": f, "xy": project_on_frequency(model.embedding, f).tolist()}
            for f in top[:2]
        ]
    return results


# --------------------------------------------------------------------------- sweeps


@dataclass(frozen=True)
class SweepConfig(_Config):
    """A grid of small MLP runs trained many at a time (PAIR's phase diagrams).

    ``None`` fields take the task's defaults on construction (so config.json records them):
    modular addition the PAIR MLP recipe (width 24, lr 1e-3, wd 0 / 0.3 / 1, 20,000 steps),
    sparse parity the recipe that groks on CPU (width 256, lr 1e-2, wd 0 / 0.1 / 0.3, 4,000
    steps; see :meth:`GrokConfig.resolved`)."""

    task: str = "modadd"
    p: int = 67
    n_bits: int = 30
    k: int = 3
    n_test: int = 2000
    weight_decays: tuple[float, ...] | None = None
    train_fractions: tuple[float, ...] = (0.3, 0.4, 0.6)  # modadd
    train_sizes: tuple[int, ...] = (600, 1200)  # sparse-parity
    widths: tuple[int, ...] | None = None
    seeds: tuple[int, ...] = (0, 1, 2, 3)
    d_embed: int = 32
    lr: float | None = None
    steps: int | None = None
    log_every: int | None = None
    checkpoint_every: int = 1_000  # batched state saved for --resume
    device: str = "cpu"
    rule: LabelRule = field(default_factory=LabelRule)

    def __post_init__(self) -> None:
        parity = self.task == "sparse-parity"
        defaults = {
            "weight_decays": (0.0, 0.1, 0.3) if parity else (0.0, 0.3, 1.0),
            "widths": (256,) if parity else (24,),
            "lr": 1e-2 if parity else 1e-3,
            "steps": 4_000 if parity else 20_000,
            "log_every": 100 if parity else 500,
        }
        for name, value in defaults.items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, value)
        _check(self.task in TASKS, f"unknown grok task {self.task!r}; choose {', '.join(TASKS)}")
        for name in ("weight_decays", "train_fractions", "train_sizes", "widths", "seeds"):
            value = tuple(getattr(self, name))
            object.__setattr__(self, name, value)
            _check(len(value) > 0, f"the sweep needs at least one value of {name}")
        for wd in self.weight_decays:
            check_optimizer(self.lr, wd, 0.9, 0.98)  # the sweep's AdamW (train.optim.Optim)
        _check(all(w >= 1 for w in self.widths), "widths must be >= 1")
        _check(self.steps >= 1 and self.log_every >= 1, "steps and log_every must be >= 1")
        _check(self.checkpoint_every >= 1, "checkpoint_every must be >= 1")
        if isinstance(self.rule, Mapping):
            object.__setattr__(self, "rule", LabelRule(**self.rule))
        for point in self.points()[:1] + self.points()[-1:]:  # bad p / fraction / k: ConfigError
            self.run_config(point)
        if self.task == "modadd":
            for f in self.train_fractions:
                _check(0 < f < 1, f"train fraction must be in (0, 1), got {f}")

    def points(self) -> list[dict[str, Any]]:
        sizes = self.train_fractions if self.task == "modadd" else self.train_sizes
        key = "train_fraction" if self.task == "modadd" else "n_train"
        return [
            {"width": w, "weight_decay": wd, key: s, "seed": seed}
            for w, wd, s, seed in itertools.product(
                self.widths, self.weight_decays, sizes, self.seeds
            )
        ]

    def run_config(self, point: Mapping[str, Any]) -> GrokConfig:
        return GrokConfig(
            task=self.task,
            model="mlp",
            p=self.p,
            n_bits=self.n_bits,
            k=self.k,
            n_test=self.n_test,
            d_embed=self.d_embed,
            lr=self.lr,
            steps=self.steps,
            log_every=self.log_every,
            device=self.device,
            data_seed=0 if self.task == "sparse-parity" else None,
            **point,
        ).resolved()

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["rule"] = self.rule.to_dict()
        return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}


def sweep_groups(cfg: SweepConfig) -> list[list[dict[str, Any]]]:
    """Points that can share one batched training (same width)."""
    groups: dict[int, list[dict[str, Any]]] = {}
    for point in cfg.points():
        groups.setdefault(point["width"], []).append(point)
    return list(groups.values())


def run_sweep_points(
    cfg: SweepConfig,
    points: list[dict[str, Any]],
    on_step: Callable[[int], None] | None = None,
    checkpoints: tuple[Path, int, bool] | None = None,
) -> list[dict[str, Any]]:
    """Train one batch of same-width points together; one summary dict per point.

    ``checkpoints=(run_dir, group, resume)`` saves the batched state every
    ``cfg.checkpoint_every`` steps into ``run_dir/checkpoints`` (tagged with ``group``) and,
    with ``resume``, continues from such a checkpoint of the same group."""
    configs = [cfg.run_config(pt) for pt in points]
    datas = [build_data(c) for c in configs]
    # the same examples for every run (splits differ only in their masks)
    x, y = datas[0].x, datas[0].y
    if cfg.task == "sparse-parity":  # every run reads a prefix of the largest training set
        pool = build_data(max(configs, key=lambda c: c.n_train))
        x, y = pool.x, pool.y
        masks = torch.stack([(torch.arange(len(y)) < c.n_train) & pool.train for c in configs])
    else:
        masks = torch.stack([d.train for d in datas])
    hist = train_full_batch_many(
        [build_model(c) for c in configs],
        x,
        y,
        masks,
        [c.weight_decay for c in configs],
        cfg.steps,
        Optim(lr=cfg.lr),
        log_every=cfg.log_every,
        progress=Callbacks(on_step=on_step),
        device=cfg.device,
        labels=["run " + ", ".join(f"{k} {v}" for k, v in pt.items()) for pt in points],
        **(_batched_checkpoints(cfg, *checkpoints) if checkpoints else {}),
    )
    out = []
    for i, point in enumerate(points):
        summary = summarise_run(
            hist.steps,
            hist.train_loss[i],
            hist.test_loss[i],
            hist.train_acc[i],
            hist.test_acc[i],
            cfg.rule,
        )
        out.append(
            {
                **point,
                **summary,
                "curves": {
                    "train_loss": hist.train_loss[i],
                    "test_loss": hist.test_loss[i],
                    "test_acc": hist.test_acc[i],
                    "weight_norm": hist.weight_norm[i],
                },
            }
        )
    return out, hist.steps  # type: ignore[return-value]


def _batched_checkpoints(cfg: SweepConfig, run_dir: Path, group: int, resume: bool) -> dict:
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


def run_sweep(
    out: Path,
    cfg: SweepConfig,
    overwrite: bool = False,
    on_start: Callable[[int, int], None] | None = None,
    on_step: Callable[[int], None] | None = None,
    threads: int | None = 1,
    resume: bool = False,
) -> tuple[RunDir, dict[str, Any]]:
    """Train the grid into ``out`` (one batched training per width); label every run.

    Each finished group is saved as ``cells/group_XXX.json`` and the group in training is
    checkpointed, so ``resume`` continues a stopped sweep and ends with the same results."""
    with torch_threads(threads):
        return _run_sweep(out, cfg, overwrite, on_start, on_step, resume)


_CURVE = ListOf(Num(none=True))
_GROUP_CELL = {
    "group": int,
    "steps": ListOf(int),
    "runs": ListOf(
        {
            "label": OneOf(*LABELS),
            "memorisation_step": Num(0, none=True),
            "grokking_step": Num(0, none=True),
            "final_train_accuracy": Num(0, 1, none=True),
            "final_test_accuracy": Num(0, 1, none=True),
            "curves": {k: _CURVE for k in ("train_loss", "test_loss", "test_acc", "weight_norm")},
        }
    ),
}


def read_group_cell(path: Path, group: int, points: list[dict[str, Any]]) -> dict[str, Any]:
    """A saved group of a grok sweep, validated against the points it must hold (one line
    naming the file otherwise, :func:`interp.runs.read_cell`)."""

    def check(cell: dict[str, Any]) -> None:
        if cell["group"] != group or len(cell["runs"]) != len(points):
            raise ShapeError(
                f"it holds group {cell['group']} of {len(cell['runs'])} runs, not group {group} "
                f"of {len(points)}"
            )
        for i, (r, point) in enumerate(zip(cell["runs"], points, strict=True)):
            for key, value in point.items():
                if r.get(key) != value:
                    raise ShapeError(f"runs[{i}].{key} is {r.get(key)!r}, the sweep's is {value!r}")
            for name, curve in r["curves"].items():
                if len(curve) != len(cell["steps"]):
                    raise ShapeError(f"runs[{i}].curves.{name} does not match the logged steps")

    return read_cell(path, "sweep cell", _GROUP_CELL, check)


def _run_sweep(
    out: Path,
    cfg: SweepConfig,
    overwrite: bool,
    on_start: Callable[[int, int], None] | None,
    on_step: Callable[[int], None] | None,
    resume: bool,
) -> tuple[RunDir, dict[str, Any]]:
    resume = resume and not RunDir.nothing_to_resume(out)  # nothing there yet: a new run
    if resume:
        run = _open_for_resume(out, "grok-sweep", "sweep", json_roundtrip(cfg.to_dict()))
    else:
        RunDir.check_creatable(out, overwrite)
        run = RunDir.create(out, {"kind": "grok-sweep", "sweep": cfg.to_dict()}, overwrite)
    run.write_env(0, cfg.device)
    groups = sweep_groups(cfg)
    saved_groups = {}
    if resume:  # every saved group checked now, before hours of training, not after
        for g, points in enumerate(groups):
            cell = run.path / "cells" / f"group_{g:03d}.json"
            if cell.is_file():
                saved_groups[g] = read_group_cell(cell, g, points)
    total = cfg.steps * len(groups)
    if on_start:
        on_start(0, total)
    runs: list[dict[str, Any]] = []
    steps: list[int] = []
    t0 = time.perf_counter()
    for g, points in enumerate(groups):
        done = g * cfg.steps
        cell = run.path / "cells" / f"group_{g:03d}.json"
        if g in saved_groups:
            saved = saved_groups[g]
            runs.extend(saved["runs"])
            steps = saved["steps"]
            if on_step:
                on_step(done + cfg.steps)
            continue
        summaries, steps = run_sweep_points(  # type: ignore[misc]
            cfg,
            points,
            on_step=(lambda s, done=done: on_step(done + s)) if on_step else None,
            checkpoints=(run.path, g, resume),
        )
        atomic_write_json(cell, {"group": g, "runs": summaries, "steps": steps})
        runs.extend(summaries)
    seconds = time.perf_counter() - t0
    counts = {
        label: sum(r["label"] == label for r in runs)
        for label in ("no-learn", "memorise", "grok", "generalise")
    }
    results = {
        "task": cfg.task,
        "n_runs": len(runs),
        "seconds": seconds,
        "runs_per_second": len(runs) / max(seconds, 1e-9),
        "thresholds": cfg.rule.to_dict(),
        "label_counts": counts,
        "steps": steps,
        "runs": runs,
    }
    atomic_write_json(run.path / "results.json", results)
    return run, results


__all__ = [
    "GrokConfig",
    "SweepConfig",
    "build_data",
    "build_model",
    "run_grok",
    "run_sweep",
    "run_sweep_points",
]
