"""Many models trained as one: every parameter stacked along a leading ``model`` axis.

A sweep of tiny models is dominated by Python overhead per model and step.  :class:`Stacked`
holds ``N`` models of one architecture as one module whose parameters are ``[model ...]``
tensors (each model's own values, zero-padded to the template's shapes), runs them all in one
forward, and :func:`interp.train.loop.fit` trains it like any model: the per-model losses are
summed for one backward (the models stay independent: their gradients are block-separate),
gradients are clipped per model, and one AdamW updates all (AdamW is elementwise, so that is
one AdamW per model).  :meth:`Stacked.unstack` copies the trained values back into the models.

The forward is one of two engines:

* ``vmap``: ``torch.func.vmap(functional_call(template, ...))`` over the real module, for any
  model (buffers are stacked too);
* a hand-batched forward (``stacked``), where the model class offers one through a
  ``stacked_forward()`` method returning a :class:`StackedForward`, which raises
  :class:`~interp.errors.ConfigError` for the configurations it does not implement.  These exist
  only where a bench shows them faster (``bench/count_sweep.py``, ``bench/grok_speed.py``) and
  are tested equal to the solo model; ``auto`` picks one where it applies, else vmap.

Which stacked parameters AdamW decays follows what the template's modules declare
(:mod:`interp.train.optim`); ``weight_decay`` gives each model its own decay.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.func import functional_call, vmap

from interp.errors import ConfigError
from interp.models.stacked_forward import StackedForward
from interp.train.optim import decay_split

ENGINES = ("auto", "stacked", "vmap")

__all__ = ["ENGINES", "Stacked", "StackedForward", "VmapForward"]


class VmapForward(StackedForward):
    """Any module, through ``vmap(functional_call(template, ...))`` over the model axis."""

    def __init__(self, template: nn.Module, buffers: dict[str, Tensor]) -> None:
        self.buffers = buffers  # [model ...] each

        def one(params: dict[str, Tensor], bufs: dict[str, Tensor], inputs: Tensor) -> Tensor:
            # no tied tensors are registered twice in our families (Unembed hides its tie)
            return functional_call(template, (params, bufs), (inputs,), tie_weights=False)

        self.all = vmap(one)

    def __call__(
        self, params: dict[str, Tensor], inputs: Any, positions: Tensor | None = None
    ) -> Tensor:
        out = self.all(params, self.buffers, inputs)
        return out if positions is None else out[..., positions, :]


def _pad_to(t: Tensor, shape: Sequence[int]) -> Tensor:
    if tuple(t.shape) == tuple(shape):
        return t.detach().clone()
    out = torch.zeros(shape, dtype=t.dtype, device=t.device)
    out[tuple(slice(0, s) for s in t.shape)] = t.detach()
    return out


def _stack(modules: Sequence[dict[str, Tensor]], template: dict[str, Tensor]) -> dict[str, Tensor]:
    """``{name: [model ...]}``: each module's tensor zero-padded to the template's shape."""
    return {
        name: torch.stack([_pad_to(own[name], ref.shape) for own in modules])
        for name, ref in template.items()
    }


class Stacked(nn.Module):
    """``models`` (one architecture; shapes at most the template's) trained as one module.

    ``template``: a model of the largest shapes (default ``models[0]``); ``engine``: ``auto``,
    ``stacked`` (the hand-batched forward, refused where it does not apply) or ``vmap``;
    ``weight_decay``: one AdamW weight decay per model (default: the optimizer's own).
    Calling the module runs every model on its own inputs: ``[model ...]`` in, ``[model ...]``
    outputs out.  Parameters are registered under their names with ``.`` written ``-``.
    """

    def __init__(
        self,
        models: Sequence[nn.Module],
        template: nn.Module | None = None,
        engine: str = "auto",
        weight_decay: Sequence[float] | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        super().__init__()
        if not models:
            raise ConfigError("stacked training needs at least one model")
        template = models[0] if template is None else template
        self.models = list(models)  # not submodules: they receive the result in unstack()
        buffers = _stack([dict(m.named_buffers()) for m in models], dict(template.named_buffers()))
        self.engine = _engine(template, engine, {k: b.to(device) for k, b in buffers.items()})
        hooked = _stack(
            [dict(m.named_parameters()) for m in models], dict(template.named_parameters())
        )
        trainable = {n for n, p in template.named_parameters() if p.requires_grad}
        decayed_ids = {id(p) for p in decay_split(template)[0]}
        decayed = {n for n, p in template.named_parameters() if id(p) in decayed_ids}
        self.params: dict[str, nn.Parameter] = {}
        exempt = []
        for name, value in self.engine.to_stacked(hooked).items():
            sources = self.engine.sources(name)
            grad, decay = ({s in trainable for s in sources}, {s in decayed for s in sources})
            if len(grad) != 1 or len(decay) != 1:
                raise ValueError(f"{name} is made of parameters that train or decay differently")
            param = nn.Parameter(value.to(device).contiguous().clone(), requires_grad=grad.pop())
            self.register_parameter(name.replace(".", "-"), param)
            self.params[name] = param
            if not decay.pop():
                exempt.append(name.replace(".", "-"))
        self.no_decay = tuple(exempt)  # read by interp.train.optim
        self.model_weight_decay = (
            None if weight_decay is None else torch.tensor(list(weight_decay), dtype=torch.float64)
        )

    @property
    def n_models(self) -> int:
        return len(self.models)

    def prepare(self, inputs: Tensor) -> Any:
        """Fixed ``[model ...]`` inputs as the engine reads them (once, not every step)."""
        return self.engine.prepare(inputs)

    def forward(self, inputs: Any, positions: Tensor | None = None) -> Tensor:
        return self.engine(self.params, inputs, positions)

    def clip_grad_norms_(self, max_norm: float) -> Tensor:
        """Each model's gradient norm over all its parameters ``[model]``; with ``max_norm > 0``
        the gradients are clipped per model first, as ``clip_grad_norm_`` clips one model."""
        grads = [p.grad for p in self.parameters() if p.grad is not None]
        norms = torch.stack([g.reshape(self.n_models, -1).norm(dim=1) for g in grads]).norm(dim=0)
        if max_norm > 0:
            coef = (max_norm / (norms + 1e-6)).clamp(max=1.0)
            for g in grads:
                g.mul_(coef.view(-1, *([1] * (g.ndim - 1))))
        return norms

    @torch.no_grad()
    def unstack(self) -> None:
        """Copy each model's trained values back into it (cut to its own shapes)."""
        final = self.engine.from_stacked({name: p.detach() for name, p in self.params.items()})
        for i, model in enumerate(self.models):
            own = dict(model.named_parameters())
            for name, stacked in final.items():
                target = own[name]
                piece = stacked[i][tuple(slice(0, s) for s in target.shape)]
                target.copy_(piece.to(target.device))


def _engine(template: nn.Module, engine: str, buffers: dict[str, Tensor]) -> StackedForward:
    """The hand-batched forward the template offers (``stacked``, or ``auto`` where it applies),
    else vmap."""
    if engine not in ENGINES:
        raise ConfigError(f"unknown batched engine {engine!r}; choose {', '.join(ENGINES)}")
    offered = getattr(template, "stacked_forward", None)
    if engine == "stacked" and offered is None:
        raise ConfigError(f"{type(template).__name__} has no stacked engine (use vmap)")
    if engine != "vmap" and offered is not None:
        try:
            return offered()
        except ConfigError:
            if engine == "stacked":
                raise
    return VmapForward(template, buffers)
