"""Tokenizers: a small protocol with byte, byte-level BPE and Hugging Face implementations.

Every tokenizer's ``encode`` adds no special tokens, and ``decode`` renders special tokens as
their literal text (``<bos>``), so ``decode(encode(text)) == text`` for byte and BPE tokenizers.
``save(directory)`` writes ``tokenizer_meta.json`` last, so a directory without it is an
incomplete save; :func:`load_tokenizer` reads any of them back.
"""

from __future__ import annotations

import os

# The tokenizers thread pool keeps spinning after BPE training/encoding and competes with torch
# for the CPU (measured: the first training steps ran 4x slower). Users may still override it.
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from tokenizers import Tokenizer as _BackendTokenizer
from tokenizers import decoders, models, pre_tokenizers, trainers

from interp.errors import ConfigError, CorruptFileError, InterpError, LoadError
from interp.io import atomic_write_json, atomic_write_text, read_json

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

META_FILE = "tokenizer_meta.json"
BPE_FILE = "tokenizer.json"
BOS_TOKEN = "<bos>"
EOS_TOKEN = "<eos>"
_BYTE_VOCAB = 256 + 2  # 256 byte values + <bos> + <eos>


@runtime_checkable
class Tokenizer(Protocol):
    """What the rest of ``interp`` needs from a tokenizer."""

    kind: str  # "byte" | "bpe" | "hf"
    vocab_size: int
    bos_token_id: int | None
    eos_token_id: int | None

    def encode(self, text: str) -> list[int]: ...

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]: ...

    def decode(self, ids: Sequence[int]) -> str: ...

    def save(self, directory: Path) -> None: ...


def _is_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in {"1", "ON", "YES", "TRUE"}


def _first_line(exc: BaseException, limit: int = 300) -> str:
    text = str(exc).strip().splitlines()
    line = text[0] if text else ""
    line = line[:limit]
    return f"{type(exc).__name__}: {line}" if line else type(exc).__name__


class ByteTokenizer:
    """UTF-8 bytes 0..255 plus ``<bos>`` = 256 and ``<eos>`` = 257."""

    kind = "byte"
    vocab_size = _BYTE_VOCAB
    bos_token_id: int | None = 256
    eos_token_id: int | None = 257

    def encode(self, text: str) -> list[int]:
        return list(text.encode("utf-8"))

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        return [list(t.encode("utf-8")) for t in texts]

    def decode(self, ids: Sequence[int]) -> str:
        """Invalid UTF-8 becomes U+FFFD; special ids become ``<bos>``/``<eos>``."""
        parts: list[str] = []
        run = bytearray()
        for i in ids:
            i = int(i)
            if 0 <= i < 256:
                run.append(i)
                continue
            if i not in (256, 257):
                raise ValueError(f"token id {i} out of range for the byte tokenizer (0..257)")
            parts.append(run.decode("utf-8", errors="replace"))
            run.clear()
            parts.append(BOS_TOKEN if i == 256 else EOS_TOKEN)
        parts.append(run.decode("utf-8", errors="replace"))
        return "".join(parts)

    def save(self, directory: Path) -> None:
        atomic_write_json(Path(directory) / META_FILE, {"kind": self.kind, "vocab_size": 258})

    def __repr__(self) -> str:
        return "ByteTokenizer(vocab_size=258)"


class BPETokenizer:
    """Byte-level BPE backed by a ``tokenizers.Tokenizer`` (see :func:`train_bpe`)."""

    kind = "bpe"

    def __init__(self, backend: _BackendTokenizer) -> None:
        self.backend = backend
        # Text that happens to contain "<bos>" is encoded as ordinary bytes, never as the special.
        self.backend.encode_special_tokens = True
        self.vocab_size: int = backend.get_vocab_size(with_added_tokens=True)
        self.bos_token_id: int | None = backend.token_to_id(BOS_TOKEN)
        self.eos_token_id: int | None = backend.token_to_id(EOS_TOKEN)

    def encode(self, text: str) -> list[int]:
        return self.backend.encode(text, add_special_tokens=False).ids

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        encs = self.backend.encode_batch_fast(list(texts), add_special_tokens=False)
        return [e.ids for e in encs]

    def decode(self, ids: Sequence[int]) -> str:
        return self.backend.decode([int(i) for i in ids], skip_special_tokens=False)

    def to_json(self) -> str:
        """The ``tokenizers`` JSON serialisation (what ``save`` writes as ``tokenizer.json``)."""
        return self.backend.to_str(pretty=True)

    def save(self, directory: Path) -> None:
        directory = Path(directory)
        atomic_write_text(directory / BPE_FILE, self.to_json())
        atomic_write_json(directory / META_FILE, {"kind": self.kind, "vocab_size": self.vocab_size})

    def __repr__(self) -> str:
        return f"BPETokenizer(vocab_size={self.vocab_size})"


def train_bpe(texts: Iterable[str], vocab_size: int) -> BPETokenizer:
    """Train a byte-level BPE with specials ``<bos>``, ``<eos>`` (ids 0, 1); deterministic.

    The result may have fewer than ``vocab_size`` tokens when the texts allow no more merges.
    """
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < _BYTE_VOCAB:
        raise ConfigError(
            f"BPE vocab_size must be an integer >= {_BYTE_VOCAB} (256 bytes + <bos> + <eos>), "
            f"got {vocab_size!r}"
        )
    backend = _BackendTokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[BOS_TOKEN, EOS_TOKEN],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator((t for t in texts if t), trainer=trainer)
    return BPETokenizer(backend)


class HFTokenizer:
    """A ``transformers`` tokenizer (for pretrained models); no special tokens added on encode."""

    kind = "hf"

    def __init__(self, tokenizer: PreTrainedTokenizerBase) -> None:
        self.hf = tokenizer
        self.vocab_size: int = len(tokenizer)
        self.bos_token_id: int | None = tokenizer.bos_token_id
        self.eos_token_id: int | None = tokenizer.eos_token_id

    @classmethod
    def from_pretrained(cls, name_or_dir: str | os.PathLike) -> HFTokenizer:
        """Load with ``AutoTokenizer``; with ``HF_HUB_OFFLINE=1`` only local files/cache are used."""
        from transformers import AutoTokenizer

        offline = _is_offline()
        try:
            tok = AutoTokenizer.from_pretrained(
                str(name_or_dir), local_files_only=offline, trust_remote_code=False
            )
        except InterpError:
            raise
        except Exception as e:  # transformers raises OSError/ValueError/... for a bad name
            where = " (HF_HUB_OFFLINE=1: local files and cache only)" if offline else ""
            raise LoadError(
                f"could not load Hugging Face tokenizer {str(name_or_dir)!r}{where}: {_first_line(e)}"
            ) from e
        return cls(tok)

    # whole documents are encoded and then cut into blocks by the caller, so a document longer
    # than the model's context is expected: ``verbose=False`` drops transformers' warning that
    # "Token indices sequence length is longer than the specified maximum"
    def encode(self, text: str) -> list[int]:
        return list(
            self.hf.encode(text, add_special_tokens=False, split_special_tokens=True, verbose=False)
        )

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        if not texts:
            return []
        out = self.hf(
            list(texts), add_special_tokens=False, split_special_tokens=True, verbose=False
        )
        return [list(ids) for ids in out["input_ids"]]

    def decode(self, ids: Sequence[int]) -> str:
        return self.hf.decode(
            [int(i) for i in ids], skip_special_tokens=False, clean_up_tokenization_spaces=False
        )

    def save(self, directory: Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.hf.save_pretrained(str(directory))
        atomic_write_json(directory / META_FILE, {"kind": self.kind, "vocab_size": self.vocab_size})

    def __repr__(self) -> str:
        return (
            f"HFTokenizer({getattr(self.hf, 'name_or_path', '')!r}, vocab_size={self.vocab_size})"
        )


def load_tokenizer(directory: Path) -> Tokenizer:
    """Read back what a tokenizer's ``save(directory)`` wrote."""
    directory = Path(directory)
    if not directory.is_dir():
        raise LoadError(f"tokenizer directory not found: {directory}")
    meta = read_json(directory / META_FILE, what="tokenizer metadata")
    if not isinstance(meta, dict) or not isinstance(meta.get("kind"), str):
        raise CorruptFileError(f"tokenizer metadata {directory / META_FILE} has no 'kind'")
    kind = meta["kind"]
    tok: Tokenizer
    if kind == "byte":
        tok = ByteTokenizer()
    elif kind == "bpe":
        tok = _load_bpe(directory / BPE_FILE)
    elif kind == "hf":
        tok = _load_hf_dir(directory)
    else:
        raise CorruptFileError(
            f"tokenizer metadata {directory / META_FILE} has unknown kind {kind!r} "
            "(expected 'byte', 'bpe' or 'hf')"
        )
    expected = meta.get("vocab_size")
    if expected is not None and expected != tok.vocab_size:
        raise CorruptFileError(
            f"tokenizer in {directory} has vocab_size {tok.vocab_size} but its metadata says "
            f"{expected}"
        )
    return tok


def _load_bpe(path: Path) -> BPETokenizer:
    if not path.is_file():
        raise LoadError(f"BPE tokenizer file not found: {path}")
    try:
        backend = _BackendTokenizer.from_file(str(path))
    except Exception as e:  # tokenizers raises a bare Exception on bad JSON
        raise CorruptFileError(f"BPE tokenizer file {path} is corrupt ({_first_line(e)})") from e
    return BPETokenizer(backend)


def _load_hf_dir(directory: Path) -> HFTokenizer:
    from transformers import AutoTokenizer

    try:
        tok: Any = AutoTokenizer.from_pretrained(
            str(directory), local_files_only=True, trust_remote_code=False
        )
    except Exception as e:
        raise CorruptFileError(
            f"Hugging Face tokenizer in {directory} could not be loaded ({_first_line(e)})"
        ) from e
    return HFTokenizer(tok)
