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

from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from interp.errors import ConfigError, InterpError
from interp.models.tl_config import (  # noqa: F401  (re-exported: where they always were)
    NORMALIZATION_TYPES,
    POSITIONAL_TYPES,
    ActivationCache,
    InterpTLConfig,
    tl_config,
)
from interp.models.tl_generate import Generate
from interp.models.tl_weights import TLWeights

if TYPE_CHECKING:
    from interp.config import ModelConfig

__all__ = ["ActivationCache", "InterpTLConfig", "TransformerLensSurface", "tl_config"]


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


class TransformerLensSurface(Generate, TLWeights):
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
