"""``generate`` as TransformerLens has it, for interp's models: a mixin of
:class:`~interp.models.tl_surface.TransformerLensSurface`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from interp.errors import ConfigError, InterpError

if TYPE_CHECKING:
    from interp.config import ModelConfig

__all__ = ["Generate"]


def _positive_int(value: Any, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


class Generate:
    """Mixin: the host has ``config``, ``cfg``, ``pos_embed``, ``forward``, ``to_tokens``,
    ``to_string`` and ``_codec``."""

    config: ModelConfig

    # ------------------------------------------------------------------ generation
    @torch.no_grad()
    def generate(
        self,
        input: str | list[str] | Tensor = "",
        max_new_tokens: int = 10,
        stop_at_eos: bool = True,
        eos_token_id: int | None = None,
        do_sample: bool = True,
        top_k: int | None = None,
        top_p: float | None = None,
        temperature: float = 1.0,
        freq_penalty: float = 0.0,
        repetition_penalty: float = 1.0,
        prepend_bos: bool | None = None,
        padding_side: str | None = None,
        return_type: str | None = "input",
        seed: int | None = None,
        verbose: bool = False,
        use_past_kv_cache: bool = True,
    ) -> str | list[str] | Tensor:
        """Continue ``input`` by up to ``max_new_tokens`` tokens, as TL's ``generate``.

        Greedy with ``do_sample=False`` (or ``temperature=0``); else sampled with
        ``temperature`` / ``top_k`` / ``top_p`` / ``freq_penalty`` / ``repetition_penalty``
        (TL's ``sample_logits``), from the global RNG, or under ``seed`` without touching it.
        ``stop_at_eos`` stops a sequence at ``eos_token_id`` (default: the tokenizer's; no
        stopping when the model has none); finished sequences are padded with it.
        ``return_type``: ``"input"`` (the input's kind), ``"str"`` or ``"tokens"``.
        Each step reruns the whole sequence (interp models keep no KV cache, so
        ``use_past_kv_cache`` and ``verbose`` are accepted and ignored).
        """
        _check_generate(
            max_new_tokens,
            return_type,
            temperature,
            freq_penalty,
            repetition_penalty,
            top_k,
            top_p,
            seed,
        )
        if self.config.input_kind != "tokens":
            raise InterpError("generate: this model reads vectors, not tokens")
        text_input = isinstance(input, str) or (
            isinstance(input, list) and bool(input) and isinstance(input[0], str)
        )
        if text_input and isinstance(input, list):
            lengths = {len(self.to_tokens(t, prepend_bos, move_to_device=False)[0]) for t in input}
            if len(lengths) > 1:
                raise ConfigError(
                    "generate from several texts needs them to have the same number of tokens "
                    "(interp models have no attention mask to hide padding)"
                )
        tokens = self.to_tokens(input, prepend_bos, padding_side, truncate=False)
        if self.pos_embed is not None and tokens.shape[1] + max_new_tokens > self.cfg.n_ctx:  # type: ignore[attr-defined]
            raise ConfigError(
                f"{tokens.shape[1]} prompt tokens + {max_new_tokens} new ones exceed the model's "
                f"context of {self.cfg.n_ctx} (learned positions stop there)"
            )
        if eos_token_id is None:
            eos_token_id = getattr(self._codec(), "eos_token_id", None)
        sampling: dict[str, Any] = {"temperature": 0.0}  # greedy
        if do_sample and temperature > 0:
            sampling = {"top_k": top_k, "top_p": top_p, "temperature": temperature}
            sampling["freq_penalty"] = freq_penalty
        sampling["repetition_penalty"] = repetition_penalty
        eos = int(eos_token_id) if stop_at_eos and eos_token_id is not None else None
        if seed is None:
            tokens = self._extend(tokens, max_new_tokens, sampling, eos)
        else:
            devices = [tokens.device] if tokens.device.type == "cuda" else []
            with torch.random.fork_rng(devices=devices):
                torch.manual_seed(seed)
                tokens = self._extend(tokens, max_new_tokens, sampling, eos)
        if return_type == "tokens" or (return_type == "input" and not text_input):
            return tokens
        strings = self.to_string(tokens)
        if return_type == "input" and isinstance(input, str):
            return strings[0]
        return strings

    def _extend(
        self, tokens: Tensor, max_new_tokens: int, sampling: dict[str, Any], eos: int | None
    ) -> Tensor:
        """``tokens`` with up to ``max_new_tokens`` more, each drawn by TL's ``sample_logits``
        from the last position's logits; a sequence that emitted ``eos`` is padded with it."""
        from transformer_lens.utilities import sample_logits

        finished = torch.zeros(tokens.shape[0], dtype=torch.bool, device=tokens.device)
        for _ in range(max_new_tokens):
            logits = self(tokens)[:, -1, :]  # type: ignore[operator]
            new = sample_logits(logits, tokens=tokens, **sampling).to(tokens.device)
            if eos is not None:
                new = torch.where(finished, torch.full_like(new, eos), new)
                finished = finished | (new == eos)
            tokens = torch.cat([tokens, new[:, None]], dim=1)
            if eos is not None and bool(finished.all()):
                break
        return tokens


def _check_generate(
    max_new_tokens: Any,
    return_type: Any,
    temperature: float,
    freq_penalty: float,
    repetition_penalty: float,
    top_k: Any,
    top_p: Any,
    seed: Any,
) -> None:
    """One-line errors for ``generate``'s arguments, before anything runs."""
    _positive_int(max_new_tokens, "max_new_tokens", minimum=0)
    if return_type not in ("input", "str", "tokens", None):
        raise ConfigError(f"return_type must be 'input', 'str' or 'tokens', not {return_type!r}")
    if not (temperature >= 0 and freq_penalty >= 0 and repetition_penalty > 0):
        raise ConfigError("temperature and freq_penalty must be >= 0 and repetition_penalty > 0")
    if top_k is not None:
        _positive_int(top_k, "top_k")
    if top_p is not None and not 0 < top_p <= 1:
        raise ConfigError(f"top_p must be in (0, 1], got {top_p!r}")
    if seed is not None:
        _positive_int(seed, "seed", minimum=0)
