"""When can a transformer count?  Sweeps over (d, m), the threshold m_thr(d), and the histogram
construction of Yehudai et al. 2024 (arXiv 2407.15160) as hand-set weights of our hooked model.

Sweep: for every embedding width d and vocabulary size m, train a small model (2 layers, 4
heads by default) on ``qc`` or ``mfc`` (``interp.tasks.counting``), measure held-out accuracy
at the answer position, and estimate m_thr(d) = the m where accuracy falls through 80%
(linear interpolation between the last grid point at or above the threshold and the first one
below it).  m_thr is then fitted linearly against d.  Each finished cell is saved atomically
in ``SWEEP/cells/``; a restarted sweep skips the cells already there.  Models of one d are
trained together (``interp.train.batched``).

Construction (QC, one layer, one head, no MLP, no norm, no positional encoding):

* token embeddings e_0 .. e_{m-1}: the first m standard basis vectors when d >= m (orthonormal);
  for m > d, m random unit vectors (seeded) - no longer orthogonal, which is what breaks it;
  ``<bos>`` embeds to 0;
* s: the vector with <s, e_i> = 1 for every token (sum of the basis vectors; least squares when
  m > d);
* attention: query beta * e_q, key 2 (e_x - s <s, e_x>), so the score is 0 on tokens equal to the
  query and on ``<bos>``, and -2 beta elsewhere.  The query position therefore spreads its
  attention evenly over ``<bos>`` and the c + 1 copies of q (the c in the sequence plus itself):
  this is the attention "averaging" the one-hot histogram of the tokens equal to q;
* value: ``<bos>`` carries s / |s|^2, tokens carry 0, so the attention adds t s / |s|^2 with
  t = 1 / (c + 2) to the residual e_q; reading along s gives r = <s, e_q> + t = 1 + t;
* readout: logit_k = 2 a_k (r - 1) - a_k^2 with a_k = 1 / (k + 2), the nearest a_k to t wins
  (linear in r: one unembedding column and bias per count k), so the argmax is exactly c.

It is exact when d >= m (evaluated in float64; the margins between counts are ~1/n^2) and
degrades when m > d.  MFC needs a second layer taking the max over positions; not built here.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import torch

from interp.cells import CellStore, GroupMarker
from interp.config import ModelConfig, OptimConfig, TrainConfig, _Config, _is_int
from interp.errors import ConfigError
from interp.models.transformer import HookedTransformer, check_model_config
from interp.resources import MAX_LIST_VALUES, range_size
from interp.runs import ListOf, Num, RunDir, ShapeError
from interp.tasks import build_task
from interp.tasks.counting import COUNT_TASKS, _CountTask
from interp.train.sources import TaskSource

__all__ = [
    "ConstructConfig",
    "SweepConfig",
    "build_histogram_model",
    "evaluate_count_model",
    "fit_line",
    "m_threshold",
    "parse_int_list",
    "run_construct",
    "run_sweep",
    "summarise",
]

THRESHOLD = 0.8
MAX_BETA = 1e6  # the construction's attention sharpness


# --------------------------------------------------------------------------- inputs


def _check_list_size(what: str, n: int) -> None:

    if n > MAX_LIST_VALUES:
        raise ConfigError(f"{what}: {n} values, more than the limit of {MAX_LIST_VALUES:,}")


def parse_int_list(text: str, what: str) -> tuple[int, ...]:
    """``"8,16,32"``, ``"4..64"`` (every integer) or ``"4..64:4"`` (step), or a mix by commas."""

    values: list[int] = []
    for part in str(text).replace(" ", "").split(","):
        if not part:
            continue
        match = re.fullmatch(r"(-?\d+)\.\.(-?\d+)(?::(\d+))?", part)
        if match:
            lo, hi, step = int(match[1]), int(match[2]), int(match[3] or 1)
            if step < 1:
                raise ConfigError(f"{what}: the step in {part!r} must be >= 1")
            if hi < lo:
                raise ConfigError(f"{what}: the range {part!r} is empty")
            _check_list_size(what, len(values) + range_size(lo, hi, step))
            values.extend(range(lo, hi + 1, step))
        elif re.fullmatch(r"-?\d+", part):
            values.append(int(part))
            _check_list_size(what, len(values))
        else:
            raise ConfigError(f"{what}: cannot read {part!r} (use 8,16,32 or 4..64 or 4..64:4)")
    if not values:
        raise ConfigError(f"{what}: the list {text!r} is empty")
    return tuple(sorted(set(values)))


def _check_grid(task: str, d_values: Sequence[int], m_values: Sequence[int], n: int | None) -> None:
    if task not in COUNT_TASKS:
        raise ConfigError(f"unknown counting task {task!r}; choose {' or '.join(COUNT_TASKS)}")
    if not d_values:
        raise ConfigError("the list of d values is empty")
    if not m_values:
        raise ConfigError("the list of m values is empty")
    if min(m_values) < 2:
        raise ConfigError(f"m must be >= 2 (got {min(m_values)}): counting needs two tokens")
    if min(d_values) < 1:
        raise ConfigError(f"d must be >= 1, got {min(d_values)}")
    if n is not None and n < 1:
        raise ConfigError(f"n must be >= 1, got {n}")


# --------------------------------------------------------------------------- evaluation


def _task(task: str, m: int, n: int | None, sampling: str, query: str) -> _CountTask:
    options: dict[str, Any] = {"m": m, "n": n, "sampling": sampling}
    if task == "qc":
        options["query"] = query
    built = build_task(task, options)
    assert isinstance(built, _CountTask)
    return built


@torch.no_grad()
def evaluate_count_model(
    model: HookedTransformer,
    task: _CountTask,
    samples: int,
    seed: int,
    chunk: int = 256,
    on_chunk: Callable[[int], None] | None = None,
) -> dict[str, float]:
    """Held-out accuracy and loss at the answer position; ``chance`` = best constant guess.
    ``on_chunk(n)`` is told after each chunk of ``n`` sequences."""
    g = torch.Generator().manual_seed(10_000_019 + seed)
    was_training = model.training
    model.eval()
    correct, loss, answers = 0, 0.0, []
    done = 0
    while done < samples:
        size = min(chunk, samples - done)
        tokens, ans = task.labelled(size, g)
        logits = model(tokens.to(model.device))[:, -1, : task.n_classes].to(torch.float64)
        correct += int((logits.argmax(-1).cpu() == ans).sum())
        loss += float(torch.nn.functional.cross_entropy(logits.cpu(), ans, reduction="sum"))
        answers.append(ans)
        done += size
        if on_chunk is not None:
            on_chunk(size)
    model.train(was_training)
    counts = torch.bincount(torch.cat(answers), minlength=task.n_classes)
    return {
        "accuracy": correct / samples,
        "loss": loss / samples,
        "chance": float(counts.max()) / samples,
    }


# --------------------------------------------------------------------------- thresholds


def m_threshold(
    ms: Sequence[int], accs: Sequence[float], threshold: float = THRESHOLD
) -> dict[str, Any]:
    """Where accuracy first falls below ``threshold`` as m grows, linearly interpolated.

    Returns ``{"m_thr": value or None, "censored": None | "below" | "above"}``: ``below`` when
    the smallest m is already under the threshold, ``above`` when it never falls within the grid.
    """
    pairs = sorted(zip(ms, accs, strict=True))
    if not pairs:
        return {"m_thr": None, "censored": None}
    if pairs[0][1] < threshold:
        return {"m_thr": None, "censored": "below"}
    for (m0, a0), (m1, a1) in zip(pairs, pairs[1:], strict=False):
        if a0 >= threshold > a1:
            m_thr = m0 + (a0 - threshold) / (a0 - a1) * (m1 - m0)
            return {"m_thr": m_thr, "censored": None}
    return {"m_thr": None, "censored": "above"}


def fit_line(xs: Sequence[float], ys: Sequence[float]) -> dict[str, float] | None:
    """Least-squares ``y = slope x + intercept`` with R^2; None with fewer than two points."""
    if len(xs) < 2 or len(set(xs)) < 2:
        return None
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    slope = sxy / sxx
    intercept = my - slope * mx
    ss_tot = sum((y - my) ** 2 for y in ys)
    ss_res = sum((y - slope * x - intercept) ** 2 for x, y in zip(xs, ys, strict=True))
    r2 = 1 - ss_res / ss_tot if ss_tot > 0 else 1.0
    return {"slope": slope, "intercept": intercept, "r2": r2}


def summarise(cells: Sequence[dict[str, Any]], threshold: float = THRESHOLD) -> dict[str, Any]:
    """m_thr per d, the linear fit, and the 'accuracy drops once m > d' comparison."""
    by_d: dict[int, list[dict[str, Any]]] = {}
    for c in cells:
        by_d.setdefault(int(c["d"]), []).append(c)
    thresholds = []
    for d in sorted(by_d):
        rows = sorted(by_d[d], key=lambda c: c["m"])
        thr = m_threshold([c["m"] for c in rows], [c["accuracy"] for c in rows], threshold)
        inside = [c["accuracy"] for c in rows if c["m"] <= d]
        beyond = [c["accuracy"] for c in rows if c["m"] > d]
        thresholds.append(
            {
                "d": d,
                **thr,
                "mean_acc_m_le_d": sum(inside) / len(inside) if inside else None,
                "mean_acc_m_gt_d": sum(beyond) / len(beyond) if beyond else None,
            }
        )
    finite = [t for t in thresholds if t["m_thr"] is not None]
    fit = fit_line([t["d"] for t in finite], [t["m_thr"] for t in finite])
    return {"threshold": threshold, "thresholds": thresholds, "fit": fit}


# --------------------------------------------------------------------------- sweep


@dataclass(frozen=True)
class SweepConfig(_Config):
    """A grid of (d, m) cells; one model per cell (see the module docstring).  Inert: checked
    by :meth:`validate`."""

    task: str = "qc"
    d_values: tuple[int, ...] = (8, 16, 32)
    m_values: tuple[int, ...] = (4, 8, 16, 32, 64)
    n: int | None = None  # data tokens per sequence; None = n_factor * m
    n_factor: int = 10  # the paper's n = 10 m
    sampling: str = "uniform"
    query: str = "uniform"  # qc only
    n_layers: int = 2
    n_heads: int = 4
    mlp_ratio: int = 4  # d_mlp = mlp_ratio * d (0 = attention only)
    positional: str = "none"
    steps: int = 1000
    batch_size: int = 16
    lr: float = 1e-3
    weight_decay: float = 0.0
    warmup_steps: int = 50
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


# --------------------------------------------------------------------------- construction


def build_histogram_model(
    d: int, m: int, n: int | None = None, beta: float = 20.0, seed: int = 0
) -> HookedTransformer:
    """The QC histogram construction as weights of a 1-layer, 1-head hooked model (float64)."""
    task = _task("qc", m, n, "uniform", "uniform")
    cfg = ModelConfig(
        n_layers=1,
        d_model=d,
        n_heads=1,
        d_mlp=0,
        normalization="none",
        positional="none",
        **task.model_overrides(),
    )
    model = HookedTransformer(cfg, seed=None).double()
    g = torch.Generator().manual_seed(seed)
    if d >= m:
        emb = torch.eye(d, dtype=torch.float64)[:m]  # [m d] orthonormal
        s = emb.sum(0)
    else:
        emb = torch.randn(m, d, generator=g, dtype=torch.float64)
        emb = emb / emb.norm(dim=1, keepdim=True)
        s = torch.linalg.lstsq(emb, torch.ones(m, 1, dtype=torch.float64)).solution[:, 0]
    eye = torch.eye(d, dtype=torch.float64)
    attn = model.blocks[0].attn
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        model.embed.W_E[:m] = emb  # <bos> and unused tokens embed to 0
        attn.W_Q[0] = beta / attn.scale * eye
        attn.W_K[0] = 2 * (eye - torch.outer(s, s))
        w = s / s.dot(s)
        attn.W_V[0] = -torch.outer(s, w)
        attn.b_V[0] = w
        attn.W_O[0] = eye
        a = 1.0 / (torch.arange(cfg.d_vocab, dtype=torch.float64) + 2)
        model.unembed.W_U[:] = torch.outer(s, 2 * a)
        model.unembed.b_U[:] = -(2 * a + a**2)
        model.unembed.W_U[:, task.n_classes :] = 0
        model.unembed.b_U[task.n_classes :] = -1e9
    return model.eval()


@dataclass(frozen=True)
class ConstructConfig(_Config):
    """``interp count construct``: the hand-built histogram model on a (d, m) grid (inert;
    ``validate`` checks it)."""

    d_values: tuple[int, ...] = (8,)
    m_values: tuple[int, ...] = (4, 8, 16)
    n: int | None = None
    beta: float = 20.0
    samples: int = 500
    seed: int = 0
    device: str = "cpu"  # where the float64 model is evaluated

    def validate(self) -> None:
        _check_grid("qc", self.d_values, self.m_values, self.n)
        if self.samples < 1:
            raise ConfigError("samples must be >= 1")
        if not (math.isfinite(self.beta) and 0 < self.beta <= MAX_BETA):
            raise ConfigError(
                f"beta must be in (0, {MAX_BETA:g}], got {self.beta} (the attention is exactly "
                "one-hot in float64 from beta ~400 on; larger values only overflow)"
            )


def run_construct(
    cfg: ConstructConfig, progress: Callable[[int, int], None] | None = None
) -> dict[str, Any]:
    """Accuracy of the hand-built histogram model at every (d, m), float64, on random QC data.

    ``progress(done, total)`` counts evaluated sequences over all cells (from ``(0, total)``)."""
    cfg.validate()
    cells = []
    total = len(cfg.d_values) * len(cfg.m_values) * cfg.samples
    done = [0]

    def tick(n: int) -> None:
        done[0] += n
        if progress is not None:
            progress(done[0], total)

    if progress is not None:
        progress(0, total)
    for d in cfg.d_values:
        for m in cfg.m_values:
            model = build_histogram_model(d, m, cfg.n, cfg.beta, cfg.seed).to(cfg.device)
            task = _task("qc", m, cfg.n, "uniform", "uniform")
            result = evaluate_count_model(model, task, cfg.samples, cfg.seed, on_chunk=tick)
            cells.append(
                {"d": d, "m": m, "n": task.n, **result, "exact": result["accuracy"] == 1.0}
            )
    return {"cells": cells, **summarise(cells)}
