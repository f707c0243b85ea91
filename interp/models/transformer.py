"""The hooked decoder-only transformer: one model family for every analysis.

Built on ``transformer_lens.HookedRootModule`` + ``HookPoint`` with TransformerLens hook names,
so ``run_with_cache`` / ``run_with_hooks`` work as TransformerLens users expect:

    hook_embed, hook_pos_embed (additive encodings only)         [batch pos d_model]
    blocks.{l}.hook_resid_pre | hook_resid_mid | hook_resid_post [batch pos d_model]
    blocks.{l}.attn.hook_q | hook_k | hook_v | hook_z            [batch pos head_index d_head]
    blocks.{l}.attn.hook_attn_scores | hook_pattern              [batch head_index query_pos key_pos]
    blocks.{l}.hook_attn_out | hook_mlp_out                      [batch pos d_model]
    blocks.{l}.mlp.hook_pre | hook_post                          [batch pos d_mlp]
    ln_final.hook_normalized                                     [batch pos d_model]
"""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from torch import Tensor, nn
from transformer_lens import HookedRootModule
from transformer_lens.hook_points import HookPoint

from interp.config import ModelConfig
from interp.models.block import TransformerBlock
from interp.models.norm import NORMS
from interp.models.positional import build_positional
from interp.models.stacked_forward import StackedTransformer
from interp.models.tl_surface import TransformerLensSurface, tl_config

ReturnType = Literal["logits", "loss", "both", "resid"] | None


class Embed(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.W_E = nn.Parameter(torch.empty(cfg.d_vocab, cfg.d_model))

    def forward(self, tokens: Int[Tensor, "batch pos"]) -> Float[Tensor, "batch pos d_model"]:
        return self.W_E[tokens]


class VectorEmbed(nn.Module):
    """Linear embedding of real-valued inputs (regression tasks)."""

    no_decay = ("b_E",)  # the bias is not decayed (interp.train.optim)

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.W_E = nn.Parameter(torch.empty(cfg.d_input, cfg.d_model))
        self.b_E = nn.Parameter(torch.zeros(cfg.d_model))

    def forward(self, x: Float[Tensor, "batch pos d_input"]) -> Float[Tensor, "batch pos d_model"]:
        return x @ self.W_E + self.b_E


class Unembed(nn.Module):
    no_decay = ("b_U",)  # the bias is not decayed (interp.train.optim)

    def __init__(self, cfg: ModelConfig, tied_to: Embed | None) -> None:
        super().__init__()
        self.tied_to = [tied_to] if tied_to is not None else []  # a list hides it from .modules()
        if tied_to is None:
            self.W_U = nn.Parameter(torch.empty(cfg.d_model, cfg.d_vocab))
        if cfg.unembed_bias:
            self.b_U = nn.Parameter(torch.zeros(cfg.d_vocab), requires_grad=cfg.use_bias)
        else:  # no such parameter (GPT-2): a zero buffer, outside the state dict, never trained
            self.register_buffer("b_U", torch.zeros(cfg.d_vocab), persistent=False)

    @property
    def weight(self) -> Float[Tensor, "d_model d_vocab"]:
        return self.tied_to[0].W_E.T if self.tied_to else self.W_U

    def forward(self, x: Float[Tensor, "batch pos d_model"]) -> Float[Tensor, "batch pos d_vocab"]:
        return x @ self.weight + self.b_U


def check_model_config(cfg: ModelConfig) -> None:
    """Refuse a model config no model can be built from: its fields
    (:meth:`ModelConfig.validate`), then its positional encoding's name and options (the
    registry's).  What the constructor checks, without building the model."""
    cfg.validate()
    build_positional(cfg)


class HookedTransformer(TransformerLensSurface, HookedRootModule):
    """A decoder-only transformer of the interp family, configured by :class:`ModelConfig`.

    ``model.config`` is that ModelConfig; ``model.cfg`` is TransformerLens' config of the model
    (``n_layers``, ``d_model``, ``n_ctx``, ``d_vocab``, ... read the same on TransformerBridge
    models).  The TransformerLens surface (``to_tokens``, ``generate``, ``run_with_cache`` ->
    ``ActivationCache``, ``W_Q`` ...) is :class:`~interp.models.tl_surface.TransformerLensSurface`.
    """

    def __init__(self, cfg: ModelConfig, seed: int | None = 0) -> None:
        super().__init__()
        cfg.validate()  # configs are inert: checked where a model is built
        self.config = cfg
        self._tl_cfg = tl_config(cfg)
        self.tokenizer: Any = None
        self.task: Any = None
        encoding = build_positional(cfg)
        self.embed = VectorEmbed(cfg) if cfg.input_kind == "vector" else Embed(cfg)
        self.hook_embed = HookPoint()  # [batch, pos, d_model]
        self.pos_embed = encoding.embedding()
        if self.pos_embed is not None:
            self.hook_pos_embed = HookPoint()  # [batch, pos, d_model]
        self.blocks = nn.ModuleList(
            [TransformerBlock(cfg, encoding.attention(layer)) for layer in range(cfg.n_layers)]
        )
        self.ln_final = NORMS[cfg.normalization](cfg.d_model, cfg.eps)
        tied = self.embed if cfg.tied_embeddings and isinstance(self.embed, Embed) else None
        self.unembed = Unembed(cfg, tied)
        if seed is not None:
            self.init_weights(seed)
        self.setup()

    # ------------------------------------------------------------------ init
    @torch.no_grad()
    def init_weights(self, seed: int) -> None:
        """GPT-2 style init from an explicit generator (independent of global RNG state)."""
        g = torch.Generator().manual_seed(seed)
        std = self.config.init_range
        out_std = std / (2 * self.config.n_layers) ** 0.5
        for name, p in self.named_parameters():
            leaf = name.rsplit(".", 1)[-1]
            if leaf in ("W_O", "W_out"):
                p.copy_(torch.randn(p.shape, generator=g) * out_std)
            elif leaf.startswith("W_"):
                p.copy_(torch.randn(p.shape, generator=g) * std)
            elif leaf == "w":
                p.fill_(1.0)
            else:
                p.zero_()
        for module in self.modules():  # tables initialised their own way (RAM's rel: N(0, 1/d))
            init_from = getattr(module, "init_from", None)
            if callable(init_from):
                init_from(g)

    def earlier_variant(self, state: dict[str, Tensor]) -> dict[str, Any]:
        """The ``positional_options`` under which ``state`` (weights of an earlier definition
        of this model's positional encoding, e.g. CoPE's per-head tables) loads; ``{}`` when
        it needs none or is something else."""
        expected = {name: tuple(t.shape) for name, t in self.state_dict().items()}
        return build_positional(self.config).earlier_variant(state, expected)[0]

    def explain_weights(self, state: dict[str, Tensor]) -> str | None:
        """Why ``state`` does not fit this model, when its positional encoding knows (weights of
        an earlier definition of it, e.g. CoPE's per-head tables); see
        :func:`interp.train.checkpoint.load_model_weights`."""
        expected = {name: tuple(t.shape) for name, t in self.state_dict().items()}
        return build_positional(self.config).explain_weights(state, expected)

    # ------------------------------------------------------------------ forward
    def embed_input(self, inputs: Tensor) -> Float[Tensor, "batch pos d_model"]:
        resid = self.hook_embed(self.embed(inputs))
        if self.pos_embed is not None:
            positions = torch.arange(inputs.shape[1], device=resid.device)
            pos = self.pos_embed(positions).to(resid.dtype)
            resid = resid + self.hook_pos_embed(pos.unsqueeze(0).expand(resid.shape[0], -1, -1))
        return resid

    def forward(
        self,
        inputs: Int[Tensor, "batch pos"] | Float[Tensor, "batch pos d_input"] | str | list[str],
        return_type: ReturnType = "logits",
        stop_at_layer: int | None = None,
        prepend_bos: bool | None = None,
    ) -> Any:
        """Map inputs to logits (or the loss, both, or the residual stream at ``stop_at_layer``).

        ``return_type="loss"`` is the mean next-token cross-entropy (token input only).  Text
        (a string or a list of strings) is tokenised first with :meth:`to_tokens`.
        """
        if not isinstance(inputs, Tensor):
            inputs = self._as_input(inputs, prepend_bos)
        n_pos = inputs.shape[1]
        if n_pos > self.config.n_ctx and self.pos_embed is not None:
            raise ValueError(
                f"sequence length {n_pos} exceeds the model context {self.config.n_ctx}"
            )
        resid = self.embed_input(inputs)
        for block in self.blocks[:stop_at_layer]:
            resid = block(resid)
        if stop_at_layer is not None or return_type == "resid":
            return resid
        logits = self.unembed(self.ln_final(resid))
        if return_type == "logits":
            return logits
        if return_type is None:
            return None
        loss = lm_loss(logits, inputs)
        return loss if return_type == "loss" else (logits, loss)

    def stacked_forward(self) -> Any:
        """This model's forward written once for many stacked models of its config
        (:mod:`interp.models.stacked_forward`, used by :class:`interp.train.stacked.Stacked`);
        ``ConfigError`` for a config outside its allow-list (those train stacked through vmap)."""

        return StackedTransformer(self.config)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device


def lm_loss(
    logits: Float[Tensor, "batch pos d_vocab"],
    tokens: Int[Tensor, "batch pos"],
    per_position: bool = False,
) -> Tensor:
    """Next-token cross-entropy: mean, or per position [pos - 1] averaged over the batch."""
    losses = F.cross_entropy(
        logits[:, :-1].flatten(0, 1).float(), tokens[:, 1:].flatten(), reduction="none"
    ).view(tokens.shape[0], -1)
    return losses.mean(0) if per_position else losses.mean()
