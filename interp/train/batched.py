"""Train many small hooked models at once: ``torch.func`` stacking + ``vmap`` + a stacked AdamW.

A sweep of tiny models is dominated by Python overhead per model and step.  Models whose
configs agree on everything but ``d_vocab`` and ``n_ctx`` are trained together here: their
parameters are stacked (``torch.func.stack_module_state``) and one ``vmap(functional_call(...))``
runs all forwards and backwards in one pass; AdamW updates all models with a few ``torch._foreach``
calls on the stacked tensors.

Each model gets exactly what :func:`interp.train.loop.train` would give it alone (same
initialisation, same batches from its own :class:`~interp.train.sources.DataSource`, same
warmup + cosine schedule, per-model gradient clipping, AdamW with decay on matrices only), up
to float rounding (checked <= 1e-5 in ``tests/test_batched.py``).  Differing vocabularies and
lengths are padded in ways that leave every model's scored outputs unchanged:

* ``d_vocab``: the stacked embedding / unembedding get the largest vocabulary; a model's
  unused input rows are never indexed, and its unused output classes are masked to ``-inf``
  before the loss (zero probability, zero gradient);
* sequence length: shorter batches are right-padded with token 0 and an all-False mask; with
  causal attention a position never sees later ones, so scored positions are untouched;
* ``n_ctx``: the largest is used; rows of a position table past a model's length only reach
  padded positions.

Groups: :func:`group_key` (everything but ``d_vocab``/``n_ctx``), split so no model is padded
past ``MAX_PAD_RATIO`` times its context (padding is compute spent on nothing);
:func:`train_models` trains each group of two or more together and falls back to the ordinary
loop for a lone model.
Only vanilla gradients and classification (``ce``) batches are batched.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.func import functional_call, stack_module_state, vmap

from interp.config import ModelConfig, TrainConfig
from interp.errors import ConfigError, NumericalError
from interp.models.transformer import HookedTransformer
from interp.tasks.base import Batch
from interp.train.schedule import lr_at
from interp.train.sources import DataSource

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


def _pad_to(t: Tensor, shape: Sequence[int]) -> Tensor:
    if tuple(t.shape) == tuple(shape):
        return t.detach().clone()
    out = torch.zeros(shape, dtype=t.dtype, device=t.device)
    out[tuple(slice(0, s) for s in t.shape)] = t.detach()
    return out


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


def train_batched(
    models: Sequence[HookedTransformer],
    sources: Sequence[DataSource],
    cfg: TrainConfig,
    on_step: Callable[[int], None] | None = None,
) -> list[BatchedResult]:
    """Train ``models`` (same :func:`group_key`) together, in place, for ``cfg.steps`` steps."""
    if not models or len(models) != len(sources):
        raise ConfigError("train_batched needs one data source per model, and at least one model")
    keys = {group_key(m.cfg) for m in models}
    if len(keys) != 1:
        raise ConfigError("models trained together must share every config field but d_vocab/n_ctx")
    if cfg.grad_mode != "vanilla":
        raise ConfigError("batched training supports vanilla gradients only")
    device = cfg.device
    base = models[0].cfg
    padded_cfg = base.replace(
        d_vocab=max(m.cfg.d_vocab for m in models), n_ctx=max(m.cfg.n_ctx for m in models)
    )
    template = HookedTransformer(padded_cfg, seed=None).to(device)
    shapes = {name: p.shape for name, p in template.named_parameters()}
    buffers = {name: b for name, b in template.named_buffers()}
    trainable = {name for name, p in template.named_parameters() if p.requires_grad}

    if all(m.cfg == base for m in models):
        params, _ = stack_module_state(list(models))
    else:  # pad each parameter to the group's largest shape, then stack
        own = [dict(m.named_parameters()) for m in models]
        params = {
            name: torch.stack([_pad_to(o[name], shapes[name]) for o in own]) for name in shapes
        }
    params = {
        name: p.detach().clone().to(device).requires_grad_(name in trainable)
        for name, p in params.items()
    }
    names = [n for n in params if n in trainable]
    decay = [n for n in names if params[n].ndim - 1 >= 2 and n.rsplit(".", 1)[-1] != "W_pos"]
    n_models = len(models)
    class_ok = torch.stack([torch.arange(padded_cfg.d_vocab) < m.cfg.d_vocab for m in models]).to(
        device
    )  # [model d_vocab]

    def forward_one(p: dict[str, Tensor], inputs: Tensor) -> Tensor:
        # no tied tensors are registered twice in our family (Unembed hides its tie in a list)
        return functional_call(template, (p, buffers), (inputs,), tie_weights=False)

    forward_all = vmap(forward_one, in_dims=(0, 0))
    o = cfg.optim
    exp_avg = [torch.zeros_like(params[n]) for n in names]
    exp_avg_sq = [torch.zeros_like(params[n]) for n in names]
    records = [BatchedResult(float("nan"), []) for _ in models]

    for step in range(cfg.steps):
        lr = lr_at(step, cfg.steps, o)
        inputs, targets, mask = (
            t.to(device) for t in _stack_batches([s.train_batch(step) for s in sources])
        )
        logits = forward_all(params, inputs)  # [model batch pos d_vocab]
        logits = logits.masked_fill(~class_ok[:, None, None, :], float("-inf"))
        ce = F.cross_entropy(
            logits.flatten(0, 2).float(), targets.flatten(), reduction="none"
        ).view(targets.shape)
        per_model = (ce * mask).sum((1, 2)) / mask.sum((1, 2)).clamp(min=1)  # [model]
        values = per_model.detach().tolist()
        for i, v in enumerate(values):
            if not math.isfinite(v):
                raise NumericalError(f"loss of model {i} is {v} at step {step}; stopping")
        grads = torch.autograd.grad(per_model.sum(), [params[n] for n in names])
        grads = _clip_per_model(list(grads), o.grad_clip, n_models)
        _adamw_step(
            [params[n] for n in names],
            grads,
            exp_avg,
            exp_avg_sq,
            step + 1,
            lr,
            o,
            [n in decay for n in names],
        )
        done = step + 1
        if done % cfg.log_every == 0 or done == cfg.steps:
            for rec, v in zip(records, values, strict=True):
                rec.losses.append((done, v))
        if on_step:
            on_step(done)
    for rec in records:
        rec.final_loss = rec.losses[-1][1] if rec.losses else float("nan")

    with torch.no_grad():
        for i, model in enumerate(models):
            own = dict(model.named_parameters())
            for name, stacked in params.items():
                target = own[name]
                piece = stacked[i][tuple(slice(0, s) for s in target.shape)]
                target.copy_(piece.to(target.device))
    return records


def _clip_per_model(grads: list[Tensor], max_norm: float, n_models: int) -> list[Tensor]:
    """``clip_grad_norm_`` applied to each model separately (norm over all its parameters)."""
    norms = torch.stack([g.reshape(n_models, -1).norm(dim=1) for g in grads])  # [param model]
    total = norms.norm(dim=0)  # [model]
    if not torch.isfinite(total).all():
        bad = int((~torch.isfinite(total)).nonzero()[0])
        raise NumericalError(f"gradient norm of model {bad} is not finite; stopping")
    if max_norm <= 0:
        return grads
    coef = (max_norm / (total + 1e-6)).clamp(max=1.0)
    return [g * coef.view(-1, *([1] * (g.ndim - 1))) for g in grads]


@torch.no_grad()
def _adamw_step(
    params: list[Tensor],
    grads: list[Tensor],
    exp_avg: list[Tensor],
    exp_avg_sq: list[Tensor],
    step: int,
    lr: float,
    o: Any,
    decayed: list[bool],
) -> None:
    """``torch.optim.AdamW`` (single-tensor algorithm) on stacked tensors; same lr for all models."""
    with_decay = [p for p, d in zip(params, decayed, strict=True) if d]
    if with_decay and o.weight_decay:
        torch._foreach_mul_(with_decay, 1 - lr * o.weight_decay)
    torch._foreach_lerp_(exp_avg, grads, 1 - o.beta1)
    torch._foreach_mul_(exp_avg_sq, o.beta2)
    torch._foreach_addcmul_(exp_avg_sq, grads, grads, value=1 - o.beta2)
    bias1 = 1 - o.beta1**step
    bias2_sqrt = (1 - o.beta2**step) ** 0.5
    denom = torch._foreach_sqrt(exp_avg_sq)
    torch._foreach_div_(denom, bias2_sqrt)
    torch._foreach_add_(denom, 1e-8)
    torch._foreach_addcdiv_(params, exp_avg, denom, value=-lr / bias1)


def train_models(
    models: Sequence[HookedTransformer],
    sources: Sequence[DataSource],
    cfg: TrainConfig,
    batched: bool = True,
    max_group: int = 64,
    on_model_done: Callable[[list[int]], None] | None = None,
) -> None:
    """Train every model in place: groups of equal :func:`group_key` together, the rest alone.

    ``on_model_done(indices)`` is called after each group (or lone model) finishes, so a caller
    can save results as they come.  ``batched=False`` trains every model with the ordinary loop.
    """
    from interp.train.loop import train as train_one

    groups: dict[tuple, list[int]] = {}
    for i, m in enumerate(models):
        groups.setdefault(group_key(m.cfg) if batched else ("solo", i), []).append(i)
    for members in groups.values():
        for chunk in _chunks(members, [models[i].cfg.n_ctx for i in members], max_group):
            if len(chunk) == 1 or cfg.grad_mode != "vanilla":
                for i in chunk:
                    train_one(models[i], sources[i], cfg)
                    models[i].eval()
            else:
                train_batched([models[i] for i in chunk], [sources[i] for i in chunk], cfg)
            if on_model_done:
                on_model_done(chunk)


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
