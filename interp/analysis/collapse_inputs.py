"""The collapse analysis's inputs: its config, the families of sequence pairs v / v* and their
tokens (see :mod:`interp.analysis.collapse`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from interp.analysis.precision import (
    FORMATS,
)
from interp.config import ModelConfig, _Config
from interp.errors import ConfigError

PAPER_PROMPT = "How many ones are in the following sequence?"
FAMILIES = ("ones", "digits", "pattern")
METHODS = ("auto", "one-pass", "per-length")
ProgressFn = Callable[[int, int], None]


@dataclass(frozen=True)
class CollapseConfig(_Config):
    """What ``interp collapse`` measures (inert; validated by :func:`run_collapse`)."""

    family: str = "ones"
    prompt: str | None = None  # None: the paper's prompt (models with a tokenizer), else empty
    prompt_tokens: tuple[int, ...] | None = None  # token ids replacing BOS + prompt
    pattern: str | None = None  # text, for family="pattern"
    tokens: tuple[int, ...] | None = None  # token ids, for family="pattern"
    min_length: int = 1
    max_length: int | None = None  # None: as long as the context allows
    formats: tuple[str, ...] = tuple(FORMATS)
    mode: str = "auto"  # auto | emulated | native
    separator: str | int | None = ","  # text (one token) or a token id
    every: int = 3  # separator every k content tokens; 0 = no separator sweep
    method: str = "auto"  # auto = one-pass with per-length fallback | per-length
    seed: int = 0
    batch_tokens: int = 8192  # padded tokens per forward batch
    bos: bool = True  # start with the tokenizer's BOS when it has one
    # tokens the longest sequence may hold; None: the model's context.  Past it only for an
    # interp model whose positions need no trained table (RoPE, ALiBi, none: ``relative``)
    context: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """The fields, ``context`` only when set (a sweep inside the model's context stores
        what it stored before the field existed: its results and resume checks unchanged)."""
        body = super().to_dict()
        if body.get("context") is None:
            body.pop("context", None)
        return body


@dataclass(frozen=True)
class PairFamily:
    """Token pairs (v_n, v*_n) for n in ``lengths``."""

    name: str
    description: str
    prefix: tuple[int, ...]  # BOS + prompt tokens
    content: Callable[[int], list[int]]  # n -> c_1..c_n
    separator: int | None = None
    every: int = 0
    notes: tuple[str, ...] = field(default_factory=tuple)

    def sequence(self, n: int) -> list[int]:
        c = self.content(n)
        if self.separator is None or self.every <= 0:
            body = c
        else:
            body = []
            for i, tok in enumerate(c):
                if i and i % self.every == 0:
                    body.append(self.separator)
                body.append(tok)
        return list(self.prefix) + body

    def pair(self, n: int) -> tuple[list[int], list[int]]:
        v = self.sequence(n)
        return v, v + [v[-1]]

    def tokens_needed(self, n: int) -> int:
        """Tokens of v*_n."""
        extra = (n - 1) // self.every if self.separator is not None and self.every > 0 else 0
        return len(self.prefix) + n + extra + 1

    def with_separator(self, separator: int, every: int) -> PairFamily:
        return PairFamily(
            self.name,
            f"{self.description}, separator every {every}",
            self.prefix,
            self.content,
            separator,
            every,
            self.notes,
        )


# --------------------------------------------------------------------------- tokens


def _encode(tokenizer: Any, text: str) -> list[int]:
    try:
        ids = tokenizer.encode(text, add_special_tokens=False)
    except TypeError:
        ids = tokenizer.encode(text)
    return [int(i) for i in ids]


def _single_token(tokenizer: Any, text: str, what: str) -> int:
    ids = _encode(tokenizer, text)
    if len(ids) != 1:
        raise ConfigError(
            f"{what} {text!r} is {len(ids)} tokens for this tokenizer, not one; "
            "give token ids with --token-ids instead"
        )
    return ids[0]


def _vocab(model: Any) -> int:
    return int(model.cfg.d_vocab)


def _check_ids(ids: Sequence[int], model: Any, what: str) -> None:
    bad = [i for i in ids if not 0 <= int(i) < _vocab(model)]
    if bad:
        raise ConfigError(
            f"{what} token id {bad[0]} is outside the vocabulary (0..{_vocab(model) - 1})"
        )


def build_family(model: Any, cfg: CollapseConfig) -> PairFamily:
    """The pair family of ``cfg`` in the model's tokens (without separators)."""
    if cfg.family not in FAMILIES:
        raise ConfigError(f"unknown family {cfg.family!r}; choose from {', '.join(FAMILIES)}")
    tok = getattr(model, "tokenizer", None)
    notes: list[str] = []
    prefix: list[int] = []
    if tok is not None:
        bos = getattr(tok, "bos_token_id", None)
        if cfg.bos and bos is not None:
            prefix.append(int(bos))
        prompt = PAPER_PROMPT if cfg.prompt is None and cfg.family != "pattern" else cfg.prompt
        if prompt:
            prefix += _encode(tok, prompt)
        digits = [_single_token(tok, str(d), "digit") for d in range(10)]
    else:
        if cfg.prompt:
            raise ConfigError("this model has no tokenizer, so it takes no text prompt; give ids")
        prompt = ""
        digits = [d % _vocab(model) for d in range(10)]
        notes.append("the model has no tokenizer: digit d is token id d and the prompt is empty")
    one = digits[1]
    if cfg.family == "ones":
        desc = f"{prompt!r} + n ones" if prompt else "n ones"

        def content(n: int) -> list[int]:
            return [one] * n

    elif cfg.family == "digits":
        g = torch.Generator().manual_seed(cfg.seed)
        pool = torch.randint(0, 10, (max(context_of(model, cfg), 1),), generator=g).tolist()
        desc = (f"{prompt!r} + " if prompt else "") + "n-1 random digits + 1 (v* ends in 1 1)"

        def content(n: int) -> list[int]:
            return [digits[d] for d in pool[: n - 1]] + [one]

    else:
        if cfg.tokens is not None:
            unit = [int(t) for t in cfg.tokens]
        elif cfg.pattern is not None:
            if tok is None:
                raise ConfigError(
                    "this model has no tokenizer: give the pattern as --token-ids ids"
                )
            unit = _encode(tok, cfg.pattern)
        else:
            raise ConfigError("family 'pattern' needs --pattern TEXT or --token-ids IDS")
        if not unit:
            raise ConfigError("empty pattern: give at least one token")
        _check_ids(unit, model, "pattern")
        shown = cfg.pattern if cfg.tokens is None else ",".join(map(str, unit))
        desc = (f"{prompt!r} + " if prompt else "") + f"pattern {shown!r} repeated to n tokens"

        def content(n: int) -> list[int]:
            return [unit[i % len(unit)] for i in range(n)]

    if cfg.prompt_tokens is not None:
        prefix = [int(t) for t in cfg.prompt_tokens]
        desc = f"prompt ids {','.join(map(str, prefix))} + " + desc
    _check_ids(prefix, model, "prompt")
    return PairFamily(cfg.family, desc, tuple(prefix), content, notes=tuple(notes))


def separator_id(model: Any, separator: str | int | None) -> int | None:
    if separator is None or separator == "":
        return None
    tok = getattr(model, "tokenizer", None)
    if isinstance(separator, int) or (isinstance(separator, str) and separator.strip().isdigit()):
        if tok is None or isinstance(separator, int):
            sid = int(separator)
            _check_ids([sid], model, "separator")
            return sid
    if tok is None:
        return None  # no tokenizer and no id: the separator sweep is skipped
    return _single_token(tok, str(separator), "separator")


def context_of(model: Any, cfg: CollapseConfig) -> int:
    """The longest sequence the sweep may run: ``cfg.context``, else the model's context.
    Past the model's context only where its positions need no trained table (an interp model
    with a ``relative`` encoding); anything else is refused in one line."""
    n_ctx = int(model.cfg.n_ctx)
    if cfg.context is None:
        return n_ctx
    if isinstance(cfg.context, bool) or not isinstance(cfg.context, int) or cfg.context < 2:
        raise ConfigError(f"context must be a whole number of tokens >= 2, not {cfg.context!r}")
    if cfg.context > n_ctx and not positions_extrapolate(model):
        raise ConfigError(
            f"context {cfg.context} is past the model's {n_ctx} tokens, and its positions are "
            "learned (or unknown) up to there; give at most its context"
        )
    return cfg.context


def positions_extrapolate(model: Any) -> bool:
    """Does ``model`` run past its context: an interp model whose positional encoding adds no
    trained position table (RoPE, ALiBi, none)?"""
    own = getattr(model, "config", None)
    if not isinstance(own, ModelConfig) or getattr(model, "pos_embed", None) is not None:
        return False
    from interp.models.positional.base import _REGISTRY

    cls = _REGISTRY.get(own.positional)
    return bool(cls is not None and cls.relative)
