"""The hooked transformer's forward written once for a stack of models (the ``stacked`` engine of
:class:`interp.train.stacked.Stacked`).

Every weight carries a leading model dimension and every matmul is a ``bmm`` over it (no
per-model Python, no ``vmap``); Q/K/V are fused into one matmul, attention is the fused
``scaled_dot_product_attention``, and with ``positions`` the last block computes queries, MLP and
unembedding only at those positions (keys and values still see every position, so the logits
there are those of the full forward).  ``bench/count_sweep.py``: 1.5-2x faster than vmap.

It implements exactly the configurations in :data:`SUPPORTED` (an allow-list over every
:class:`~interp.config.ModelConfig` field); any other value, or a field added to ``ModelConfig``
later, is refused with :class:`~interp.errors.ConfigError` (``auto`` then trains through vmap).
``tests/test_batched.py`` checks it equal (<= 1e-5) to the solo model for every supported value.

Layout differences from the hooked model (AdamW is elementwise and the clipping norm covers all
of a model's entries, so the layout changes nothing but float rounding):

* ``blocks.{l}.attn.W_QKV`` [model d_model (3 head d_head)] and ``b_QKV`` [model (3 head d_head)]
  fuse W_Q, W_K, W_V and their biases (one matmul, as ``Attention.project`` does);
* ``blocks.{l}.attn.W_O`` is viewed as [model (head d_head) d_model].
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from interp.config import NORMALIZATIONS, ModelConfig
from interp.errors import ConfigError
from interp.models.block import ACTIVATIONS


class StackedForward:
    """A model's forward written once for stacked parameters ``{name: [model ...]}``.

    The default layout is the module's own: its parameter names and shapes with a leading model
    axis.  A forward may keep parameters in another layout (fused projections, say):
    ``to_stacked`` / ``from_stacked`` convert, ``sources(name)`` names the module parameters a
    stacked one is made of.  ``prepare`` turns ``[model ...]`` inputs into what the forward reads
    (done once for fixed inputs).  ``positions``: only these indices of the outputs' second-last
    axis are wanted (a forward may skip computing the others)."""

    def to_stacked(self, params: dict[str, Tensor]) -> dict[str, Tensor]:
        return params

    def from_stacked(self, params: dict[str, Tensor]) -> dict[str, Tensor]:
        return params

    def sources(self, name: str) -> tuple[str, ...]:
        return (name,)

    def prepare(self, inputs: Tensor) -> Any:
        return inputs

    def __call__(
        self, params: dict[str, Tensor], inputs: Any, positions: Tensor | None = None
    ) -> Tensor:
        raise NotImplementedError


ANY = None
#: Every ModelConfig field and the values this forward implements (``ANY``: whatever the value).
SUPPORTED: dict[str, tuple | None] = {
    "n_layers": ANY,
    "d_model": ANY,
    "n_heads": ANY,
    "d_head": ANY,
    "d_mlp": ANY,  # 0: attention only
    "n_ctx": ANY,
    "d_vocab": ANY,
    "act_fn": tuple(ACTIVATIONS),
    "normalization": NORMALIZATIONS,
    "positional": ("none", "absolute"),
    "positional_options": ({},),
    "tied_embeddings": (False,),
    "input_kind": ("tokens",),
    "d_input": ANY,  # read by vector input only
    "eps": ANY,
    "init_range": ANY,  # initialisation only
    "use_bias": ANY,  # frozen zero biases are added like trained ones
    "unembed_bias": (True,),  # b_U is read as a (stacked) parameter
}


def unsupported(cfg: ModelConfig) -> list[str]:
    """The fields of ``cfg`` this forward does not implement, as ``name=value``."""
    out = []
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if f.name not in SUPPORTED:
            out.append(f"{f.name} (a field it does not know)")
        elif SUPPORTED[f.name] is not ANY and value not in SUPPORTED[f.name]:
            out.append(f"{f.name}={value!r}")
    return out


def stacked_supported(cfg: ModelConfig) -> bool:
    return not unsupported(cfg)


_FUSED = {"W_QKV": ("W_Q", "W_K", "W_V"), "b_QKV": ("b_Q", "b_K", "b_V")}


class StackedTransformer(StackedForward):
    """The stacked forward of :class:`~interp.models.transformer.HookedTransformer` models of
    one config (``d_vocab`` / ``n_ctx`` those of the largest)."""

    def __init__(self, cfg: ModelConfig) -> None:
        bad = unsupported(cfg)
        if bad:
            raise ConfigError(
                f"the stacked engine does not implement {', '.join(bad)} (use the vmap engine)"
            )
        self.cfg = cfg

    def sources(self, name: str) -> tuple[str, ...]:
        prefix, _, leaf = name.rpartition(".")
        if leaf in _FUSED:
            return tuple(f"{prefix}.{s}" for s in _FUSED[leaf])
        return (name,)

    def to_stacked(self, params: dict[str, Tensor]) -> dict[str, Tensor]:
        out: dict[str, Tensor] = {}
        for name, p in params.items():
            prefix, _, leaf = name.rpartition(".")
            if leaf in ("W_K", "W_V", "b_K", "b_V"):
                continue
            if leaf == "W_Q":  # [model head d_model d_head] x3 -> [model d_model (3 head d_head)]
                w = torch.stack([params[f"{prefix}.{s}"] for s in _FUSED["W_QKV"]], 1)
                name, p = f"{prefix}.W_QKV", w.permute(0, 3, 1, 2, 4).flatten(2)
            elif leaf == "b_Q":  # [model head d_head] x3 -> [model (3 head d_head)]
                b = torch.stack([params[f"{prefix}.{s}"] for s in _FUSED["b_QKV"]], 1)
                name, p = f"{prefix}.b_QKV", b.flatten(1)
            elif leaf == "W_O":
                p = p.flatten(1, 2)
            out[name] = p.contiguous().clone()
        return out

    def from_stacked(self, params: dict[str, Tensor]) -> dict[str, Tensor]:
        heads, d_head, d_model = self.cfg.n_heads, self.cfg.head_dim, self.cfg.d_model
        out: dict[str, Tensor] = {}
        for name, p in params.items():
            prefix, _, leaf = name.rpartition(".")
            if leaf == "W_QKV":
                parts = p.view(p.shape[0], d_model, 3, heads, d_head).permute(0, 2, 3, 1, 4)
                for s, w in zip(_FUSED[leaf], parts.unbind(1), strict=True):
                    out[f"{prefix}.{s}"] = w
            elif leaf == "b_QKV":
                biases = p.view(p.shape[0], 3, heads, d_head).unbind(1)
                for s, b in zip(_FUSED[leaf], biases, strict=True):
                    out[f"{prefix}.{s}"] = b
            elif leaf == "W_O":
                out[name] = p.view(p.shape[0], heads, d_head, d_model)
            else:
                out[name] = p
        return out

    def __call__(
        self, p: dict[str, Tensor], inputs: Tensor, positions: Tensor | None = None
    ) -> Tensor:
        """Logits [model batch pos d_vocab] of tokens [model batch pos] (only at ``positions``)."""
        cfg = self.cfg
        n_models, batch, n_pos = inputs.shape
        w_e = p["embed.W_E"]  # [model vocab d_model]
        vocab, d_model = w_e.shape[1:]
        offsets = torch.arange(n_models, device=inputs.device).view(-1, 1, 1) * vocab
        x = F.embedding(inputs + offsets, w_e.reshape(-1, d_model))  # [model batch pos d_model]
        if "pos_embed.W_pos" in p:
            x = x + p["pos_embed.W_pos"][:, None, :n_pos]
        x = x.reshape(n_models, batch * n_pos, d_model)
        for layer in range(cfg.n_layers):
            last = positions if layer == cfg.n_layers - 1 else None
            x = self._block(p, f"blocks.{layer}", x, batch, n_pos, last)
        logits = _linear(p, "unembed.W_U", "unembed.b_U", _norm(p, "ln_final", cfg, x))
        return logits.view(n_models, batch, -1, vocab)

    def _block(
        self,
        p: dict[str, Tensor],
        pre: str,
        x: Tensor,
        batch: int,
        n_pos: int,
        scored: Tensor | None,
    ) -> Tensor:
        """One block; ``scored``: carry only these positions out of it (queries, MLP)."""
        cfg = self.cfg
        n_models, _, d_model = x.shape
        heads, d_head = cfg.n_heads, cfg.head_dim
        width = heads * d_head
        h = _norm(p, f"{pre}.ln1", cfg, x)
        w, b = p[f"{pre}.attn.W_QKV"], p[f"{pre}.attn.b_QKV"]
        if scored is None:
            qkv = torch.baddbmm(b[:, None], h, w).view(n_models * batch, n_pos, 3, heads, d_head)
            q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # [(model batch) head pos d_head]
            allowed, square = None, True
        else:  # queries only at the scored positions; keys and values everywhere
            kv = torch.baddbmm(b[:, None, width:], h, w[:, :, width:])
            k, v = (
                kv.view(n_models * batch, n_pos, 2, heads, d_head).permute(2, 0, 3, 1, 4).unbind(0)
            )
            x = x.view(n_models, batch, n_pos, d_model)[:, :, scored].reshape(n_models, -1, d_model)
            h = h.view(n_models, batch, n_pos, d_model)[:, :, scored].reshape(n_models, -1, d_model)
            q = torch.baddbmm(b[:, None, :width], h, w[:, :, :width])
            q = q.view(n_models * batch, len(scored), heads, d_head).transpose(1, 2)
            causal = torch.ones(n_pos, n_pos, dtype=torch.bool, device=x.device).tril()
            allowed, square = causal[scored], False
            if bool(allowed.all()):
                allowed = None
        # the hooked model's scale (1/sqrt(d_head)) and causal masking; the fused kernel differs
        # from its explicit softmax by float rounding only (~1e-7)
        z = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed, is_causal=square)
        z = z.transpose(1, 2).reshape(n_models, -1, width)  # [model rows (head d_head)]
        x = x + _linear(p, f"{pre}.attn.W_O", f"{pre}.attn.b_O", z)
        if cfg.d_mlp > 0:
            h = _norm(p, f"{pre}.ln2", cfg, x)
            act = ACTIVATIONS[cfg.act_fn](_linear(p, f"{pre}.mlp.W_in", f"{pre}.mlp.b_in", h))
            x = x + _linear(p, f"{pre}.mlp.W_out", f"{pre}.mlp.b_out", act)
        return x


def _norm(p: dict[str, Tensor], prefix: str, cfg: ModelConfig, x: Tensor) -> Tensor:
    """LayerNorm / RMSNorm / none with per-model gains; x [model rows d_model]."""
    if cfg.normalization == "layernorm":
        x = F.layer_norm(x, x.shape[-1:], eps=cfg.eps)
        return torch.addcmul(p[f"{prefix}.b"][:, None], x, p[f"{prefix}.w"][:, None])
    if cfg.normalization == "rmsnorm":
        scale = (x.pow(2).mean(-1, keepdim=True) + cfg.eps).sqrt()
        return x / scale * p[f"{prefix}.w"][:, None]
    return x


def _linear(p: dict[str, Tensor], w: str, b: str, x: Tensor) -> Tensor:
    return torch.baddbmm(p[b][:, None], x, p[w])
