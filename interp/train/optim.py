"""The optimizer of every trainer: AdamW, which parameters it decays, and the learning rate.

Which parameters are decayed is declared by the modules that own them, never guessed from names:

* ``no_decay`` on a module names its own parameters AdamW leaves undecayed (a position table,
  norm gains, biases); everything else is decayed;
* ``decay_all = True`` on a module decays every parameter below it, whatever the modules inside
  declare (the grokking models: PAIR and Nanda et al. decay all their parameters);
* ``model_weight_decay`` (a ``[model]`` tensor) on a module holding many models stacked along a
  leading axis (:class:`interp.train.stacked.Stacked`) gives each model its own weight decay.

Two settings feed :func:`build_optimizer` and :func:`schedule`: :class:`~interp.config.OptimConfig`
(linear warmup, then cosine decay to ``min_lr_ratio * lr``; gradient clipping) for minibatch
training, and :class:`Optim` (a constant learning rate, no clipping: the grokking papers').
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from interp.config import OptimConfig

Schedule = Callable[[int], float]  # step -> learning rate

__all__ = ["Optim", "Schedule", "build_optimizer", "decay_split", "lr_at", "schedule"]


@dataclass(frozen=True)
class Optim:
    """The grokking papers' AdamW: lr 1e-3, betas (0.9, 0.98), decoupled weight decay; constant
    after ``warmup`` steps of Nanda et al.'s linear warmup ``lr * min(step / warmup, 1)``
    (``LambdaLR(lambda step: min(step/10, 1))``: lr 0 at the first step)."""

    lr: float = 1e-3
    weight_decay: float = 1.0
    beta1: float = 0.9
    beta2: float = 0.98
    warmup: int = 0


def decay_split(model: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """The trainable parameters of ``model`` AdamW decays, and those it does not, each in
    ``model.parameters()`` order, as the modules owning them declare (see the module docstring)."""
    decayed: list[nn.Parameter] = []
    kept: list[nn.Parameter] = []
    seen: set[int] = set()

    def walk(module: nn.Module, exempt_allowed: bool) -> None:
        exempt = set(getattr(module, "no_decay", ())) if exempt_allowed else set()
        unknown = exempt - set(module._parameters) - set(module._buffers)  # b_U may be a buffer
        if unknown:
            raise ValueError(
                f"{type(module).__name__}.no_decay names no parameter {sorted(unknown)}"
            )
        for name, p in module.named_parameters(recurse=False):
            if p.requires_grad and id(p) not in seen:
                seen.add(id(p))
                (kept if name in exempt else decayed).append(p)
        for child in module.children():
            walk(child, exempt_allowed and not getattr(child, "decay_all", False))

    walk(model, not getattr(model, "decay_all", False))
    return decayed, kept


def build_optimizer(
    model: nn.Module, cfg: OptimConfig | Optim, foreach: bool | None = None
) -> torch.optim.AdamW:
    """AdamW over the trainable parameters of ``model``: decayed ones with ``cfg.weight_decay``
    (or their module's ``model_weight_decay``), the rest with none.  Empty groups are left out
    (a model that decays everything has one group).

    ``foreach=True``: one call per update for all tensors, bit-identical to torch's per-tensor
    default on CPU and about half its time for many small tensors (stacked models pass it: their
    step was a hand-written foreach AdamW); it holds a temporary the size of the parameters
    during a step.  ``None``: torch's default (per tensor on CPU)."""
    decayed, kept = decay_split(model)
    per_model = _per_model_decays(model, decayed)
    shared = [p for p in decayed if id(p) not in per_model]
    groups = [
        {"params": shared, "weight_decay": cfg.weight_decay},
        {"params": [p for p in decayed if id(p) in per_model], "weight_decay": 0.0},
        {"params": kept, "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(
        [g for g in groups if g["params"]],
        lr=cfg.lr,
        betas=(cfg.beta1, cfg.beta2),
        eps=1e-8,
        foreach=foreach,
    )
    if per_model:
        optimizer.register_step_pre_hook(_decay_each_model(per_model))
    return optimizer


def _per_model_decays(model: nn.Module, decayed: list[nn.Parameter]) -> dict[int, Tensor]:
    """``id(parameter) -> [model]`` weight decays, for decayed parameters of stacked modules."""
    wanted = {id(p) for p in decayed}
    out: dict[int, Tensor] = {}
    for module in model.modules():
        decays = getattr(module, "model_weight_decay", None)
        if decays is None:
            continue
        for p in module.parameters(recurse=False):
            if id(p) in wanted:
                out[id(p)] = decays
    return out


def _decay_each_model(decays: dict[int, Tensor]) -> Callable[..., None]:
    """AdamW's decoupled decay ``w <- w (1 - lr wd)`` with one ``wd`` per stacked model, before
    the step (torch's AdamW takes one weight decay per group; the step itself is torch's)."""

    @torch.no_grad()
    def hook(optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        for group in optimizer.param_groups:
            for p in group["params"]:
                if id(p) in decays:
                    factor = (1 - group["lr"] * decays[id(p)]).to(p.device, p.dtype)
                    p.mul_(factor.view(-1, *([1] * (p.ndim - 1))))

    return hook


def lr_at(step: int, total_steps: int, cfg: OptimConfig) -> float:
    """Linear warmup over ``warmup_steps``, then cosine decay to ``min_lr_ratio * lr``."""
    if cfg.warmup_steps and step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    span = max(1, total_steps - cfg.warmup_steps)
    progress = min(1.0, (step - cfg.warmup_steps) / span)
    cosine = 0.5 * (1 + math.cos(math.pi * progress))
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * cosine)


def schedule(cfg: OptimConfig | Optim, total_steps: int) -> Schedule:
    """The learning rate at each step (0-based, the steps done before it): warmup + cosine for
    ``OptimConfig``; for ``Optim`` constant after its linear warmup."""
    if isinstance(cfg, Optim):
        if cfg.warmup:
            return lambda step: cfg.lr * min(step / cfg.warmup, 1.0)
        return lambda step: cfg.lr
    return lambda step: lr_at(step, total_steps, cfg)
