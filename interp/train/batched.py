"""Many small hooked models trained on minibatches at once (``interp count sweep``).

Models whose configs agree on everything but ``d_vocab`` and ``n_ctx`` (:func:`group_key`) are
trained together as one :class:`~interp.train.stacked.Stacked` module by the one loop
(:func:`interp.train.loop.fit`): the hand-batched forward of
:mod:`interp.models.stacked_forward` where it applies, vmap otherwise.

Each model gets exactly what :func:`interp.train.loop.train` would give it alone (same
initialisation, same batches from its own :class:`~interp.train.sources.DataSource`, same
warmup + cosine schedule, per-model gradient clipping, the same AdamW and weight decay), up to
float rounding (checked <= 1e-5 in ``tests/test_batched.py``).  Differing vocabularies and
lengths are padded in ways that leave every model's scored outputs unchanged:

* ``d_vocab``: the stacked embedding / unembedding get the largest vocabulary; a model's
  unused input rows are never indexed, and its unused output classes are masked to ``-inf``
  before the loss (zero probability, zero gradient);
* sequence length: shorter batches are right-padded with token 0 and an all-False mask; with
  causal attention a position never sees later ones, so scored positions are untouched;
* ``n_ctx``: the largest is used; rows of a position table past a model's length only reach
  padded positions.

Groups are split so no model is padded past ``MAX_PAD_RATIO`` times its context (padding is
compute spent on nothing); :func:`train_models` trains each group of two or more together and
a lone model (or myopic gradients) with the ordinary loop.  Only classification (``ce``)
batches are batched.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from interp.config import ModelConfig, TrainConfig
from interp.errors import ConfigError, NumericalError
from interp.models.transformer import HookedTransformer
from interp.progress import SILENT, Progress
from interp.tasks.base import Batch
from interp.train.loop import Step, fit, train
from interp.train.optim import build_optimizer, schedule
from interp.train.sources import DataSource
from interp.train.stacked import Stacked

__all__ = ["BatchedResult", "group_key", "train_batched", "train_models"]

PADDED_FIELDS = ("d_vocab", "n_ctx")
MAX_PAD_RATIO = 2.0  # a model shares a group only with models at most this much longer


def group_key(cfg: ModelConfig) -> tuple:
    """Models with equal keys are trained together (they differ at most in ``d_vocab``/``n_ctx``)."""
    d = cfg.to_dict()
    return tuple(
        (k, tuple(sorted(v.items())) if isinstance(v, dict) else v)
        for k, v in sorted(d.items())
        if k not in PADDED_FIELDS
    )


@dataclass
class BatchedResult:
    """Per-model training record: final train loss and the logged (step, loss) pairs."""

    final_loss: float
    losses: list[tuple[int, float]]


def _stack_batches(batches: list[Batch]) -> tuple[Tensor, Tensor, Tensor]:
    """Right-pad every model's batch to the longest; -> inputs, targets, mask [model batch pos]."""
    for b in batches:
        if b.loss != "ce":
            raise ConfigError("batched training supports classification (ce) tasks only")
    length = max(b.inputs.shape[1] for b in batches)

    def pad(x: Tensor, value: Any) -> Tensor:
        return F.pad(x, (0, length - x.shape[1]), value=value)

    inputs = torch.stack([pad(b.inputs, 0) for b in batches])
    targets = torch.stack([pad(b.targets, 0) for b in batches])
    mask = torch.stack([pad(b.mask, False) for b in batches])
    return inputs, targets, mask


def per_model_ce(logits: Tensor, targets: Tensor, mask: Tensor) -> Tensor:
    """Masked mean cross-entropy per model: logits [model batch pos vocab] -> [model]."""
    ce = F.cross_entropy(logits.flatten(0, 2).float(), targets.flatten(), reduction="none").view(
        targets.shape
    )
    return (ce * mask).sum((1, 2)) / mask.sum((1, 2)).clamp(min=1)


def train_batched(
    models: Sequence[HookedTransformer],
    sources: Sequence[DataSource],
    cfg: TrainConfig,
    progress: Progress = SILENT,
    engine: str = "auto",
) -> list[BatchedResult]:
    """Train ``models`` (same :func:`group_key`) together, in place, for ``cfg.steps`` steps.

    ``engine``: ``"stacked"`` (the hand-batched forward, refused for configs outside its
    allow-list), ``"vmap"`` (any config of the family), or ``"auto"`` (stacked where it applies).
    A non-finite loss raises :class:`NumericalError` with the model's index in ``models``.
    """
    _check_group(models, sources, cfg)
    device = cfg.device
    padded = models[0].config.replace(
        d_vocab=max(m.config.d_vocab for m in models), n_ctx=max(m.config.n_ctx for m in models)
    )
    template = HookedTransformer(padded, seed=None).to(device)
    stack = Stacked(models, template, engine=engine, device=device)
    class_ok = torch.stack([torch.arange(padded.d_vocab) < m.config.d_vocab for m in models])
    class_ok = class_ok.to(device) if bool((~class_ok).any()) else None  # [model d_vocab]

    def batch_at(step: int) -> tuple[Tensor, ...]:
        return tuple(t.to(device) for t in _stack_batches([s.train_batch(step) for s in sources]))

    records = [BatchedResult(float("nan"), []) for _ in models]

    def record(s: Step) -> None:
        if s.done % cfg.log_every == 0 or s.done == cfg.steps:
            for rec, v in zip(records, s.losses, strict=True):
                rec.losses.append((s.done, v))

    optimizer = build_optimizer(stack, cfg.optim, foreach=True)
    lr = schedule(cfg.optim, cfg.steps)
    fit(
        stack,
        lambda batch: _stacked_loss(stack, class_ok, *batch),
        batch_at,
        optimizer,
        lr,
        cfg.steps,
        clip=cfg.optim.grad_clip,
        hooks=[record],
        progress=progress,
    )
    for rec in records:
        rec.final_loss = rec.losses[-1][1] if rec.losses else float("nan")
    stack.unstack()
    return records


def _check_group(
    models: Sequence[HookedTransformer], sources: Sequence[DataSource], cfg: TrainConfig
) -> None:
    if not models or len(models) != len(sources):
        raise ConfigError("train_batched needs one data source per model, and at least one model")
    if len({group_key(m.config) for m in models}) != 1:
        raise ConfigError("models trained together must share every config field but d_vocab/n_ctx")
    if cfg.grad_mode != "vanilla":
        raise ConfigError("batched training supports vanilla gradients only")


def _stacked_loss(
    stack: Stacked, class_ok: Tensor | None, inputs: Tensor, targets: Tensor, mask: Tensor
) -> Tensor:
    """Each model's masked cross-entropy ``[model]``; logits only at positions some model scores
    (the hand-batched forward skips the others in its last block), padded classes at ``-inf``."""
    scored = mask.any(1).any(0).nonzero()[:, 0]
    positions = None if len(scored) == inputs.shape[2] else scored
    logits = stack(inputs, positions)  # [model batch pos d_vocab]
    if positions is not None:
        targets, mask = targets[:, :, positions], mask[:, :, positions]
    if class_ok is not None:
        logits = logits.masked_fill(~class_ok[:, None, None, :], float("-inf"))
    return per_model_ce(logits, targets, mask)


def train_models(
    models: Sequence[HookedTransformer],
    sources: Sequence[DataSource],
    cfg: TrainConfig,
    batched: bool = True,
    max_group: int = 64,
    on_model_done: Callable[[list[int]], None] | None = None,
    engine: str = "auto",
    labels: Sequence[str] | None = None,
) -> None:
    """Train every model in place: groups of equal :func:`group_key` together, the rest alone.

    ``on_model_done(indices)`` is called after each group (or lone model) finishes, so a caller
    can save results as they come.  ``batched=False`` trains every model with the ordinary loop.
    ``labels`` name the models in errors (a non-finite loss names the model, not its slot).
    """
    for chunk in plan_groups([m.config for m in models], batched, max_group):
        try:
            if len(chunk) == 1 or cfg.grad_mode != "vanilla":
                for i in chunk:
                    current = [i]
                    train(models[i], sources[i], cfg)
                    models[i].eval()
            else:
                current = chunk
                chunk_models = [models[i] for i in chunk]
                train_batched(chunk_models, [sources[i] for i in chunk], cfg, engine=engine)
        except NumericalError as e:
            if labels is None:
                raise
            raise e.replace(model=None, cell=labels[current[e.model or 0]]) from e
        if on_model_done:
            on_model_done(chunk)


def plan_groups(
    configs: Sequence[Any], batched: bool = True, max_group: int = 64
) -> list[list[int]]:
    """The groups :func:`train_models` trains together, as indices into ``configs`` (in the
    order it trains them): models of equal :func:`group_key`, split so that none is padded too
    much and none has more than ``max_group`` models; ``batched=False``: one model each.  A
    group passed to :func:`train_models` again is planned as that one group."""
    groups: dict[tuple, list[int]] = {}
    for i, c in enumerate(configs):
        groups.setdefault(group_key(c) if batched else ("solo", i), []).append(i)
    return [
        chunk
        for members in groups.values()
        for chunk in _chunks(members, [configs[i].n_ctx for i in members], max_group)
    ]


def _chunks(members: list[int], lengths: list[int], max_group: int) -> list[list[int]]:
    """Split a group so that no model is padded to more than ``MAX_PAD_RATIO`` x its length."""
    order = sorted(range(len(members)), key=lambda k: lengths[k])
    chunks: list[list[int]] = []
    start_len = None
    for k in order:
        if (
            not chunks
            or len(chunks[-1]) >= max_group
            or lengths[k] > MAX_PAD_RATIO * (start_len or 1)
        ):
            chunks.append([])
            start_len = lengths[k]
        chunks[-1].append(members[k])
    return chunks
