"""Normalisation layers with TransformerLens hook points (hook_scale, hook_normalized)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor, nn
from transformer_lens.hook_points import HookPoint


def listened(hook: HookPoint) -> bool:
    """Whether anything is attached to ``hook`` (run_with_cache / run_with_hooks / add_hook)."""
    return bool(hook.fwd_hooks or hook.bwd_hooks or hook._forward_hooks or hook._backward_hooks)


class LayerNorm(nn.Module):
    """LayerNorm; the fused kernel runs unless something listens to ``hook_scale``.

    With a hook on ``hook_scale`` the explicit form runs, so patching the scale changes the output
    as TransformerLens users expect.  Both forms agree to float rounding (~1e-7).
    """

    no_decay = ("w", "b")  # norm gain and bias: AdamW leaves them undecayed (interp.train.optim)

    def __init__(self, d_model: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.w = nn.Parameter(torch.ones(d_model))
        self.b = nn.Parameter(torch.zeros(d_model))
        self.hook_scale = HookPoint()  # [batch, pos, 1]
        self.hook_normalized = HookPoint()  # [batch, pos, d_model]

    def forward(self, x: Float[Tensor, "batch pos d_model"]) -> Float[Tensor, "batch pos d_model"]:
        if not listened(self.hook_scale):
            return self.hook_normalized(F.layer_norm(x, x.shape[-1:], self.w, self.b, self.eps))
        x = x - x.mean(-1, keepdim=True)
        scale = self.hook_scale((x.pow(2).mean(-1, keepdim=True) + self.eps).sqrt())
        return self.hook_normalized(x / scale * self.w + self.b)


class RMSNorm(nn.Module):
    no_decay = ("w",)  # the norm gain is not decayed (interp.train.optim)

    def __init__(self, d_model: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.w = nn.Parameter(torch.ones(d_model))
        self.hook_scale = HookPoint()  # [batch, pos, 1]
        self.hook_normalized = HookPoint()  # [batch, pos, d_model]

    def forward(self, x: Float[Tensor, "batch pos d_model"]) -> Float[Tensor, "batch pos d_model"]:
        scale = self.hook_scale((x.pow(2).mean(-1, keepdim=True) + self.eps).sqrt())
        return self.hook_normalized(x / scale * self.w)


class NoNorm(nn.Module):
    """Identity, keeping ``hook_normalized`` so analyses read every model the same way."""

    def __init__(self, d_model: int, eps: float) -> None:
        super().__init__()
        self.hook_normalized = HookPoint()  # [batch, pos, d_model]

    def forward(self, x: Float[Tensor, "batch pos d_model"]) -> Float[Tensor, "batch pos d_model"]:
        return self.hook_normalized(x)


NORMS: dict[str, type[nn.Module]] = {"layernorm": LayerNorm, "rmsnorm": RMSNorm, "none": NoNorm}
