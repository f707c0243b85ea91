"""Export an interp model to a Hugging Face directory, where Hugging Face can express it exactly.

``export_hf(run, out)`` writes ``config.json``, ``model.safetensors``, ``tokenizer.json`` and
``tokenizer_config.json`` into ``out`` (through :class:`interp.safefs.Tree`, nothing outside it),
for ``transformers.AutoModelForCausalLM`` and ``TransformerBridge.boot_transformers`` alike.
Before anything is written the exported model is built in memory and its logits are compared
with interp's on a fixed batch: an export that is not exact is refused, never written.

Mappings (interp's pre-norm block ``x + attn(ln1(x))``, then ``+ mlp(ln2(.))``, is every one's):

=============================================  =============================================
interp                                         Hugging Face
=============================================  =============================================
LayerNorm, learned ``absolute`` positions      ``GPT2LMHeadModel`` (``wpe`` = ``W_pos``)
LayerNorm, ``sinusoidal``                      ``GPT2LMHeadModel`` (``wpe`` = the fixed table)
LayerNorm, ``none`` (NoPE)                     ``GPT2LMHeadModel`` (``wpe`` = 0)
LayerNorm, ``rope``                            ``GPTNeoXForCausalLM``, sequential residual
                                               (``use_parallel_residual=False``), RoPE on the
                                               first ``rotary_dim`` dims of each head
                                               (``partial_rotary_factor``)
RMSNorm, ``rope`` over the whole head          ``LlamaForCausalLM``; Llama's MLP is gated,
                                               ``down(act(gate(x)) * up(x))``: ``gate`` = W_in,
                                               ``up`` = 0 weight + bias 1 (``mlp_bias``), so
                                               ``act(gate(x)) * 1`` is interp's MLP exactly
=============================================  =============================================

RoPE conventions agree: interp, NeoX and Llama all rotate halves (``rotate_half``: the pair of
dim i is i + rotary_dim/2, not i + 1), with ``inv_freq = base^(-2i / rotary_dim)`` and positions
from 0.  GeLU: interp's ``gelu`` = HF ``gelu`` (erf), ``gelu_new`` (tanh) = ``gelu_pytorch_tanh``
(the same torch kernel).  Attention is scaled by ``1/sqrt(d_head)`` everywhere.

The unembedding bias: GPT-2, NeoX and Llama have none.  A zero ``b_U`` (``use_bias=False``,
``--no-unembed-bias``, imported GPT-2) needs nothing; a non-zero one is folded into the final
LayerNorm's bias when it lies in the row space of ``W_U`` (``delta @ W_U = b_U`` solved by least
squares, exact when d_vocab <= d_model), else refused.

Tokenizers: the run's byte or BPE tokenizer, GPT-2's, or a task's token names (a word-level
tokenizer, words separated by spaces) become ``tokenizer.json`` (``PreTrainedTokenizerFast``);
nothing is added on encode, as in interp.  A model without text gets ids written as numbers.

Refused, one line naming why: vector input, CoPE, ALiBi, no normalisation, attention-only
(``d_mlp=0``), RMSNorm without RoPE, partial RoPE with RMSNorm, ``d_head * n_heads != d_model``
for GPT-2 / NeoX, a non-foldable ``b_U``, and a model whose exported logits differ.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from einops import rearrange
from torch import Tensor

from interp.config import ModelConfig
from interp.errors import InterpError
from interp.models.loading import load_run_model
from interp.runs import RunDir
from interp.safefs import MARKER, Tree, has_marker, is_link
from interp.tasks.base import TaskTokenizer

__all__ = [
    "ExportError",
    "ExportResult",
    "HFExport",
    "export_hf",
    "hf_architecture",
    "to_hf",
    "write_hf",
]

# interp activation -> the HF (ACT2FN) name computing the same function with the same kernel
HF_ACTIVATIONS = {"gelu": "gelu", "gelu_new": "gelu_pytorch_tanh", "relu": "relu", "silu": "silu"}
TOLERANCE = 1e-4  # max |logit difference| / max(1, max |logit|) an export may have
FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")


class ExportError(InterpError):
    """The model has no exact Hugging Face form (or OUT cannot take it)."""


@dataclass
class HFExport:
    """A model converted in memory: what :func:`export_hf` writes."""

    architecture: str
    hf_config: Any  # a transformers PretrainedConfig
    state_dict: dict[str, Tensor]
    tokenizer_files: dict[str, str]
    max_logit_diff: float
    notes: list[str] = field(default_factory=list)


def _refuse(reason: str) -> ExportError:
    return ExportError(f"cannot export to Hugging Face: {reason}")


def _rotary_dim(config: ModelConfig) -> int:
    rotary = config.positional_options.get("rotary_dim")
    return int(rotary) if rotary else config.head_dim - config.head_dim % 2


def hf_architecture(config: ModelConfig) -> str:
    """The Hugging Face class an interp config maps onto exactly; else :class:`ExportError`."""
    if config.input_kind != "tokens":
        raise _refuse("the model reads vectors (input_kind='vector'); HF causal LMs read tokens")
    pe, norm = config.positional, config.normalization
    if pe == "cope":
        raise _refuse("CoPE (contextual positions) has no Hugging Face architecture")
    if pe == "alibi":
        raise _refuse(
            "ALiBi has no exact Hugging Face form here (absolute, sinusoidal and no positions "
            "export as GPT-2, RoPE as GPT-NeoX or Llama)"
        )
    if pe not in ("absolute", "sinusoidal", "none", "rope"):
        raise _refuse(f"positional encoding {pe!r} has no Hugging Face form")
    if norm == "none":
        raise _refuse("the model has no normalisation; GPT-2, NeoX and Llama always normalise")
    if config.d_mlp == 0:
        raise _refuse(
            "attention-only models (d_mlp=0) have no Hugging Face form (every block has an MLP)"
        )
    if norm == "rmsnorm":
        if pe != "rope":
            raise _refuse(
                f"RMSNorm with positional encoding {pe!r}: the RMSNorm architecture (Llama) uses "
                "RoPE; only LayerNorm models export with absolute, sinusoidal or no positions"
            )
        if _rotary_dim(config) != config.head_dim:
            raise _refuse(
                f"RoPE on {_rotary_dim(config)} of {config.head_dim} head dims with RMSNorm: "
                "Llama rotates whole heads (partial RoPE exports with LayerNorm, as GPT-NeoX)"
            )
        return "LlamaForCausalLM"
    if config.n_heads * config.head_dim != config.d_model:
        raise _refuse(
            f"n_heads * d_head = {config.n_heads * config.head_dim} differs from d_model = "
            f"{config.d_model}; GPT-2 and GPT-NeoX split d_model into the heads"
        )
    return "GPTNeoXForCausalLM" if pe == "rope" else "GPT2LMHeadModel"


# --------------------------------------------------------------------------- configs


def _special_ids(model: Any) -> dict[str, int | None]:
    codec = model._codec()
    bos = getattr(codec, "bos_token_id", None)
    eos = getattr(codec, "eos_token_id", None)
    return {"bos_token_id": bos, "eos_token_id": eos, "pad_token_id": None}


def _hf_config(arch: str, config: ModelConfig, specials: dict[str, int | None]) -> Any:
    import transformers

    act = HF_ACTIVATIONS[config.act_fn]
    if arch == "GPT2LMHeadModel":
        hf = transformers.GPT2Config(
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
    elif arch == "GPTNeoXForCausalLM":
        rotary = _rotary_dim(config)
        factor = rotary / config.head_dim
        if int(config.head_dim * factor) != rotary:
            raise _refuse(f"rotary_dim {rotary} is not representable as a fraction of d_head")
        hf = transformers.GPTNeoXConfig(
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
    else:
        hf = transformers.LlamaConfig(
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
    hf.architectures = [arch]
    return hf


# --------------------------------------------------------------------------- weights


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


def _fold_unembed_bias(model: Any, config: ModelConfig, notes: list[str]) -> Tensor | None:
    """The change of ``ln_final.b`` that carries ``b_U`` (None: ``b_U`` is zero)."""
    b_U = model.unembed.b_U.detach().double()
    if not bool(b_U.any()):
        return None
    if config.normalization != "layernorm":
        raise _refuse(
            "the unembedding bias b_U is non-zero and Llama has neither b_U nor a final-norm bias "
            "to carry it; train with --no-unembed-bias (or use_bias=False) to export"
        )
    W_U = model.unembed.weight.detach().double()  # [d_model d_vocab]
    delta = torch.linalg.lstsq(W_U.T, b_U.unsqueeze(-1)).solution.squeeze(-1)
    residual = float((delta @ W_U - b_U).abs().max())
    if residual > 1e-6 * max(1.0, float(b_U.abs().max())):
        raise _refuse(
            f"the unembedding bias b_U is non-zero and GPT-2 / NeoX have none; it is not in the span "
            f"of W_U (d_vocab {config.d_vocab} > d_model {config.d_model}, residual {residual:.2g}), "
            "so it cannot be folded into the final LayerNorm bias; train with --no-unembed-bias "
            "(or use_bias=False) to export"
        )
    notes.append(
        f"b_U folded into the final LayerNorm bias (b_U lies in the span of W_U; residual {residual:.1e})"
    )
    return delta.float()


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


def _map_gpt2(w: _Weights, config: ModelConfig, model: Any, hf: Any) -> None:
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


def _map_neox(w: _Weights, config: ModelConfig, model: Any, hf: Any) -> None:
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


def _map_llama(w: _Weights, config: ModelConfig, model: Any, hf: Any) -> None:
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


def _without_tied_copies(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """The state dict once per storage (tied weights are saved under their first name)."""
    seen: set[int] = set()
    out = {}
    for name, t in state.items():
        ptr = t.untyped_storage().data_ptr()
        if ptr in seen:
            continue
        seen.add(ptr)
        out[name] = t.detach().clone().contiguous()
    return out


# --------------------------------------------------------------------------- tokenizer


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's printable stand-ins for the 256 byte values (what ByteLevel pre-tokenizers use)."""
    keep = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
    chars = keep[:]
    n = 0
    for b in range(256):
        if b not in keep:
            keep.append(b)
            chars.append(256 + n)
            n += 1
    return dict(zip(keep, (chr(c) for c in chars), strict=True))


def _backend(model: Any) -> tuple[Any, dict[str, str]] | None:
    """A ``tokenizers.Tokenizer`` equal to the model's text codec, and its special tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    codec = model._codec()
    if codec is None:  # no text of its own: token i is written "i"
        d_vocab = model.config.d_vocab
        codec = TaskTokenizer([str(i) for i in range(d_vocab)], d_vocab, "token ids")
    kind = getattr(codec, "kind", None)
    if kind == "hf":
        hf = codec.hf
        specials = {
            k: getattr(hf, k)
            for k in ("bos_token", "eos_token", "unk_token", "pad_token")
            if isinstance(getattr(hf, k, None), str)
        }
        return Tokenizer.from_str(hf.backend_tokenizer.to_str()), specials
    if kind == "bpe":
        backend = Tokenizer.from_str(codec.to_json())
        return backend, {"bos_token": "<bos>", "eos_token": "<eos>"}
    if kind == "byte":
        vocab = {char: b for b, char in _bytes_to_unicode().items()}
        vocab.update({"<bos>": 256, "<eos>": 257})
        backend = Tokenizer(models.BPE(vocab=vocab, merges=[]))
        backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
        backend.decoder = decoders.ByteLevel()
        backend.add_special_tokens(["<bos>", "<eos>"])
        return backend, {"bos_token": "<bos>", "eos_token": "<eos>"}
    if kind == "task":
        vocab = {name: i for i, name in enumerate(codec.names) if codec.ids.get(name) == i}
        # an unknown word must encode to something (TransformerBridge probes "a"): an id past
        # the model's vocabulary, so using it fails loudly instead of reading another token
        vocab.setdefault("<unk>", len(codec.names))
        backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
        backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()  # no decoder: joined by spaces
        special = [n for n in vocab if n.startswith("<") and n.endswith(">")]
        backend.add_special_tokens(special)
        names = {"bos_token": "<bos>", "eos_token": "<eos>", "unk_token": "<unk>"}
        return backend, {k: v for k, v in names.items() if v in vocab}
    return None


def _tokenizer_files(model: Any, config: ModelConfig, notes: list[str]) -> dict[str, str]:
    found = _backend(model)
    if found is None:
        raise _refuse(f"no Hugging Face form for a tokenizer of kind {model._codec().kind!r}")
    if model._codec() is None:
        notes.append("the model has no text of its own: the tokenizer writes token i as 'i'")
    backend, specials = found
    if "pad_token" not in specials and ("eos_token" in specials or "bos_token" in specials):
        specials["pad_token"] = specials.get("eos_token", specials.get("bos_token", ""))
    tok_config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_max_length": config.n_ctx,
        "clean_up_tokenization_spaces": False,
        **specials,
    }
    return {
        "tokenizer.json": backend.to_str(pretty=True),
        "tokenizer_config.json": json.dumps(tok_config, indent=2) + "\n",
    }


# --------------------------------------------------------------------------- the export


def _check_logits(model: Any, hf_model: Any, config: ModelConfig) -> float:
    g = torch.Generator().manual_seed(0)
    n_pos = min(config.n_ctx, 24)
    tokens = torch.randint(0, config.d_vocab, (2, n_pos), generator=g)
    with torch.no_grad():
        ours = model(tokens.to(model.device)).float().cpu()
        theirs = hf_model(tokens).logits.float()
    diff = float((ours - theirs).abs().max())
    scale = max(1.0, float(ours.abs().max()))
    if not math.isfinite(diff) or diff > TOLERANCE * scale:
        raise _refuse(
            f"the exported logits differ from interp's by {diff:.3g} (more than {TOLERANCE:g} "
            f"x {scale:.3g}); nothing was written"
        )
    return diff


def to_hf(model: Any) -> HFExport:
    """Convert an interp :class:`~interp.models.HookedTransformer` to a Hugging Face model in
    memory (weights, config, tokenizer files), checked against interp's logits."""
    import transformers

    config: ModelConfig = model.config
    arch = hf_architecture(config)
    notes: list[str] = []
    delta = _fold_unembed_bias(model, config, notes)
    hf_config = _hf_config(arch, config, _special_ids(model))
    hf_model = getattr(transformers, arch)(hf_config).eval()
    w = _Weights(model)
    {"GPT2LMHeadModel": _map_gpt2, "GPTNeoXForCausalLM": _map_neox}.get(arch, _map_llama)(
        w, config, model, hf_model
    )
    w.used.add("unembed.b_U")  # zero, or folded above
    if not config.tied_embeddings:
        with torch.no_grad():
            hf_model.get_output_embeddings().weight.copy_(w("unembed.W_U").T)
    if delta is not None:
        with torch.no_grad():
            final = (
                hf_model.transformer.ln_f
                if arch == "GPT2LMHeadModel"
                else hf_model.gpt_neox.final_layer_norm
            )
            final.bias.add_(delta)
    w.check_all_used()
    if config.positional == "none" and arch == "GPT2LMHeadModel":
        notes.append("no positional encoding: GPT-2's position table is zero")
    diff = _check_logits(model, hf_model, config)
    return HFExport(
        architecture=arch,
        hf_config=hf_config,
        state_dict=_without_tied_copies(hf_model.state_dict()),
        tokenizer_files=_tokenizer_files(model, config, notes),
        max_logit_diff=diff,
        notes=notes,
    )


def check_out(out: Path, overwrite: bool, source: Path | None = None) -> None:
    """Refuse, before any work, an ``out`` that is a file, a link, non-empty without
    ``--overwrite``, not an earlier export/run (no interp marker) with it, or the source run."""
    out = Path(out)
    if is_link(out) and not out.exists():
        raise ExportError(f"output path {out} is a broken symbolic link")
    if out.exists() and not out.is_dir():
        raise ExportError(f"output path {out} exists and is not a directory")
    if source is not None:
        a, b = Path(os.path.abspath(out)), Path(os.path.abspath(source))
        if a == b or a in b.parents or b in a.parents:
            raise ExportError(f"output path {out} overlaps the run being exported ({source})")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise ExportError(
                f"output directory {out} is not empty; pass --overwrite to replace it"
            )
        if not has_marker(out):
            raise ExportError(
                f"refusing to overwrite {out}: not a directory interp wrote (no {MARKER} marker); "
                "delete it yourself or choose another output directory"
            )


@dataclass(frozen=True)
class ExportResult:
    path: Path
    architecture: str
    max_logit_diff: float
    files: tuple[str, ...]
    notes: tuple[str, ...]


def export_hf(
    run: str | os.PathLike, out: str | os.PathLike, overwrite: bool = False
) -> ExportResult:
    """Export the model of interp run ``run`` as a Hugging Face directory ``out``.

    ``out`` must not exist, be empty, or (with ``overwrite``) be an earlier interp export or
    run; its old files are removed first.  Files go through :class:`interp.safefs.Tree`;
    ``config.json`` is written last, so an interrupted export is never a loadable directory.
    """

    run_path, out_path = Path(run), Path(out)
    if not (run_path / "config.json").is_file():
        raise ExportError(f"{run_path} is not an interp run directory (no config.json)")
    kind = RunDir(run_path).config().get("kind")
    if kind != "train":
        raise ExportError(
            f"{run_path} is a {kind!r} run; only trained models (kind 'train') export"
        )
    check_out(out_path, overwrite, run_path)
    model = load_run_model(run_path).float().eval()
    return write_hf(model, out_path, overwrite, source=run_path)


def write_hf(
    model: Any, out: str | os.PathLike, overwrite: bool = False, source: Path | None = None
) -> ExportResult:
    """Convert ``model`` (:func:`to_hf`) and write it to ``out`` (see :func:`export_hf`)."""
    out_path = Path(out)
    check_out(out_path, overwrite, source)
    export = to_hf(model)
    tree = Tree(out_path)
    tree.check((MARKER, *FILES))
    check_out(out_path, overwrite, source)  # unchanged while the model was converted
    if out_path.is_dir():
        tree.remove("config.json")  # first: a half-replaced export is never loadable
        for child in sorted(out_path.iterdir()):
            if child.name != MARKER:
                tree.remove(child.name)
    tree.mkdir()
    tree.write_json(MARKER, {"interp": "export", "format": "hf", "run": str(source or "")})
    from safetensors.torch import save

    tree.write_bytes("model.safetensors", save(export.state_dict, metadata={"format": "pt"}))
    for name, text in export.tokenizer_files.items():
        tree.write_text(name, text)
    tree.write_text("config.json", export.hf_config.to_json_string())
    files = tuple(n for n in FILES if n in export.tokenizer_files or n in FILES[:2])
    return ExportResult(
        path=out_path,
        architecture=export.architecture,
        max_logit_diff=export.max_logit_diff,
        files=files,
        notes=tuple(export.notes),
    )
