"""How each Hugging Face architecture interp exports to is built: its config from interp's
``ModelConfig`` and the mapping of interp's weights onto its state dict, one registry entry per
architecture (:data:`ARCHITECTURES`; which one a model maps onto is
:func:`interp.models.export.hf_architecture`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from einops import rearrange
from torch import Tensor

from interp.config import ModelConfig
from interp.errors import InterpError

# interp activation -> the HF (ACT2FN) name computing the same function with the same kernel
HF_ACTIVATIONS = {"gelu": "gelu", "gelu_new": "gelu_pytorch_tanh", "relu": "relu", "silu": "silu"}


class ExportError(InterpError):
    """The model has no exact Hugging Face form (or OUT cannot take it)."""


def _refuse(reason: str) -> ExportError:
    return ExportError(f"cannot export to Hugging Face: {reason}")


def _rotary_dim(config: ModelConfig) -> int:
    rotary = config.positional_options.get("rotary_dim")
    return int(rotary) if rotary else config.head_dim - config.head_dim % 2


class _Weights:
    """interp parameters by name, each marked when read (all must be)."""

    def __init__(self, model: Any) -> None:
        self.params = {n: p.detach().float() for n, p in model.named_parameters()}
        self.used: set[str] = set()

    def __call__(self, name: str) -> Tensor:
        self.used.add(name)
        return self.params[name]

    def check_all_used(self) -> None:
        left = sorted(set(self.params) - self.used)
        if left:
            raise _refuse(f"parameter(s) {', '.join(left[:4])} have no place in the export")


def _fill(hf_model: Any, named: dict[str, Tensor]) -> None:
    """Copy ``named`` (HF state-dict names) into ``hf_model``; every name must exist."""
    own = hf_model.state_dict()
    missing = sorted(set(named) - set(own))
    if missing:
        raise _refuse(f"internal mapping error: Hugging Face has no {', '.join(missing[:3])}")
    with torch.no_grad():
        for name, value in named.items():
            if tuple(own[name].shape) != tuple(value.shape):
                raise _refuse(
                    f"internal mapping error: {name} is {tuple(own[name].shape)}, got {tuple(value.shape)}"
                )
            own[name].copy_(value)


def _heads_in(W: Tensor) -> Tensor:
    """[head_index d_model d_head] -> Linear weight [(head_index d_head) d_model]"""
    return rearrange(W, "head_index d_model d_head -> (head_index d_head) d_model")


def _gpt2_weights(w: _Weights, config: ModelConfig, model: Any, hf: Any) -> None:
    named: dict[str, Tensor] = {"transformer.wte.weight": w("embed.W_E")}
    if config.positional == "absolute":
        named["transformer.wpe.weight"] = w("pos_embed.W_pos")
    elif config.positional == "sinusoidal":
        named["transformer.wpe.weight"] = model.W_pos.detach().float()
    else:
        named["transformer.wpe.weight"] = torch.zeros(config.n_ctx, config.d_model)
    for layer in range(config.n_layers):
        b, h = f"blocks.{layer}.", f"transformer.h.{layer}."
        named[h + "ln_1.weight"], named[h + "ln_1.bias"] = w(b + "ln1.w"), w(b + "ln1.b")
        named[h + "ln_2.weight"], named[h + "ln_2.bias"] = w(b + "ln2.w"), w(b + "ln2.b")
        named[h + "attn.c_attn.weight"] = torch.cat(
            [_heads_in(w(b + f"attn.W_{x}")).T for x in "QKV"], dim=1
        )  # Conv1D: [d_model, 3 d_model]
        named[h + "attn.c_attn.bias"] = torch.cat([w(b + f"attn.b_{x}").flatten() for x in "QKV"])
        named[h + "attn.c_proj.weight"] = rearrange(
            w(b + "attn.W_O"), "head_index d_head d_model -> (head_index d_head) d_model"
        )
        named[h + "attn.c_proj.bias"] = w(b + "attn.b_O")
        named[h + "mlp.c_fc.weight"], named[h + "mlp.c_fc.bias"] = (
            w(b + "mlp.W_in"),
            w(b + "mlp.b_in"),
        )
        named[h + "mlp.c_proj.weight"] = w(b + "mlp.W_out")
        named[h + "mlp.c_proj.bias"] = w(b + "mlp.b_out")
    named["transformer.ln_f.weight"] = w("ln_final.w")
    named["transformer.ln_f.bias"] = w("ln_final.b")
    _fill(hf, named)


def _neox_weights(w: _Weights, config: ModelConfig, model: Any, hf: Any) -> None:
    named: dict[str, Tensor] = {"gpt_neox.embed_in.weight": w("embed.W_E")}
    for layer in range(config.n_layers):
        b, h = f"blocks.{layer}.", f"gpt_neox.layers.{layer}."
        named[h + "input_layernorm.weight"] = w(b + "ln1.w")
        named[h + "input_layernorm.bias"] = w(b + "ln1.b")
        named[h + "post_attention_layernorm.weight"] = w(b + "ln2.w")
        named[h + "post_attention_layernorm.bias"] = w(b + "ln2.b")
        # NeoX's fused projection is laid out per head: [q_h; k_h; v_h] for each head h
        qkv = torch.stack([w(b + f"attn.W_{x}") for x in "QKV"], dim=1)
        named[h + "attention.query_key_value.weight"] = rearrange(
            qkv, "head_index three d_model d_head -> (head_index three d_head) d_model"
        )
        named[h + "attention.query_key_value.bias"] = torch.stack(
            [w(b + f"attn.b_{x}") for x in "QKV"], dim=1
        ).flatten()
        named[h + "attention.dense.weight"] = rearrange(
            w(b + "attn.W_O"), "head_index d_head d_model -> d_model (head_index d_head)"
        )
        named[h + "attention.dense.bias"] = w(b + "attn.b_O")
        named[h + "mlp.dense_h_to_4h.weight"] = w(b + "mlp.W_in").T
        named[h + "mlp.dense_h_to_4h.bias"] = w(b + "mlp.b_in")
        named[h + "mlp.dense_4h_to_h.weight"] = w(b + "mlp.W_out").T
        named[h + "mlp.dense_4h_to_h.bias"] = w(b + "mlp.b_out")
    named["gpt_neox.final_layer_norm.weight"] = w("ln_final.w")
    named["gpt_neox.final_layer_norm.bias"] = w("ln_final.b")
    _fill(hf, named)


def _llama_weights(w: _Weights, config: ModelConfig, model: Any, hf: Any) -> None:
    named: dict[str, Tensor] = {"model.embed_tokens.weight": w("embed.W_E")}
    for layer in range(config.n_layers):
        b, h = f"blocks.{layer}.", f"model.layers.{layer}."
        named[h + "input_layernorm.weight"] = w(b + "ln1.w")
        named[h + "post_attention_layernorm.weight"] = w(b + "ln2.w")
        for x, proj in zip("QKV", ("q_proj", "k_proj", "v_proj"), strict=True):
            named[h + f"self_attn.{proj}.weight"] = _heads_in(w(b + f"attn.W_{x}"))
            named[h + f"self_attn.{proj}.bias"] = w(b + f"attn.b_{x}").flatten()
        named[h + "self_attn.o_proj.weight"] = rearrange(
            w(b + "attn.W_O"), "head_index d_head d_model -> d_model (head_index d_head)"
        )
        named[h + "self_attn.o_proj.bias"] = w(b + "attn.b_O")
        named[h + "mlp.gate_proj.weight"] = w(b + "mlp.W_in").T
        named[h + "mlp.gate_proj.bias"] = w(b + "mlp.b_in")
        named[h + "mlp.up_proj.weight"] = torch.zeros(config.d_mlp, config.d_model)
        named[h + "mlp.up_proj.bias"] = torch.ones(config.d_mlp)
        named[h + "mlp.down_proj.weight"] = w(b + "mlp.W_out").T
        named[h + "mlp.down_proj.bias"] = w(b + "mlp.b_out")
    named["model.norm.weight"] = w("ln_final.w")
    _fill(hf, named)


# --------------------------------------------------------------------------- configs


def _gpt2_config(config: ModelConfig, act: str, specials: dict[str, int | None]) -> Any:
    import transformers

    return transformers.GPT2Config(
        vocab_size=config.d_vocab,
        n_positions=config.n_ctx,
        n_embd=config.d_model,
        n_layer=config.n_layers,
        n_head=config.n_heads,
        n_inner=config.d_mlp,
        activation_function=act,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        layer_norm_epsilon=config.eps,
        initializer_range=config.init_range,
        scale_attn_weights=True,
        tie_word_embeddings=config.tied_embeddings,
        **specials,
    )


def _neox_config(config: ModelConfig, act: str, specials: dict[str, int | None]) -> Any:
    import transformers

    rotary = _rotary_dim(config)
    factor = rotary / config.head_dim
    if int(config.head_dim * factor) != rotary:
        raise _refuse(f"rotary_dim {rotary} is not representable as a fraction of d_head")
    return transformers.GPTNeoXConfig(
        vocab_size=config.d_vocab,
        hidden_size=config.d_model,
        num_hidden_layers=config.n_layers,
        num_attention_heads=config.n_heads,
        intermediate_size=config.d_mlp,
        hidden_act=act,
        rotary_pct=factor,
        rotary_emb_base=float(config.positional_options.get("base", 10000.0)),
        attention_dropout=0.0,
        hidden_dropout=0.0,
        max_position_embeddings=config.n_ctx,
        initializer_range=config.init_range,
        layer_norm_eps=config.eps,
        use_parallel_residual=False,
        attention_bias=True,
        tie_word_embeddings=config.tied_embeddings,
        **specials,
    )


def _llama_config(config: ModelConfig, act: str, specials: dict[str, int | None]) -> Any:
    import transformers

    return transformers.LlamaConfig(
        vocab_size=config.d_vocab,
        hidden_size=config.d_model,
        intermediate_size=config.d_mlp,
        num_hidden_layers=config.n_layers,
        num_attention_heads=config.n_heads,
        num_key_value_heads=config.n_heads,
        head_dim=config.head_dim,
        hidden_act=act,
        max_position_embeddings=config.n_ctx,
        initializer_range=config.init_range,
        rms_norm_eps=config.eps,
        rope_theta=float(config.positional_options.get("base", 10000.0)),
        attention_bias=True,
        attention_dropout=0.0,
        mlp_bias=True,
        tie_word_embeddings=config.tied_embeddings,
        **specials,
    )


@dataclass(frozen=True)
class Architecture:
    """A Hugging Face class interp exports to: its config, its weights, its final norm."""

    name: str
    config: Callable[[ModelConfig, str, dict[str, int | None]], Any]
    weights: Callable[[_Weights, ModelConfig, Any, Any], None]
    final_norm: Callable[[Any], Any]  # the HF model's final norm (a folded b_U goes there)


ARCHITECTURES: dict[str, Architecture] = {
    a.name: a
    for a in (
        Architecture("GPT2LMHeadModel", _gpt2_config, _gpt2_weights, lambda m: m.transformer.ln_f),
        Architecture(
            "GPTNeoXForCausalLM", _neox_config, _neox_weights, lambda m: m.gpt_neox.final_layer_norm
        ),
        Architecture("LlamaForCausalLM", _llama_config, _llama_weights, lambda m: m.model.norm),
    )
}


def hf_config(arch: str, config: ModelConfig, specials: dict[str, int | None]) -> Any:
    """The Hugging Face config of ``arch`` for ``config`` (with the tokenizer's special ids)."""
    hf = ARCHITECTURES[arch].config(config, HF_ACTIVATIONS[config.act_fn], specials)
    hf.architectures = [arch]
    return hf
