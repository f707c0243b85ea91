"""Full-batch training on a fixed training set (the grokking setting), one model or many at once.

Every step uses the whole training set (AdamW at a constant learning rate, :class:`Optim`); at
each logged step (:func:`log_steps`: every ``log_every`` and a log-spaced grid, dense early on)
models are scored on every example.  Both recipes run the one loop,
:func:`interp.train.loop.fit`.

:func:`train_full_batch` (one model) sends rows through ``on_metrics``:

    {"step", "split": "train", "loss", "accuracy", "weight_norm", "lr"}
    {"step", "split": "val",   "loss", "accuracy"}
    {"step", "split": "fourier", ...}            (from the ``analyse`` callback, when given)

:func:`train_full_batch_many` trains many models of one architecture, each on its own training
examples and with its own weight decay, as :class:`~interp.train.stacked.Stacked` modules (one
per training-set size, so nothing is padded) and returns per-model curves.  Every model runs on
every one of its examples (``[model example class]`` logits); each model's loss is the mean over
*its* training examples, so the models stay independent.  ``tests/test_grok.py`` checks it
against one model at a time.  No file I/O inside; checkpoints leave through callbacks.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from interp.errors import NumericalError
from interp.progress import SILENT, Progress
from interp.seed import torch_threads
from interp.train.loop import Step, fit
from interp.train.optim import Optim, build_optimizer, schedule
from interp.train.stacked import Stacked

# the training objective from per-example cross-entropies ``[... example]`` and the class count:
# "mean" the per-example mean (interp, Nanda et al.), "class_mean" PAIR's
# ``-mean(onehot * log_softmax)``, averaged over the classes too (the mean / classes)
LOSS_DIVISORS: dict[str, Callable[[int], int]] = {"mean": lambda classes: 1,
                                                  "class_mean": lambda classes: classes}  # fmt: skip
MetricsCallback = Callable[[dict[str, Any]], None]
CheckpointCallback = Callable[[int, nn.Module, torch.optim.Optimizer], None]
Rows = dict[str, list[list[float]]]
StackCheckpoint = Callable[[int, nn.Module, torch.optim.Optimizer, Rows], None]
StackRestore = Callable[[nn.Module, torch.optim.Optimizer], "tuple[int, Rows] | None"]

__all__ = [
    "LOSS_DIVISORS",
    "FullBatchData",
    "Optim",
    "StackedHistory",
    "log_steps",
    "objective_loss",
    "split_metrics",
    "train_full_batch",
    "train_full_batch_many",
    "weight_norm",
]


@dataclass(frozen=True)
class FullBatchData:
    """Every example once.  x: [example ...] inputs; y: [example] classes; train: [example] bool."""

    x: Tensor
    y: Tensor
    train: Tensor

    def to(self, device: str) -> FullBatchData:
        return FullBatchData(self.x.to(device), self.y.to(device), self.train.to(device))


def objective_loss(logits: Tensor, y: Tensor, loss: str = "mean") -> Tensor:
    """The training objective ``loss`` (:data:`LOSS_DIVISORS`) of ``logits [example class]``."""
    return F.cross_entropy(logits, y) / LOSS_DIVISORS[loss](logits.shape[-1])


def log_steps(total: int, every: int, per_decade: int = 16) -> list[int]:
    """Steps to log: 0, every multiple of ``every``, and a log-spaced grid (dense early on)."""
    steps = {0, total, *range(every, total + 1, every)}
    i = 0
    while (s := round(10 ** (i / per_decade))) <= total:
        steps.add(s)
        i += 1
    return sorted(steps)


@torch.no_grad()
def split_metrics(logits: Tensor, y: Tensor, train: Tensor) -> dict[str, dict[str, float]]:
    """Mean cross-entropy and accuracy on the train and test examples."""
    loss = F.cross_entropy(logits, y, reduction="none")
    correct = (logits.argmax(-1) == y).float()
    out = {}
    for name, mask in (("train", train), ("val", ~train)):
        if mask.any():
            out[name] = {"loss": float(loss[mask].mean()), "accuracy": float(correct[mask].mean())}
    return out


def weight_norm(model: nn.Module) -> float:
    """L2 norm of all trainable parameters together."""
    sq = sum(float(p.detach().double().pow(2).sum()) for p in model.parameters() if p.requires_grad)
    return math.sqrt(sq)


def train_full_batch(
    model: nn.Module,
    data: FullBatchData,
    steps: int,
    optim: Optim,
    log_every: int = 100,
    on_metrics: MetricsCallback | None = None,
    analyse: Callable[[nn.Module], dict[str, Any]] | None = None,
    on_checkpoint: CheckpointCallback | None = None,
    checkpoint_steps: Iterable[int] = (),
    progress: Progress = SILENT,
    device: str = "cpu",
    threads: int | None = 1,
    optimizer: torch.optim.Optimizer | None = None,
    start_step: int = 0,
    loss: str = "mean",
) -> dict[str, Any]:
    """Train ``model`` from ``start_step`` to ``steps`` full-batch steps; returns timings.

    ``on_checkpoint(step, model, optimizer)`` runs at each of ``checkpoint_steps`` *before* that
    step is logged, so a run resumed from a checkpoint at step ``s`` (``start_step=s`` with the
    restored ``optimizer``) logs ``s`` and everything after it again, exactly as the
    uninterrupted run did.  Runs with ``threads`` torch threads (``None`` leaves them).
    ``loss`` names the objective (:data:`LOSS_DIVISORS`); logged losses are cross-entropies."""
    emit = on_metrics or (lambda row: None)
    model.to(device).train()
    data = data.to(device)
    x_train, y_train = data.x[data.train], data.y[data.train]
    optimizer = optimizer if optimizer is not None else build_optimizer(model, optim)
    logged, ckpts = set(log_steps(steps, log_every)), set(checkpoint_steps)
    t0, t_logging = time.perf_counter(), [0.0]
    lr = schedule(optim, steps)

    def objective(batch: tuple[Tensor, Tensor]) -> Tensor:
        return objective_loss(model(batch[0]), batch[1], loss)

    def at(done: int) -> None:  # the state after ``done`` steps: checkpoint, then log it
        if on_checkpoint is not None and done in ckpts and (done > start_step or done == 0):
            on_checkpoint(done, model, optimizer)
        if done in logged:
            t_log = time.perf_counter()
            _emit_metrics(model, data, done, lr(done), emit, analyse)
            t_logging[0] += time.perf_counter() - t_log

    with torch_threads(threads):
        at(start_step)
        fit(
            model,
            objective,
            lambda step: (x_train, y_train),
            optimizer,
            lr,
            steps,
            start_step,
            hooks=[lambda s: at(s.done)],
            progress=progress,
        )
    elapsed = time.perf_counter() - t0
    return {
        "steps_per_second": (steps - start_step) / max(elapsed - t_logging[0], 1e-9),
        "seconds": elapsed,
        "seconds_logging": t_logging[0],
    }


def _emit_metrics(
    model: nn.Module,
    data: FullBatchData,
    step: int,
    lr: float,
    emit: MetricsCallback,
    analyse: Callable[[nn.Module], dict[str, Any]] | None,
) -> None:
    """The train, val (and fourier) rows of ``step``, from one forward over every example."""
    model.eval()
    with torch.no_grad():
        metrics = split_metrics(model(data.x), data.y, data.train)
    model.train()
    train_row = {"step": step, "split": "train", **metrics["train"]}
    emit(train_row | {"weight_norm": weight_norm(model), "lr": lr})
    if "val" in metrics:
        emit({"step": step, "split": "val", **metrics["val"]})
    if analyse is not None:
        emit({"step": step, "split": "fourier", **analyse(model)})


# --------------------------------------------------------------------------- many at once


@dataclass
class StackedHistory:
    """Per-model curves at the logged steps: every array is ``[model n_logged]``."""

    steps: list[int]
    train_loss: list[list[float]] = field(default_factory=list)
    test_loss: list[list[float]] = field(default_factory=list)
    train_acc: list[list[float]] = field(default_factory=list)
    test_acc: list[list[float]] = field(default_factory=list)
    weight_norm: list[list[float]] = field(default_factory=list)


_KEYS = {"trl": "train_loss", "tel": "test_loss", "tra": "train_acc", "tea": "test_acc"}
_KEYS["wn"] = "weight_norm"


@dataclass
class _Group:
    """Models with the same number of training examples: trained together without padding."""

    members: Tensor  # [group] indices into the models
    stack: Stacked
    train_in: Any
    train_y: Tensor  # [group*n_train]
    n_train: int
    test_in: Any
    test_y: Tensor  # [group n_test]


class _Sweep(nn.Module):
    """Every group's stack in one module (``groups.G.NAME``: one optimizer, one checkpoint), and
    the per-model metrics at the logged steps (``rows[key]``: one ``[model]`` tensor per step)."""

    def __init__(
        self, parts: list[_Group], n_models: int, logged: set[int], loss: str = "mean"
    ) -> None:
        super().__init__()
        self.divisor = LOSS_DIVISORS[loss]
        self.groups = nn.ModuleList(g.stack for g in parts)
        self.parts, self.n_models, self.logged = parts, n_models, logged
        self.order = torch.cat([g.members for g in parts]).tolist()  # loss slot -> model index
        self.rows: dict[str, list[Tensor]] = {k: [] for k in _KEYS}

    def losses(self, step: int) -> Tensor:
        """Every model's loss ``[slot]``; at a logged step its metrics are recorded too."""
        if step not in self.logged:
            return torch.cat([_group_loss(g, None, self.divisor) for g in self.parts])
        row = {k: torch.empty(self.n_models, dtype=torch.float64) for k in _KEYS}
        losses = torch.cat([_group_loss(g, row, self.divisor) for g in self.parts])
        for k in _KEYS:
            self.rows[k].append(row[k])
        return losses

    def saved_rows(self) -> Rows:
        return {k: [r.tolist() for r in v] for k, v in self.rows.items()}

    def load_rows(self, saved: Rows) -> None:
        self.rows = {k: [torch.tensor(r, dtype=torch.float64) for r in saved[k]] for k in _KEYS}

    def history(self) -> StackedHistory:
        curves = {attr: torch.stack(self.rows[key], 1).tolist() for key, attr in _KEYS.items()}
        return StackedHistory(steps=sorted(self.logged), **curves)


def _make_groups(
    models: Sequence[nn.Module],
    x: Tensor,
    y: Tensor,
    masks: Tensor,
    weight_decays: Sequence[float],
    device: str,
    engine: str,
) -> list[_Group]:
    n_train = masks.sum(1)
    groups = []
    for n in sorted(set(n_train.tolist())):
        members = torch.nonzero(n_train == n).flatten()
        stack = Stacked(
            [models[int(i)] for i in members],
            engine=engine,
            weight_decay=[weight_decays[int(i)] for i in members],
            device=device,
        )
        # each member's own training examples, in example order
        order = torch.argsort((~masks[members]).to(torch.int8), dim=1, stable=True)
        train_idx, test_idx = order[:, :n], order[:, n:]
        groups.append(
            _Group(
                members=members.to(device),
                stack=stack,
                train_in=stack.prepare(x[train_idx]),
                train_y=y[train_idx].reshape(-1),
                n_train=int(n),
                test_in=stack.prepare(x[test_idx]),
                test_y=y[test_idx],
            )
        )
    return groups


def train_full_batch_many(
    models: Sequence[nn.Module],
    x: Tensor,
    y: Tensor,
    train_masks: Tensor,
    weight_decays: Sequence[float],
    steps: int,
    optim: Optim = Optim(),
    log_every: int = 100,
    progress: Progress = SILENT,
    device: str = "cpu",
    threads: int | None = 1,
    checkpoint_every: int | None = None,
    on_checkpoint: StackCheckpoint | None = None,
    restore: StackRestore | None = None,
    engine: str = "auto",
    labels: Sequence[str] | None = None,
    loss: str = "mean",
) -> StackedHistory:
    """Train ``models`` (one architecture and shape) together, in place; returns their curves.

    ``train_masks``: [model example] bool, each model's training examples (the rest is its test
    set); ``weight_decays``: one per model (``optim.weight_decay`` is not used).  A non-finite
    loss raises :class:`NumericalError` naming the model by its ``labels`` entry (or its index).

    Crash safety: every ``checkpoint_every`` steps (before that step is logged)
    ``on_checkpoint(step, stack, optimizer, rows)`` gets the stacked parameters (one module),
    their AdamW and the logged rows so far (``{key: [[model values] per logged step]}``);
    ``restore(stack, optimizer)`` loads such a state and returns ``(step, rows)`` (or ``None``
    to start afresh), and training continues from there with identical results.  ``engine``:
    the models' hand-batched forward (``stacked``), ``vmap``, or ``auto`` (see ``Stacked``).
    """
    n_models = len(models)
    if train_masks.shape != (n_models, len(y)) or len(weight_decays) != n_models:
        raise ValueError("need one train mask row and one weight decay per model")
    with torch_threads(threads):
        x, y, masks = x.to(device), y.to(device), train_masks.to(device)
        parts = _make_groups(models, x, y, masks, weight_decays, device, engine)
        sweep = _Sweep(parts, n_models, set(log_steps(steps, log_every)), loss)
        optimizer = build_optimizer(sweep, optim, foreach=True)
        start = 0
        if restore is not None and (state := restore(sweep, optimizer)) is not None:
            start = state[0]
            sweep.load_rows(state[1])

        def checkpoint(s: Step) -> None:
            if on_checkpoint is not None and checkpoint_every:
                if s.done % checkpoint_every == 0 or s.done == steps:
                    on_checkpoint(s.done, sweep, optimizer, sweep.saved_rows())

        lr = schedule(optim, steps)
        try:
            fit(sweep, sweep.losses, lambda step: step, optimizer, lr, steps, start,
                hooks=[checkpoint], progress=progress)  # fmt: skip
        except NumericalError as e:  # the model's index in ``models`` (or its label)
            i = sweep.order[e.model or 0]
            cell = labels[i] if labels is not None else None
            raise e.replace(model=None if cell else i, cell=cell) from e
        with torch.no_grad():  # the final state, logged as the uninterrupted run does
            sweep.losses(steps)
        for g in parts:
            g.stack.unstack()
    return sweep.history()


def _group_loss(
    g: _Group, row: dict[str, Tensor] | None, divisor: Callable[[int], int] = lambda c: 1
) -> Tensor:
    """Each member's mean loss on its training examples ``[group]`` (one fused log-softmax for the
    whole group); with ``row``, its metrics there too."""
    logits = g.stack(g.train_in)  # [group n_train class]
    ce = F.cross_entropy(logits.view(-1, logits.shape[-1]), g.train_y, reduction="none")
    if row is not None:
        _log_group(g, logits.detach(), ce.detach(), row)
    return ce.view(len(g.members), -1).sum(1) / (max(g.n_train, 1) * divisor(logits.shape[-1]))


def _correct(logits: Tensor, targets: Tensor) -> Tensor:
    """1.0 where ``argmax(logits) == target``.  ``amax`` is much cheaper than ``argmax`` on CPU,
    so argmax runs only on rows with a tied maximum (dead-ReLU examples give all-zero logits),
    where it picks the first index."""
    is_max = logits == logits.amax(-1, keepdim=True)
    correct = is_max.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    ties = torch.count_nonzero(is_max, dim=-1) > 1
    if bool(ties.any()):
        correct[ties] = logits[ties].argmax(-1) == targets[ties]
    return correct.to(logits.dtype)


@torch.no_grad()
def _log_group(g: _Group, logits: Tensor, ce: Tensor, row: dict[str, Tensor]) -> None:
    """Fill ``row`` ([model] tensors) for the group's members: the train metrics come from this
    step's training forward pass (``logits`` [group n_train class], ``ce`` flat), the test
    metrics from one more forward pass over the test examples only."""
    size = len(g.members)
    members = g.members.cpu()
    row["trl"][members] = ce.view(size, -1).mean(1).double().cpu()
    row["tra"][members] = _correct(logits, g.train_y.view(size, -1)).mean(1).double().cpu()
    if g.test_y.shape[1]:
        test_logits = g.stack(g.test_in)
        test_ce = F.cross_entropy(
            test_logits.reshape(-1, test_logits.shape[-1]), g.test_y.reshape(-1), reduction="none"
        ).view(size, -1)
        row["tel"][members] = test_ce.mean(1).double().cpu()
        row["tea"][members] = _correct(test_logits, g.test_y).mean(1).double().cpu()
    else:
        row["tel"][members] = 0.0
        row["tea"][members] = 0.0
    sq = sum(p.detach().double().pow(2).flatten(1).sum(1) for p in g.stack.params.values())
    row["wn"][members] = sq.sqrt().cpu()
