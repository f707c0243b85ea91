"""Tiny random Hugging Face checkpoints for offline tests.

Everything here is built locally and deterministically: a byte-level BPE tokenizer
trained with the ``tokenizers`` library on a few KB of generated text, and tiny
``GPT2LMHeadModel`` / ``LlamaForCausalLM`` models with random weights, saved with
``save_pretrained`` (safetensors) next to the tokenizer, so that
``AutoModelForCausalLM.from_pretrained(directory)`` and
``TransformerBridge.boot_transformers(str(directory))`` load them with no network.

The random init deliberately perturbs every norm weight and bias away from the
default (ones / zeros) and uses a larger-than-usual ``initializer_range``: an import
or weight-mapping bug that drops a LayerNorm scale, a bias or a transpose then moves
the logits by far more than any test tolerance instead of hiding behind an identity.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import (
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedModel,
    PreTrainedTokenizerFast,
)

EOT = "<|endoftext|>"

_WORDS = (
    "the a an of to in and is was for on with as by at from that this it be are "
    "model layer head token attention residual stream logit neuron circuit feature "
    "probe train loss step value key query embed unembed norm weight bias gradient "
    "small large first last next previous count plan rhyme line word sentence"
).split()

_PY_SNIPPETS = (
    "def forward(self, x):\n    return self.proj(x) + x\n",
    "for i in range(n_layers):\n    cache[i] = None\n",
    "if loss < best:\n    best = loss\n    save(model, path)\n",
    "class Block(nn.Module):\n    def __init__(self, d_model: int) -> None:\n        pass\n",
    "x = torch.zeros(batch, pos, d_model)\nprint(x.shape)\n",
    "tokens = tokenizer.encode(text)[:64]\n",
)


def _corpus(seed: int = 0, n_lines: int = 120) -> list[str]:
    """A few KB of deterministic English-ish and Python-ish lines."""
    rng = random.Random(seed)
    lines: list[str] = []
    for i in range(n_lines):
        if i % 4 == 3:
            lines.append(_PY_SNIPPETS[rng.randrange(len(_PY_SNIPPETS))])
        else:
            n = rng.randint(6, 14)
            words = [rng.choice(_WORDS) for _ in range(n)]
            words[0] = words[0].capitalize()
            lines.append(" ".join(words) + rng.choice([".", "!", "?", ","]) + "\n")
    return lines


def train_tiny_hf_tokenizer(vocab_size: int = 300) -> PreTrainedTokenizerFast:
    """Train a GPT-2-style byte-level BPE on a small built-in text.

    The vocabulary holds the 256 byte symbols, ``<|endoftext|>`` (id 0, used as
    bos/eos/unk/pad like GPT-2) and ``vocab_size - 257`` merges.
    """
    if vocab_size < 258:
        raise ValueError(f"vocab_size must be >= 258 (256 bytes + special + 1), got {vocab_size}")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOT],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_corpus(), trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=EOT,
        eos_token=EOT,
        unk_token=EOT,
        pad_token=EOT,
        model_max_length=1024,
    )


@torch.no_grad()
def _perturb_norms_and_biases(model: PreTrainedModel, scale: float = 0.1) -> None:
    """Move every norm weight off 1 and every bias off 0 (uses the global RNG)."""
    for module in model.modules():
        is_norm = "norm" in type(module).__name__.lower()
        for pname, param in module.named_parameters(recurse=False):
            if is_norm and pname == "weight":
                param.copy_(1.0 + scale * torch.randn_like(param))
            elif pname == "bias":
                param.add_(scale * torch.randn_like(param))


def _save(model: PreTrainedModel, tokenizer: PreTrainedTokenizerFast, directory: Path) -> Path:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    model.eval()
    model.save_pretrained(directory, safe_serialization=True)
    tokenizer.save_pretrained(directory)
    return directory


def save_tiny_gpt2(
    directory: Path,
    *,
    n_layer: int = 2,
    n_embd: int = 32,
    n_head: int = 4,
    n_positions: int = 64,
    vocab_size: int | None = None,
    seed: int = 0,
    **overrides: Any,
) -> Path:
    """Save a random ``GPT2LMHeadModel`` + tokenizer to ``directory``; return it."""
    tokenizer = train_tiny_hf_tokenizer()
    eot = tokenizer.convert_tokens_to_ids(EOT)
    kwargs: dict[str, Any] = {
        "vocab_size": vocab_size if vocab_size is not None else len(tokenizer),
        "n_positions": n_positions,
        "n_embd": n_embd,
        "n_layer": n_layer,
        "n_head": n_head,
        "initializer_range": 0.1,
        "bos_token_id": eot,
        "eos_token_id": eot,
        "pad_token_id": eot,
    }
    kwargs.update(overrides)
    config = GPT2Config(**kwargs)
    torch.manual_seed(seed)
    model = GPT2LMHeadModel(config)
    _perturb_norms_and_biases(model)
    return _save(model, tokenizer, directory)


def save_tiny_llama(
    directory: Path,
    *,
    n_layer: int = 2,
    n_embd: int = 32,
    n_head: int = 4,
    n_kv_head: int = 2,
    d_mlp: int = 64,
    n_positions: int = 64,
    vocab_size: int | None = None,
    seed: int = 0,
    **overrides: Any,
) -> Path:
    """Save a random ``LlamaForCausalLM`` (RMSNorm, RoPE, gated MLP, GQA) + tokenizer.

    ``n_kv_head < n_head`` by default so grouped-query attention is exercised, and the
    embeddings are untied so a swapped embed/unembed mapping cannot pass unnoticed.
    """
    tokenizer = train_tiny_hf_tokenizer()
    eot = tokenizer.convert_tokens_to_ids(EOT)
    kwargs: dict[str, Any] = {
        "vocab_size": vocab_size if vocab_size is not None else len(tokenizer),
        "hidden_size": n_embd,
        "intermediate_size": d_mlp,
        "num_hidden_layers": n_layer,
        "num_attention_heads": n_head,
        "num_key_value_heads": n_kv_head,
        "max_position_embeddings": n_positions,
        "initializer_range": 0.1,
        "rms_norm_eps": 1e-5,
        "tie_word_embeddings": False,
        "bos_token_id": eot,
        "eos_token_id": eot,
        "pad_token_id": eot,
    }
    kwargs.update(overrides)
    config = LlamaConfig(**kwargs)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    _perturb_norms_and_biases(model)
    return _save(model, tokenizer, directory)
