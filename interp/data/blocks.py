"""Train/val document splits and packing of token streams into fixed-length blocks."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from interp.data.corpus import Corpus
from interp.data.tokenizer import Tokenizer
from interp.errors import ConfigError, InterpError

_ENCODE_CHUNK = 64  # documents per encode_batch call (lets max_tokens stop early)


def _unit_hash(seed: int, index: int, text: str) -> float:
    h = hashlib.sha256(f"{seed}\x00{index}\x00".encode())
    h.update(text.encode("utf-8", errors="surrogatepass"))
    return int.from_bytes(h.digest()[:8], "big") / 2.0**64


def split_documents(
    docs: Sequence[str], val_fraction: float, seed: int
) -> tuple[list[str], list[str]]:
    """Split into (train, val) by a hash of (seed, index, text); never touches global RNG.

    Documents are taken into validation in the order of their hash until validation holds at
    least ``val_fraction`` of all characters (sizes vary a lot: a per-document coin flip once
    gave a 1M-character corpus a 710-character validation set).  With two or more documents each
    side gets at least one; a single document is cut by characters at ``1 - val_fraction``.
    Order within each side follows ``docs``.
    """
    if not 0.0 < val_fraction < 1.0:
        raise ConfigError(f"val_fraction must be strictly between 0 and 1, got {val_fraction!r}")
    if len(docs) == 0:
        raise InterpError("cannot split an empty list of documents")
    if len(docs) == 1:
        text = docs[0]
        cut = round(len(text) * (1.0 - val_fraction))
        if len(text) >= 2:
            cut = min(max(cut, 1), len(text) - 1)
        return [text[:cut]], [text[cut:]]
    scores = [_unit_hash(seed, i, d) for i, d in enumerate(docs)]
    target = val_fraction * sum(len(d) for d in docs)
    is_val = [False] * len(docs)
    taken = 0
    order = sorted(range(len(docs)), key=scores.__getitem__)
    for i in order:
        if taken >= target:
            break
        if len(docs[i]) > 2 * target:  # one huge document would swamp validation: keep it in train
            continue
        is_val[i] = True
        taken += len(docs[i])
    if not any(is_val):
        is_val[order[0]] = True
    if all(is_val):
        is_val[order[-1]] = False
    train = [d for d, v in zip(docs, is_val, strict=True) if not v]
    val = [d for d, v in zip(docs, is_val, strict=True) if v]
    return train, val


def pack_blocks(
    docs: Sequence[str], tokenizer: Tokenizer, block_len: int, max_tokens: int | None = None
) -> torch.LongTensor:
    """Encode docs (each prefixed by bos when the tokenizer has one), concatenate, cut blocks.

    Returns ``[n_blocks, block_len]`` int64; the tail that does not fill a block is dropped, and
    at most ``max_tokens`` tokens of the stream are used.
    """
    if isinstance(block_len, bool) or not isinstance(block_len, int) or block_len < 1:
        raise ConfigError(f"block_len must be a positive integer, got {block_len!r}")
    if max_tokens is not None and max_tokens < 0:
        raise ConfigError(f"max_tokens must be >= 0 or None, got {max_tokens!r}")
    bos = tokenizer.bos_token_id
    pieces: list[np.ndarray] = []
    total = 0
    texts = [d for d in docs if d]
    for start in range(0, len(texts), _ENCODE_CHUNK):
        if max_tokens is not None and total >= max_tokens:
            break
        for ids in tokenizer.encode_batch(texts[start : start + _ENCODE_CHUNK]):
            if bos is not None:
                pieces.append(np.array([bos], dtype=np.int64))
            pieces.append(np.asarray(ids, dtype=np.int64))
            total += len(ids) + (bos is not None)
            if max_tokens is not None and total >= max_tokens:
                break
    stream = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.int64)
    if max_tokens is not None:
        stream = stream[:max_tokens]
    n_blocks = len(stream) // block_len
    out = torch.from_numpy(stream[: n_blocks * block_len].copy()).view(n_blocks, block_len)
    return out  # type: ignore[return-value]


@dataclass(frozen=True, eq=False)
class TextDataset:
    """Train and val token blocks, each ``[n_blocks, block_len]`` int64."""

    train: Tensor
    val: Tensor

    def __post_init__(self) -> None:
        if self.train.ndim != 2 or self.val.ndim != 2 or self.train.shape[1] != self.val.shape[1]:
            raise ValueError(
                f"train/val must be [n, block_len] with equal block_len, got "
                f"{tuple(self.train.shape)} and {tuple(self.val.shape)}"
            )

    @property
    def block_len(self) -> int:
        return int(self.train.shape[1])

    @property
    def n_tokens(self) -> int:
        """Tokens in train + val blocks."""
        return int(self.train.numel() + self.val.numel())


def build_text_dataset(
    corpus: Corpus,
    tokenizer: Tokenizer,
    block_len: int,
    val_fraction: float = 0.05,
    seed: int = 0,
    max_tokens: int | None = None,
) -> TextDataset:
    """Split ``corpus`` by document, then pack each side into blocks.

    ``max_tokens`` caps the total; val gets about ``val_fraction`` of it (at least one block).
    """
    train_docs, val_docs = split_documents(corpus.documents, val_fraction, seed)
    train_cap = val_cap = None
    if max_tokens is not None:
        val_cap = max(block_len, math.ceil(max_tokens * val_fraction))
        train_cap = max(0, max_tokens - val_cap)
    train = pack_blocks(train_docs, tokenizer, block_len, train_cap)
    val = pack_blocks(val_docs, tokenizer, block_len, val_cap)
    if len(train) == 0 or len(val) == 0:
        budget = f", max_tokens={max_tokens}" if max_tokens is not None else ""
        raise InterpError(
            f"corpus {corpus.name!r} too small for block_len={block_len}{budget}: "
            f"{len(train)} train and {len(val)} val blocks ({len(train_docs)} train and "
            f"{len(val_docs)} val documents, {corpus.n_chars} chars); use a larger corpus or "
            f"max_chars/max_tokens, or a smaller block_len"
        )
    return TextDataset(train=train, val=val)
