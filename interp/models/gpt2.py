"""Import Hugging Face GPT-2 checkpoints into the hooked family (exact logits)."""

from __future__ import annotations

from typing import Any

import torch
from einops import rearrange

from interp.config import ModelConfig
from interp.errors import LoadError
from interp.models.transformer import HookedTransformer

_ACTS = {
    "gelu_new": "gelu_new",
    "gelu_pytorch_tanh": "gelu_new",
    "gelu": "gelu",
    "relu": "relu",
    "silu": "silu",
}


def gpt2_config(hf_cfg: Any) -> ModelConfig:
    act = getattr(hf_cfg, "activation_function", "gelu_new")
    if act not in _ACTS:
        raise LoadError(f"GPT-2 activation {act!r} is not supported")
    for flag in ("scale_attn_by_inverse_layer_idx", "reorder_and_upcast_attn"):
        if getattr(hf_cfg, flag, False):
            raise LoadError(f"GPT-2 option {flag}=True is not supported by the importer")
    if not getattr(hf_cfg, "scale_attn_weights", True):
        raise LoadError("GPT-2 option scale_attn_weights=False is not supported by the importer")
    n_embd = hf_cfg.n_embd
    return ModelConfig(
        n_layers=hf_cfg.n_layer,
        d_model=n_embd,
        n_heads=hf_cfg.n_head,
        d_mlp=hf_cfg.n_inner or 4 * n_embd,
        n_ctx=hf_cfg.n_positions,
        d_vocab=hf_cfg.vocab_size,
        act_fn=_ACTS[act],
        normalization="layernorm",
        positional="absolute",
        tied_embeddings=True,
        unembed_bias=False,  # GPT-2's head has no bias
        eps=hf_cfg.layer_norm_epsilon,
        init_range=getattr(hf_cfg, "initializer_range", 0.02),
    )


@torch.no_grad()
def from_hf_gpt2(hf_model: Any) -> HookedTransformer:
    """Convert a ``transformers`` ``GPT2LMHeadModel`` into a :class:`HookedTransformer`."""
    cfg = gpt2_config(hf_model.config)
    sd = {k.removeprefix("transformer."): v.float() for k, v in hf_model.state_dict().items()}
    model = HookedTransformer(cfg, seed=None)
    n_heads = cfg.n_heads
    new: dict[str, torch.Tensor] = {
        "embed.W_E": sd["wte.weight"],
        "pos_embed.W_pos": sd["wpe.weight"],
        "ln_final.w": sd["ln_f.weight"],
        "ln_final.b": sd["ln_f.bias"],
    }
    for layer in range(cfg.n_layers):
        p, b = f"h.{layer}.", f"blocks.{layer}."
        new[b + "ln1.w"], new[b + "ln1.b"] = sd[p + "ln_1.weight"], sd[p + "ln_1.bias"]
        new[b + "ln2.w"], new[b + "ln2.b"] = sd[p + "ln_2.weight"], sd[p + "ln_2.bias"]
        W_qkv = sd[p + "attn.c_attn.weight"].chunk(3, dim=1)  # Conv1D: [d_model, 3 d_model]
        b_qkv = sd[p + "attn.c_attn.bias"].chunk(3, dim=0)
        for name, W, bias in zip("QKV", W_qkv, b_qkv, strict=True):
            new[b + f"attn.W_{name}"] = rearrange(
                W, "d_model (head_index d_head) -> head_index d_model d_head", head_index=n_heads
            )
            new[b + f"attn.b_{name}"] = rearrange(
                bias, "(head_index d_head) -> head_index d_head", head_index=n_heads
            )
        new[b + "attn.W_O"] = rearrange(
            sd[p + "attn.c_proj.weight"],
            "(head_index d_head) d_model -> head_index d_head d_model",
            head_index=n_heads,
        )
        new[b + "attn.b_O"] = sd[p + "attn.c_proj.bias"]
        new[b + "mlp.W_in"], new[b + "mlp.b_in"] = (
            sd[p + "mlp.c_fc.weight"],
            sd[p + "mlp.c_fc.bias"],
        )
        new[b + "mlp.W_out"], new[b + "mlp.b_out"] = (
            sd[p + "mlp.c_proj.weight"],
            sd[p + "mlp.c_proj.bias"],
        )
    model.load_state_dict(new, strict=True)
    return model
