"""Text data: tokenizers, corpora, document splits and token blocks."""

from interp.data.blocks import TextDataset, build_text_dataset, pack_blocks, split_documents
from interp.data.corpus import BUILTIN_SPECS, Corpus, load_corpus
from interp.data.tokenizer import (
    BPETokenizer,
    ByteTokenizer,
    HFTokenizer,
    Tokenizer,
    load_tokenizer,
    train_bpe,
)

__all__ = [
    "BUILTIN_SPECS",
    "BPETokenizer",
    "ByteTokenizer",
    "Corpus",
    "HFTokenizer",
    "TextDataset",
    "Tokenizer",
    "build_text_dataset",
    "load_corpus",
    "load_tokenizer",
    "pack_blocks",
    "split_documents",
    "train_bpe",
]
