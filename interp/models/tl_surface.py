"""The TransformerLens surface of interp's :class:`~interp.models.HookedTransformer`.

transformer-lens 4 has no ``HookedTransformer`` of its own; its utilities (``patching``,
``head_detector``, ``ActivationCache``) take any model meeting the structural protocols
``transformer_lens.model_protocol.TransformerLensModel`` (``cfg``, ``run_with_cache``,
``run_with_hooks``, ``to_tokens``) and ``TransformerLensModelWithWeights`` (``blocks``,
``ln_final``, ``accumulated_bias``, ``to_single_token``, ``tokens_to_residual_directions``).
:class:`TransformerLensSurface` gives interp's model that surface:

* ``model.cfg`` is an :class:`InterpTLConfig` (a ``TransformerLensConfig``: ``n_layers``,
  ``d_model``, ``n_heads``, ``d_head``, ``d_mlp``, ``n_ctx``, ``d_vocab``, ``act_fn``,
  ``normalization_type``, ``positional_embedding_type``, ``device``, ``dtype``,
  ``default_prepend_bos``, ...); interp's own :class:`~interp.config.ModelConfig` is
  ``model.config``.  ``cfg.device`` / ``cfg.dtype`` follow ``model.to(...)``.
* ``run_with_cache`` returns an :class:`ActivationCache` (a ``transformer_lens.ActivationCache``
  that also answers ``in`` and ``.get`` like the dict it replaces).
* ``to_tokens`` / ``to_string`` / ``to_str_tokens`` / ``to_single_token`` with TL's
  ``prepend_bos`` semantics, ``generate``, and the stacked weights ``W_Q`` ... ``b_U``.

Text, for each kind of model (``default_prepend_bos`` follows the tokenizer):

* text runs (byte / BPE tokenizer) and imported GPT-2: the tokenizer; ``default_prepend_bos``
  is True (documents were trained with a leading ``<bos>`` / ``<|endoftext|>``);
* token tasks (``copy``, ``qc``, ``flipflop``, ...): the task's token names separated by spaces
  (``"<bos> 3 1 4 <sep>"``, :class:`~interp.tasks.base.TaskTokenizer`); ``default_prepend_bos``
  is True only for tasks with a ``<bos>`` token;
* models with no names (vector input, a bare ``HookedTransformer``): no text, one-line error;
  token ids (a tensor or a list of ints) work everywhere text does.

Token ids given to ``to_tokens`` are returned as a ``[batch, pos]`` tensor untouched
(``prepend_bos`` applies to text only, as in TL's ``to_str_tokens``).  Several texts of different
lengths are right-padded (interp models have no attention mask; with causal attention padding
after a sequence never changes it); left padding is refused.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import einops
import numpy as np
import torch
from torch import Tensor
from transformer_lens import ActivationCache as _TLActivationCache
from transformer_lens import FactoredMatrix
from transformer_lens.config import TransformerLensConfig

from interp.errors import ConfigError, InterpError

if TYPE_CHECKING:
    from interp.config import ModelConfig

__all__ = ["ActivationCache", "InterpTLConfig", "TransformerLensSurface", "tl_config"]

NORMALIZATION_TYPES = {"layernorm": "LN", "rmsnorm": "RMS", "none": None}
# TL's names where TL has the encoding; interp's own name otherwise
POSITIONAL_TYPES = {"absolute": "standard", "rope": "rotary", "alibi": "alibi"}


@dataclass
class InterpTLConfig(TransformerLensConfig):
    """``model.cfg``: TransformerLens' config fields for an interp model, plus a few of
    ``HookedTransformerConfig``'s that TL users read (``model_name``, ``d_vocab_out``,
    ``rotary_dim``, ``rotary_base``, ``tokenizer_prepends_bos``, ...).  Derived from
    ``model.config`` (interp's :class:`~interp.config.ModelConfig`); editing it changes no
    computation, except ``default_prepend_bos`` (read by ``to_tokens``)."""

    model_name: str = "interp"
    original_architecture: str = "interp.HookedTransformer"
    d_vocab_out: int = -1
    rotary_dim: int | None = None
    rotary_base: float = 10000.0
    tokenizer_prepends_bos: bool = False  # interp tokenizers never add special tokens
    tokenizer_name: str | None = None  # kind of the text codec: byte, bpe, hf, task
    tie_word_embeddings: bool = False
    initializer_range: float = 0.02
    use_attn_scale: bool = True
    attn_scale: float = -1.0
    parallel_attn_mlp: bool = False
    use_local_attn: bool = False
    use_hook_tokens: bool = False
    input_kind: str = "tokens"


def tl_config(config: ModelConfig, device: str = "cpu", dtype: torch.dtype = torch.float32):
    """The :class:`InterpTLConfig` of an interp :class:`~interp.config.ModelConfig`."""
    rotary_dim, rotary_base = None, 10000.0
    if config.positional == "rope":
        options = dict(config.positional_options)
        rotary_base = float(options.get("base", 10000.0))
        rotary_dim = options.get("rotary_dim") or config.head_dim - config.head_dim % 2
    norm = NORMALIZATION_TYPES[config.normalization]
    return InterpTLConfig(
        d_model=config.d_model,
        d_head=config.head_dim,
        n_layers=config.n_layers,
        n_ctx=config.n_ctx,
        n_heads=config.n_heads,
        d_mlp=config.d_mlp,
        d_vocab=config.d_vocab,
        d_vocab_out=config.d_vocab,
        device=device,
        default_prepend_bos=False,
        positional_embedding_type=POSITIONAL_TYPES.get(config.positional, config.positional),
        attn_only=config.d_mlp == 0,
        uses_rms_norm=norm == "RMS",
        final_rms=norm == "RMS",
        eps=config.eps,
        act_fn=config.act_fn,
        normalization_type=norm,
        dtype=dtype,
        rotary_dim=rotary_dim,
        rotary_base=rotary_base,
        tie_word_embeddings=config.tied_embeddings,
        initializer_range=config.init_range,
        attn_scale=float(config.head_dim) ** 0.5,
        input_kind=config.input_kind,
    )


class ActivationCache(_TLActivationCache):
    """``transformer_lens.ActivationCache`` (``cache["resid_post", 3]``, ``accumulated_resid``,
    ``decompose_resid``, ``logit_attrs``, ...) that also answers ``name in cache`` and
    ``cache.get(name)`` like the plain dict interp's ``run_with_cache`` used to return."""

    def __contains__(self, key: object) -> bool:
        return key in self.cache_dict

    def get(self, key: str, default: Any = None) -> Any:
        return self.cache_dict.get(key, default)


def _is_ids(value: Any) -> bool:
    """A tensor / array of token ids, or a (nested) list of ints."""
    if isinstance(value, Tensor | np.ndarray):
        return True
    if isinstance(value, list | tuple) and value:
        first = value[0]
        if isinstance(first, list | tuple):
            return bool(first) and all(isinstance(i, int | np.integer) for i in first)
        return all(isinstance(i, int | np.integer) and not isinstance(i, bool) for i in value)
    return False


def _positive_int(value: Any, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


class TransformerLensSurface:
    """Mixin for :class:`~interp.models.HookedTransformer`: see the module docstring.

    The host sets ``self.config`` (a ModelConfig), ``self._tl_cfg`` and has ``embed``,
    ``pos_embed``, ``blocks``, ``ln_final``, ``unembed`` and ``forward``.
    """

    config: ModelConfig
    _tl_cfg: InterpTLConfig

    # ------------------------------------------------------------------ config
    @property
    def cfg(self) -> InterpTLConfig:
        """TransformerLens' config of this model (interp's own: ``model.config``)."""
        return self._tl_cfg

    def _apply(self, fn: Any, *args: Any, **kwargs: Any) -> Any:  # .to / .cuda / .double ...
        out = super()._apply(fn, *args, **kwargs)  # type: ignore[misc]
        param = next(self.parameters(), None)  # type: ignore[attr-defined]
        if param is not None and getattr(self, "_tl_cfg", None) is not None:
            self._tl_cfg.device = str(param.device)
            self._tl_cfg.dtype = param.dtype
        return out

    @property
    def tokenizer(self) -> Any:
        """The model's text tokenizer (interp's byte / BPE / HF wrapper), or None."""
        return self.__dict__.get("_tokenizer")

    @tokenizer.setter
    def tokenizer(self, value: Any) -> None:
        self.__dict__["_tokenizer"] = value
        self._refresh_text()

    @property
    def task(self) -> Any:
        """The synthetic task a run trained on (``interp.tasks``), or None."""
        return self.__dict__.get("_task")

    @task.setter
    def task(self, value: Any) -> None:
        self.__dict__["_task"] = value
        self._refresh_text()

    def _refresh_text(self) -> None:
        cfg = self.__dict__.get("_tl_cfg")
        if cfg is not None:
            codec = self._codec()
            cfg.default_prepend_bos = codec is not None and codec.bos_token_id is not None
            cfg.tokenizer_name = getattr(codec, "kind", None)

    def _codec(self) -> Any:
        """What turns text into ids here: the tokenizer, else the task's token names."""
        if self.tokenizer is not None:
            return self.tokenizer
        task = self.task
        if task is not None and self.config.input_kind == "tokens":
            return task.tokenizer(self.config.d_vocab)
        return None

    def _need_codec(self, what: str) -> Any:
        codec = self._codec()
        if codec is not None:
            return codec
        if self.config.input_kind == "vector":
            raise InterpError(f"{what}: this model reads vectors, not tokens (it has no text)")
        task = self.task
        source = f"trained on task {task.name!r}, which names no tokens" if task else "no tokenizer"
        raise InterpError(f"{what}: this model has no text ({source}); pass token ids instead")

    # ------------------------------------------------------------------ text <-> tokens
    def to_tokens(
        self,
        input: str | list[str] | Tensor | list[int],
        prepend_bos: bool | None = None,
        padding_side: str | None = None,
        move_to_device: bool = True,
        truncate: bool = True,
    ) -> Tensor:
        """Text (or a list of texts) -> token ids ``[batch, pos]``, as TL's ``to_tokens``.

        ``prepend_bos=None`` uses ``cfg.default_prepend_bos``; True puts the BOS id first (one
        line if the model has none).  Texts of different lengths are right-padded with the
        pad / EOS / BOS id; ``truncate`` cuts at ``cfg.n_ctx``.  Token ids are returned as a
        ``[batch, pos]`` long tensor, unchanged.
        """
        if _is_ids(input):
            tokens = torch.as_tensor(np.asarray(input) if isinstance(input, list) else input)
            if tokens.ndim == 1:
                tokens = tokens.unsqueeze(0)
            if tokens.ndim != 2 or tokens.is_floating_point() or tokens.is_complex():
                raise ConfigError(
                    f"token ids must be integers shaped [pos] or [batch pos], got {tuple(tokens.shape)}"
                )
            tokens = tokens.long()
        else:
            texts = [input] if isinstance(input, str) else input
            if not isinstance(texts, list | tuple) or not all(isinstance(t, str) for t in texts):
                raise ConfigError(
                    f"to_tokens takes a string, a list of strings or token ids, not {type(input).__name__}"
                )
            if not texts:
                raise ConfigError("to_tokens got an empty list")
            if padding_side not in (None, "right"):
                raise ConfigError(
                    f"padding_side={padding_side!r}: interp models have no attention mask, so "
                    "only right padding (which never changes earlier positions) is allowed"
                )
            codec = self._need_codec("to_tokens")
            bos = self._bos_id(prepend_bos, codec)
            rows = [([] if bos is None else [bos]) + list(codec.encode(t)) for t in texts]
            if truncate:
                rows = [r[: self.cfg.n_ctx] for r in rows]
            width = max(len(r) for r in rows)
            if width == 0:
                raise ConfigError("to_tokens: the text is empty and no BOS was prepended")
            pad = next(
                (
                    i
                    for i in (getattr(getattr(codec, "hf", None), "pad_token_id", None),)
                    + (codec.eos_token_id, codec.bos_token_id, 0)
                    if i is not None
                ),
                0,
            )
            tokens = torch.tensor([r + [pad] * (width - len(r)) for r in rows], dtype=torch.long)
        if move_to_device:
            tokens = tokens.to(self.cfg.device)
        return tokens

    def _bos_id(self, prepend_bos: bool | None, codec: Any) -> int | None:
        if prepend_bos is None:
            prepend_bos = bool(self.cfg.default_prepend_bos)
        if not prepend_bos:
            return None
        bos = codec.bos_token_id
        if bos is None:
            raise InterpError("prepend_bos=True, but this model's tokens have no BOS token")
        return int(bos)

    def _ids(self, tokens: Any) -> list[int]:
        ids = torch.as_tensor(np.asarray(tokens) if isinstance(tokens, list) else tokens)
        return [int(i) for i in ids.reshape(-1).tolist()]

    def to_string(self, tokens: Tensor | list[int] | np.ndarray) -> str | list[str]:
        """Token ids -> text: ``[pos]`` -> one string, ``[batch pos]`` -> a list of strings."""
        codec = self._need_codec("to_string")
        ids = torch.as_tensor(np.asarray(tokens) if isinstance(tokens, list) else tokens)
        if ids.ndim == 2:
            return [codec.decode(self._ids(row)) for row in ids]
        if ids.ndim > 2:
            raise ConfigError(f"to_string takes [pos] or [batch pos] ids, got {tuple(ids.shape)}")
        return codec.decode(self._ids(ids))

    def to_str_tokens(
        self,
        input: str | list | Tensor | np.ndarray,
        prepend_bos: bool | None = None,
        padding_side: str | None = None,
    ) -> list[str] | list[list[str]]:
        """Each token as its own string (text is tokenised first, with ``prepend_bos``); a list
        of texts gives a list of lists; ids (a tensor, array or list of ints) are decoded."""
        if isinstance(input, list) and not _is_ids(input):
            return [self.to_str_tokens(item, prepend_bos, padding_side) for item in input]
        codec = self._need_codec("to_str_tokens")
        if isinstance(input, str):
            ids = self._ids(self.to_tokens(input, prepend_bos, padding_side, move_to_device=False))
        elif _is_ids(input):
            tensor = torch.as_tensor(np.asarray(input) if isinstance(input, list) else input)
            tensor = tensor.squeeze()
            if tensor.ndim > 1:
                raise ConfigError(
                    f"to_str_tokens takes one sequence of ids, got shape {tuple(tensor.shape)}"
                )
            ids = self._ids(tensor)
        else:
            raise ConfigError(f"to_str_tokens cannot read a {type(input).__name__}")
        return [codec.decode([i]) for i in ids]

    def to_single_token(self, string: str) -> int:
        """The id of a string that is exactly one token (no BOS)."""
        tokens = self.to_tokens(string, prepend_bos=False, move_to_device=False)[0]
        if tokens.numel() != 1:
            raise InterpError(f"{string!r} is not a single token ({tokens.numel()} tokens)")
        return int(tokens.item())

    def to_single_str_token(self, int_token: int) -> str:
        """The string of one token id."""
        return self.to_str_tokens([int(int_token)])[0]  # type: ignore[return-value]

    def get_token_position(
        self,
        single_token: str | int,
        input: str | Tensor,
        mode: str = "first",
        prepend_bos: bool | None = None,
        padding_side: str | None = None,
    ) -> int:
        """Position of ``single_token`` in ``input`` (text or ``[pos]`` / ``[1 pos]`` ids)."""
        tokens = (
            self.to_tokens(input, prepend_bos, padding_side, move_to_device=False)
            if isinstance(input, str)
            else torch.as_tensor(input)
        )
        if tokens.ndim == 2:
            if tokens.shape[0] != 1:
                raise ConfigError(
                    f"get_token_position takes one sequence, got {tuple(tokens.shape)}"
                )
            tokens = tokens[0]
        token = (
            self.to_single_token(single_token) if isinstance(single_token, str) else single_token
        )
        found = (tokens == int(token)).nonzero().flatten().tolist()
        if not found:
            raise InterpError(f"token {single_token!r} does not occur in the input")
        if mode not in ("first", "last"):
            raise ConfigError(f"mode must be 'first' or 'last', not {mode!r}")
        return int(found[0] if mode == "first" else found[-1])

    def _as_input(self, inputs: Any, prepend_bos: bool | None) -> Any:
        """forward's input: text becomes tokens, tensors pass unchanged."""
        if isinstance(inputs, str) or (
            isinstance(inputs, list) and inputs and isinstance(inputs[0], str)
        ):
            return self.to_tokens(inputs, prepend_bos=prepend_bos)
        return inputs

    # ------------------------------------------------------------------ caching
    def run_with_cache(
        self, *model_args: Any, return_cache_object: bool = True, **kwargs: Any
    ) -> tuple[Any, ActivationCache | dict[str, Tensor]]:
        """Run the model and cache activations, as TL: ``names_filter``, ``device``,
        ``remove_batch_dim``, ``incl_bwd`` (backward from the scalar output, e.g.
        ``return_type="loss"``; gradients cached as ``NAME_grad``), ``pos_slice``.  Returns
        ``(output, ActivationCache)``, or a plain dict with ``return_cache_object=False``."""
        remove_batch_dim = bool(kwargs.get("remove_batch_dim", False))
        if model_args and not isinstance(model_args[0], Tensor):
            model_args = (self._as_input(model_args[0], kwargs.pop("prepend_bos", None)),) + tuple(
                model_args[1:]
            )
        out, cache_dict = super().run_with_cache(*model_args, **kwargs)  # type: ignore[misc]
        if not return_cache_object:
            return out, cache_dict
        return out, ActivationCache(cache_dict, self, has_batch_dim=not remove_batch_dim)

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
        from transformer_lens.utilities import sample_logits

        max_new_tokens = _positive_int(max_new_tokens, "max_new_tokens", minimum=0)
        if return_type not in ("input", "str", "tokens", None):
            raise ConfigError(
                f"return_type must be 'input', 'str' or 'tokens', not {return_type!r}"
            )
        if not (temperature >= 0 and freq_penalty >= 0 and repetition_penalty > 0):
            raise ConfigError(
                "temperature and freq_penalty must be >= 0 and repetition_penalty > 0"
            )
        if top_k is not None:
            _positive_int(top_k, "top_k")
        if top_p is not None and not 0 < top_p <= 1:
            raise ConfigError(f"top_p must be in (0, 1], got {top_p!r}")
        if seed is not None:
            _positive_int(seed, "seed", minimum=0)
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
            codec = self._codec()
            eos_token_id = getattr(codec, "eos_token_id", None)
        stop = stop_at_eos and eos_token_id is not None
        finished = torch.zeros(tokens.shape[0], dtype=torch.bool, device=tokens.device)

        def step() -> Tensor:
            logits = self(tokens)[:, -1, :]  # type: ignore[operator]
            if do_sample and temperature > 0:
                return sample_logits(
                    logits,
                    top_k=top_k,
                    top_p=top_p,
                    temperature=temperature,
                    freq_penalty=freq_penalty,
                    repetition_penalty=repetition_penalty,
                    tokens=tokens,
                )
            return sample_logits(
                logits, temperature=0.0, repetition_penalty=repetition_penalty, tokens=tokens
            )

        def loop() -> None:
            nonlocal tokens, finished
            for _ in range(max_new_tokens):
                new = step().to(tokens.device)
                if stop:
                    new = torch.where(finished, torch.full_like(new, int(eos_token_id)), new)
                    finished = finished | (new == int(eos_token_id))
                tokens = torch.cat([tokens, new[:, None]], dim=1)
                if stop and bool(finished.all()):
                    break

        if seed is None:
            loop()
        else:
            devices = [tokens.device] if tokens.device.type == "cuda" else []
            with torch.random.fork_rng(devices=devices):
                torch.manual_seed(seed)
                loop()
        if return_type == "tokens" or (return_type == "input" and not text_input):
            return tokens
        strings = self.to_string(tokens)
        if return_type == "input" and isinstance(input, str):
            return strings[0]
        return strings

    # ------------------------------------------------------------------ weights (TL names)
    def _stack(self, get: Callable[[Any], Tensor], what: str) -> Tensor:
        blocks = list(self.blocks)  # type: ignore[attr-defined]
        if what.startswith("mlp") and not all(b.has_mlp for b in blocks):
            raise AttributeError(f"this model is attention-only (d_mlp=0): it has no {what}")
        return torch.stack([get(b) for b in blocks])

    @property
    def W_Q(self) -> Tensor:
        """[layer head_index d_model d_head]"""
        return self._stack(lambda b: b.attn.W_Q, "attn")

    @property
    def W_K(self) -> Tensor:
        """[layer head_index d_model d_head]"""
        return self._stack(lambda b: b.attn.W_K, "attn")

    @property
    def W_V(self) -> Tensor:
        """[layer head_index d_model d_head]"""
        return self._stack(lambda b: b.attn.W_V, "attn")

    @property
    def W_O(self) -> Tensor:
        """[layer head_index d_head d_model]"""
        return self._stack(lambda b: b.attn.W_O, "attn")

    @property
    def b_Q(self) -> Tensor:
        """[layer head_index d_head]"""
        return self._stack(lambda b: b.attn.b_Q, "attn")

    @property
    def b_K(self) -> Tensor:
        """[layer head_index d_head]"""
        return self._stack(lambda b: b.attn.b_K, "attn")

    @property
    def b_V(self) -> Tensor:
        """[layer head_index d_head]"""
        return self._stack(lambda b: b.attn.b_V, "attn")

    @property
    def b_O(self) -> Tensor:
        """[layer d_model]"""
        return self._stack(lambda b: b.attn.b_O, "attn")

    @property
    def W_in(self) -> Tensor:
        """[layer d_model d_mlp]"""
        return self._stack(lambda b: b.mlp.W_in, "mlp W_in")

    @property
    def W_out(self) -> Tensor:
        """[layer d_mlp d_model]"""
        return self._stack(lambda b: b.mlp.W_out, "mlp W_out")

    @property
    def b_in(self) -> Tensor:
        """[layer d_mlp]"""
        return self._stack(lambda b: b.mlp.b_in, "mlp b_in")

    @property
    def b_out(self) -> Tensor:
        """[layer d_model]"""
        return self._stack(lambda b: b.mlp.b_out, "mlp b_out")

    @property
    def W_E(self) -> Tensor:
        """[d_vocab d_model] (``[d_input d_model]`` for vector input)"""
        return self.embed.W_E  # type: ignore[attr-defined]

    @property
    def W_U(self) -> Tensor:
        """[d_model d_vocab] (``W_E.T`` when the embeddings are tied)"""
        return self.unembed.weight  # type: ignore[attr-defined]

    @property
    def b_U(self) -> Tensor:
        """[d_vocab] (zeros, not a parameter, for models without one such as GPT-2)"""
        return self.unembed.b_U  # type: ignore[attr-defined]

    @property
    def W_pos(self) -> Tensor:
        """[n_ctx d_model]: learned positions, or the fixed sinusoidal table.  Models whose
        positions live in attention (RoPE, ALiBi, CoPE, none) have no W_pos (AttributeError)."""
        pos_embed = self.pos_embed  # type: ignore[attr-defined]
        if pos_embed is None:
            raise AttributeError(
                f"W_pos: positional encoding {self.config.positional!r} adds no vector per position"
            )
        if hasattr(pos_embed, "W_pos"):
            return pos_embed.W_pos
        device = next(self.parameters()).device  # type: ignore[attr-defined]
        return pos_embed(torch.arange(self.cfg.n_ctx, device=device)).to(self.cfg.dtype)

    @property
    def W_E_pos(self) -> Tensor:
        """[d_vocab + n_ctx, d_model]"""
        return torch.cat([self.W_E, self.W_pos], dim=0)

    @property
    def QK(self) -> FactoredMatrix:
        """[layer head_index d_model d_model] as a ``FactoredMatrix`` (positions not included)"""
        return FactoredMatrix(self.W_Q, self.W_K.transpose(-2, -1))

    @property
    def OV(self) -> FactoredMatrix:
        """[layer head_index d_model d_model] as a ``FactoredMatrix``"""
        return FactoredMatrix(self.W_V, self.W_O)

    # ------------------------------------------------------------------ for ActivationCache
    def tokens_to_residual_directions(self, tokens: str | int | Tensor) -> Tensor:
        """Unembedding columns of ``tokens``: ``[*tokens.shape, d_model]`` (``[d_model]`` for one)."""
        if isinstance(tokens, Tensor) and tokens.numel() > 1:
            return einops.rearrange(self.W_U[:, tokens], "d_model ... -> ... d_model")
        if isinstance(tokens, str):
            token = self.to_single_token(tokens)
        elif isinstance(tokens, int | np.integer) and not isinstance(tokens, bool):
            token = int(tokens)
        elif isinstance(tokens, Tensor) and tokens.numel() == 1:
            token = int(tokens.item())
        else:
            raise ConfigError(f"cannot read tokens of type {type(tokens).__name__}")
        return self.W_U[:, token]

    def accumulated_bias(
        self, layer: int, mlp_input: bool = False, include_mlp_biases: bool = True
    ) -> Tensor:
        """Sum of the attention (``b_O``) and MLP (``b_out``) output biases written to the
        residual stream before ``layer`` (and ``b_O`` of ``layer`` itself with ``mlp_input``)."""
        blocks = self.blocks  # type: ignore[attr-defined]
        out = torch.zeros(self.cfg.d_model, device=self.cfg.device, dtype=self.cfg.dtype)
        for block in list(blocks)[:layer]:
            out = out + block.attn.b_O
            if include_mlp_biases and block.has_mlp:
                out = out + block.mlp.b_out
        if mlp_input:
            if layer >= len(blocks):
                raise ConfigError("mlp_input: there is no layer after the last one")
            out = out + blocks[layer].attn.b_O
        return out
