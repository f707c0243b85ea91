"""The tokenizer files of a Hugging Face export: a ``tokenizers.Tokenizer`` equal to the
model's own text codec (Hugging Face's, interp's BPE or bytes, a task's token names)."""

from __future__ import annotations

import json
from typing import Any

from interp.config import ModelConfig
from interp.models.export_maps import _refuse
from interp.tasks.base import TaskTokenizer


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
