"""The counting sweep: for every embedding width d and vocabulary size m a small model trained on
``qc`` or ``mfc`` and scored at the answer position.  Each finished cell is saved atomically in
``SWEEP/cells/``; a restarted sweep skips the cells already there.  Models of one d are trained
together (``interp.train.batched``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from interp.analysis.counting_eval import THRESHOLD, evaluate_count_model, summarise
from interp.analysis.counting_inputs import _check_grid, _task
from interp.cells import CellStore, GroupMarker
from interp.config import ModelConfig, OptimConfig, TrainConfig, _Config, _is_int
from interp.errors import ConfigError
from interp.models.transformer import HookedTransformer, check_model_config
from interp.runs import ListOf, Num, RunDir, ShapeError
from interp.tasks.counting import _CountTask
from interp.train.sources import TaskSource


@dataclass(frozen=True)
class SweepConfig(_Config):
    """A grid of (d, m) cells; one model per cell (see the module docstring).  Inert: checked
    by :meth:`validate`."""

    # the defaults are ``interp count sweep``'s (tests/test_count_cli.py checks they agree): a
    # grid that shows the drop at m > d on a CPU in minutes (measured in the command's help);
    # the paper's setting (n = 10 m, 4 heads, batch 16, lr 1e-4, 100k steps) is the
    # ``counting`` paper preset (interp/reproductions/counting.py)
    task: str = "qc"
    d_values: tuple[int, ...] = (4, 8, 16)
    m_values: tuple[int, ...] = (2, 4, 8, 16, 32)
    n: int | None = None  # data tokens per sequence; None = n_factor * m
    n_factor: int = 1  # n = m (short: counts mostly 0..3); the paper's is 10
    sampling: str = "uniform"
    query: str = "uniform"  # qc only
    n_layers: int = 2
    n_heads: int = 1  # one head of width d (2 heads of d/2 each: m_thr ~ d/2; the paper's: 4)
    mlp_ratio: int = 4  # d_mlp = mlp_ratio * d (0 = attention only)
    positional: str = "none"
    steps: int = 2000
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 0.0
    warmup_steps: int = 100
    eval_samples: int = 1000
    seed: int = 0
    threshold: float = THRESHOLD
    batched: bool = True
    device: str = "cpu"  # where the models train (the batched trainer moves them there)
    extra: dict[str, Any] = field(default_factory=dict)  # free-form notes saved with the sweep

    def __post_init__(self) -> None:  # the grid in order, each value once (no checks here)
        for name in ("d_values", "m_values"):
            values = getattr(self, name)
            if isinstance(values, list | tuple) and all(_is_int(v) for v in values):
                object.__setattr__(self, name, tuple(sorted(set(values))))

    def validate(self) -> None:
        _check_grid(self.task, self.d_values, self.m_values, self.n)
        if self.n_heads < 1 or self.n_layers < 1:
            raise ConfigError(
                f"heads and layers must be >= 1, got {self.n_heads} and {self.n_layers}"
            )
        if self.mlp_ratio < 0:
            raise ConfigError(f"mlp_ratio must be >= 0 (0 = attention only), got {self.mlp_ratio}")
        for d in self.d_values:
            if d % self.n_heads:
                raise ConfigError(
                    f"d = {d} is not divisible by the number of heads ({self.n_heads})"
                )
        if self.n_factor < 1:
            raise ConfigError(f"n_factor must be >= 1, got {self.n_factor}")
        if self.steps < 1 or self.batch_size < 1 or self.eval_samples < 1:
            raise ConfigError("steps, batch size and eval samples must be >= 1")
        if not 0 < self.threshold < 1:
            raise ConfigError(f"threshold must be in (0, 1), got {self.threshold}")
        check_model_config(self.model_config(self.d_values[0], self.m_values[0]))  # the rest
        self.train_config().validate()  # lr, weight decay, warmup: now, before the folder exists
        _task(self.task, self.m_values[0], self.n, self.sampling, self.query)

    def task_for(self, m: int) -> _CountTask:
        n = self.n if self.n is not None else self.n_factor * m
        return _task(self.task, m, n, self.sampling, self.query)

    def model_config(self, d: int, m: int) -> ModelConfig:
        return ModelConfig(
            n_layers=self.n_layers,
            d_model=d,
            n_heads=self.n_heads,
            d_mlp=self.mlp_ratio * d,
            positional=self.positional,
            **self.task_for(m).model_overrides(),
        )

    def train_config(self) -> TrainConfig:
        return TrainConfig(
            steps=self.steps,
            batch_size=self.batch_size,
            eval_every=self.steps,
            eval_batches=1,
            checkpoint_every=self.steps,
            log_every=max(1, self.steps // 20),
            seed=self.seed,
            device=self.device,
            optim=OptimConfig(
                lr=self.lr, weight_decay=self.weight_decay, warmup_steps=self.warmup_steps
            ),
        )


def cell_key(d: int, m: int) -> str:
    return f"d{d:04d}_m{m:04d}"


def cell_path(sweep_dir: Path, d: int, m: int) -> Path:
    return Path(sweep_dir) / "cells" / f"{cell_key(d, m)}.json"


# what a saved cell must hold (the summary, the report and --resume read it)
CELL = {
    "d": int,
    "m": int,
    "n": int,
    "accuracy": Num(0, 1),
    "loss": Num(0, none=True),
    "chance": Num(0, 1),
}


def cell_store(sweep_dir: Path | RunDir, cfg: SweepConfig | None = None) -> CellStore:
    """The sweep's cells: each checked for its shape, its (d, m) against its file name and,
    given the sweep's config, its n; a group trained together is marked by its (d, m) pairs."""
    run = sweep_dir if isinstance(sweep_dir, RunDir) else RunDir(Path(sweep_dir))

    def check(cell: Any) -> str | None:
        if cfg is not None and cell["n"] != cfg.task_for(cell["m"]).n:
            return f"n is {cell['n']}, the sweep's is {cfg.task_for(cell['m']).n}"
        return None

    grid = None if cfg is None else {(d, m) for d in cfg.d_values for m in cfg.m_values}

    def pairs_check(pairs: list[list[int]]) -> None:
        for d, m in pairs:
            if grid is not None and (d, m) not in grid:
                raise ShapeError(f"it names the cell d={d} m={m}, not in this sweep's grid")

    marker = GroupMarker(
        spec=ListOf(ListOf(int, 2)),
        encode=lambda keys: [[int(k[1:5]), int(k[7:])] for k in keys],
        decode=lambda pairs: [cell_key(d, m) for d, m in pairs],
        check=pairs_check,
    )
    return CellStore(
        run,
        check,
        spec=CELL,
        identity=lambda c: (cell_key(c["d"], c["m"]), f"d={c['d']} m={c['m']}"),
        marker=marker,
    )


def read_cell_file(path: Path, cfg: SweepConfig | None = None) -> dict[str, Any]:
    """One saved cell, validated (one line naming the file otherwise)."""
    return cell_store(Path(path).parent.parent, cfg).read(Path(path))


def load_cells(sweep_dir: Path, cfg: SweepConfig | None = None) -> list[dict[str, Any]]:
    store = cell_store(sweep_dir, cfg)
    return [c for k in store.keys() if (c := store.get(k)) is not None]


def run_sweep(
    sweep_dir: Path | RunDir,
    cfg: SweepConfig,
    progress: Callable[[int, int], None] | None = None,
    executor: Any = None,
) -> dict[str, Any]:
    """Train and evaluate every cell not yet saved in ``sweep_dir/cells``; return the summary.

    ``progress(done, total)`` is called as cells finish.  The caller creates ``sweep_dir``
    (a run directory) and writes ``results.json``.  The pending cells are planned as the groups
    :func:`interp.train.batched.train_models` trains together; ``executor``
    (:mod:`interp.executors`, default local: one group after another here) trains each with
    :func:`train_cells` and this process saves its cells as it comes back.
    """
    from interp.executors import LocalExecutor
    from interp.train.batched import plan_groups

    cfg.validate()
    store = cell_store(sweep_dir, cfg)
    grid = [(d, m) for d in cfg.d_values for m in cfg.m_values]
    store.recover()  # killed while saving a group trained together: redo the whole group
    for d, m in grid:  # every saved cell checked now, before hours of training, not after
        store.get(cell_key(d, m))
    todo = [(d, m) for d, m in grid if not store.has(cell_key(d, m))]
    total = len(grid)
    finished = total - len(todo)
    if progress:
        progress(finished, total)
    # longest sequences first inside each d, so a group pads little (sorted by m)
    todo.sort(key=lambda dm: (dm[0], dm[1]))
    configs = [cfg.model_config(d, m) for d, m in todo]
    groups = [[todo[i] for i in chunk] for chunk in plan_groups(configs, cfg.batched, 64)]

    def save(index: int, cells: dict[str, dict[str, Any]]) -> None:
        nonlocal finished
        store.put_group(cells)  # a group's cells are saved together or not at all
        finished += len(cells)
        if progress:
            progress(finished, total)

    (executor or LocalExecutor()).map(partial(train_cells, cfg), groups, save)
    cells = [store.get(cell_key(d, m)) for d, m in grid]
    return {"cells": cells, **summarise(cells, cfg.threshold)}


def train_cells(cfg: SweepConfig, group: list[tuple[int, int]]) -> dict[str, dict[str, Any]]:
    """Train the (d, m) cells of one group together (:func:`run_sweep` plans them) and evaluate
    them: the cells by key, as the cell store saves them.  Depends on ``cfg`` and ``group``
    alone (a Ray task runs it anywhere)."""
    from interp.train.batched import train_models

    models, sources, tasks = [], [], []
    for d, m in group:
        task = cfg.task_for(m)
        models.append(HookedTransformer(cfg.model_config(d, m), seed=cfg.seed))
        sources.append(TaskSource(task, cfg.batch_size, cfg.seed, 1))
        tasks.append(task)
    t0 = _now()
    train_models(models, sources, cfg.train_config(), batched=cfg.batched, max_group=64,
                 labels=[f"cell d={d} m={m}" for d, m in group])  # fmt: skip
    elapsed = _now() - t0
    cells = {}
    for (d, m), model, task in zip(group, models, tasks, strict=True):
        result = evaluate_count_model(model, task, cfg.eval_samples, cfg.seed)
        cells[cell_key(d, m)] = {
            "d": d,
            "m": m,
            "n": task.n,
            **result,
            "train_seconds": elapsed / len(group),
            "trained_with": len(group),
        }  # fmt: skip
    return cells


def _now() -> float:
    import time

    return time.perf_counter()
