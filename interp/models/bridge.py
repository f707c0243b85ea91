"""Pretrained Hugging Face models behind TransformerLens hook names (TransformerBridge).

``boot_bridge(spec)`` loads a causal LM from a local Hugging Face directory or a hub
name with ``transformer_lens.TransformerBridge.boot_transformers`` and returns the
bridge itself (``BridgedModel`` is an alias of ``TransformerBridge``), after checking
that it offers what our analyses read:

* ``model(tokens)`` -> logits ``[batch, pos, d_vocab]`` (a LongTensor is used as is:
  no BOS is prepended);
* ``model.run_with_cache(tokens, names_filter=...)`` and
  ``model.run_with_hooks(tokens, fwd_hooks=[(name, fn)])`` with the legacy
  TransformerLens names ``hook_embed``, ``blocks.{l}.hook_resid_pre``,
  ``blocks.{l}.hook_resid_post``, ``blocks.{l}.attn.hook_pattern`` and
  ``ln_final.hook_normalized`` (plus the Bridge's canonical names);
* ``model.tokenizer`` (the checkpoint's HF tokenizer) and ``model.cfg`` with
  ``n_layers``, ``d_model``, ``n_ctx``, ``d_vocab``, ``n_heads``;
* ``model.original_model``: the wrapped HF ``PreTrainedModel``.

Decision: no compatibility mode, LayerNorm left unfolded
--------------------------------------------------------
We do **not** call ``bridge.enable_compatibility_mode()``, not even with
``no_processing=True``. What is true in transformer-lens 4.3.0:

1. The legacy names do not need compatibility mode.  ``TransformerBridge.__init__``
   registers the bridge-level and per-component hook aliases at construction
   (``_register_aliases`` / ``_register_all_aliases_recursive`` and a re-scan by
   ``_scan_existing_hooks``, ``model_bridge/transformer_bridge.py``, ``__init__``), so
   ``hook_dict``, ``run_with_cache`` and ``run_with_hooks`` accept ``hook_embed``
   (= ``embed.hook_out``), ``blocks.{l}.hook_resid_pre`` (= ``blocks.{l}.hook_in``),
   ``blocks.{l}.hook_resid_mid``, ``blocks.{l}.hook_resid_post``
   (= ``blocks.{l}.hook_out``), ``blocks.{l}.hook_attn_out`` / ``hook_mlp_out``,
   ``blocks.{l}.attn.hook_pattern`` / ``hook_attn_scores`` / ``hook_q`` / ``hook_k`` /
   ``hook_v`` / ``hook_z`` (split into heads), ``ln_final.hook_normalized`` and
   ``ln_final.hook_scale`` out of the box (verified for Llama and GPT-2).
2. ``enable_compatibility_mode()`` with its defaults runs ``process_weights``
   (``fold_ln``, ``center_writing_weights``, ``center_unembed``,
   ``fold_value_biases``; ``transformer_bridge.py``, ``enable_compatibility_mode`` /
   ``process_weights``).  That rewrites the wrapped HF model's weights *in place*
   (its norm gains become 1), shifts every logit row by a per-position constant
   (``center_unembed``), changes ``ln*.hook_out``, and for LayerNorm models centres
   the residual stream, so ``hook_resid_*`` no longer equal HF's hidden states.  Our
   analyses want the model's real activations, so folding is out.
3. ``no_processing=True`` keeps the weights but buys nothing we need: the hook set
   is the same (checked on Llama and GPT-2), logits are unchanged, and what changes
   is attention masking with ``-inf`` plus a NaN scrub of fully masked rows
   (``generalized_components/attention.py``) and which alias name some hook
   functions see (``bridge_core.py``, hook registration).  Leaving it off keeps the
   bridge's forward exactly HF's forward.

Semantics (checked by ``tests/test_bridge.py`` on tiny random Llama and GPT-2):

* logits equal the HF model's (``attn_implementation="eager"``; the bridge forces
  eager attention so that patterns can be hooked) to float32 rounding;
* ``blocks.{l}.hook_resid_pre`` == HF ``hidden_states[l]`` and
  ``blocks.{l}.hook_resid_post`` == ``hidden_states[l + 1]`` for every layer *except
  the last*: HF's last hidden state is taken after the final norm, so it equals
  ``ln_final.hook_out``, not ``blocks.{last}.hook_resid_post`` (which is
  ``ln_final.hook_in``);
* ``ln_final.hook_normalized`` is the normalised residual *before* the norm's gain
  and bias ((x - mean) / std for LayerNorm, x / rms for RMSNorm), as in
  TransformerLens; ``ln_final.hook_out`` includes gain and bias;
* ``blocks.{l}.attn.hook_pattern`` is ``[batch, n_heads, q_pos, k_pos]`` and equals
  HF's ``output_attentions``; ``hook_embed`` is the token embedding alone (GPT-2's
  learned positions are ``hook_pos_embed``; on rotary models ``hook_pos_embed`` is
  listed in ``hook_dict`` but never fires, use ``rotary_emb.hook_cos`` / ``hook_sin``).

Caveat: aliases are registry names only.  Inside a hook function ``hook.name`` is
the canonical name (``blocks.0.hook_out`` for a hook added as
``blocks.0.hook_resid_post``), and a cache holds canonical keys next to the alias
keys asked for; dispatch on the name you registered, not on ``hook.name``.

Network: when ``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``) is set at call time,
or the spec is a local directory, booting runs with the hub forced offline
(``huggingface_hub.constants.HF_HUB_OFFLINE`` patched for the duration of the call;
the library reads that constant at request time, while the environment variable is
only read at import), so nothing waits on network retries.  A hub name with the hub
offline is looked up in the local HF cache first and refused at once if absent.
Online, the hub is asked once first (:func:`hub_problem`, at most 2 s): when it does not answer,
a cached model is read from the cache (offline) and anything else is refused at once, instead
of waiting ~25 s in huggingface_hub's retries.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

import torch

from interp.errors import CorruptFileError, InterpError, LoadError
from interp.io import read_json
from interp.models.hub import (  # noqa: F401  (re-exported: where they always were)
    HUB_TIMEOUT,
    _hub_offline,
    _offline_env,
    _offline_flag,
    hub_endpoint,
    hub_offline,
    hub_problem,
    quiet_loading,
)
from interp.resources import model_config_preflight

if TYPE_CHECKING:
    from transformer_lens.model_bridge.transformer_bridge import TransformerBridge

__all__ = ["BridgedModel", "REQUIRED_HOOKS", "boot_bridge", "is_hf_directory"]

BridgedModel: TypeAlias = "TransformerBridge"
"""What :func:`boot_bridge` returns: the ``TransformerBridge`` itself."""

REQUIRED_HOOKS: tuple[str, ...] = (
    "hook_embed",
    "blocks.{l}.hook_resid_pre",
    "blocks.{l}.hook_resid_post",
    "blocks.{l}.attn.hook_pattern",
    "ln_final.hook_normalized",
)
"""Legacy hook names every booted model must expose (``{l}`` = each layer)."""

_CFG_FIELDS = ("n_layers", "d_model", "n_ctx", "d_vocab", "n_heads")
# A hub repo id: "name" or "namespace/name" (what huggingface_hub's validator accepts).
_REPO_ID = re.compile(r"^(?:[\w\-.]{1,96}/)?[\w\-.]{1,96}$")


def is_hf_directory(path: str | os.PathLike[str]) -> bool:
    """True if ``path`` is a directory whose ``config.json`` names a ``model_type``
    or ``architectures`` (a Hugging Face model directory)."""

    config = Path(path).expanduser() / "config.json"
    try:
        data = read_model_config(config)
    except (OSError, InterpError):
        return False
    return bool(data.get("model_type") or data.get("architectures"))


_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt")


def _causes(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and len(chain) < 8 and all(cur is not c for c in chain):
        chain.append(cur)
        cur = cur.__cause__ or cur.__context__
    return chain


def weight_files(spec: str) -> str:
    """The weight files of a local model directory (comma-separated), else ``spec``."""
    path = Path(spec).expanduser()
    try:
        files = sorted(p for p in path.iterdir() if p.suffix in _WEIGHT_SUFFIXES)
    except OSError:
        files = []
    return ", ".join(str(p) for p in files) or spec


def refused_pickle(spec: str, exc: BaseException) -> CorruptFileError | None:
    """The one line for a load that ``torch.load(weights_only=True)`` refused (a pickle holding
    more than tensors), naming the weight files; None when ``exc`` is something else.  Torch's
    own message advises ``weights_only=False``, which would run the pickle's code: never quoted."""
    if not any(type(c).__name__ == "UnpicklingError" for c in _causes(exc)):
        return None
    return CorruptFileError(
        f"refusing to load {weight_files(spec)}: the pickle holds more than plain tensors "
        "(read with torch.load(weights_only=True); nothing in it was run)"
    )


def cached_config(repo_id: str) -> Path | None:
    """``config.json`` of a hub model in the local HF cache, when it is there."""
    from huggingface_hub import try_to_load_from_cache

    try:
        found = try_to_load_from_cache(repo_id, "config.json")
    except ValueError:  # HFValidationError: not a valid repo id
        return None
    return Path(found) if isinstance(found, str) else None


def read_model_config(config: Path) -> dict[str, Any]:
    """A model's ``config.json`` as a mapping: every malformed content (not a regular file, bad
    or deeply nested JSON, huge integers, not an object) is one line naming the file."""

    data = read_json(config, "model config")
    if not isinstance(data, dict):
        raise CorruptFileError(
            f"model config {config} is not a JSON object (got {type(data).__name__})"
        )
    return data


@contextlib.contextmanager
def _naming(spec: str) -> Iterator[None]:
    """Prefix a refusal raised in the block with ``could not load SPEC:`` (same class)."""

    try:
        yield
    except InterpError as e:
        raise type(e)(f"could not load {spec!r}: {e}") from e


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    first = text[0] if text else ""
    if len(first) > 240:
        first = first[:237] + "..."
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def _is_corrupt(exc: BaseException) -> bool:
    """Does ``exc`` (or its cause) say a file exists but cannot be parsed?"""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        name = type(cur).__name__
        msg = str(cur)
        if (
            name in {"SafetensorError", "JSONDecodeError", "UnpicklingError"}
            or "not a valid JSON file" in msg
            or "Error while deserializing header" in msg
        ):
            return True
        cur = cur.__cause__ or cur.__context__
    return False


def _check_bridge(bridge: Any, spec: str) -> None:
    cfg = bridge.cfg
    for field in _CFG_FIELDS:
        value = getattr(cfg, field, None)
        if not isinstance(value, int) or value <= 0:
            raise LoadError(
                f"could not load {spec!r}: the bridge config has no valid {field} ({value!r})"
            )
    if getattr(bridge, "tokenizer", None) is None:
        raise LoadError(f"could not load {spec!r}: the checkpoint has no tokenizer")
    hooks = bridge.hook_dict
    missing = [
        name.format(l=layer)
        for name in REQUIRED_HOOKS
        for layer in (range(cfg.n_layers) if "{l}" in name else [0])
        if name.format(l=layer) not in hooks
    ]
    if missing:
        raise LoadError(
            f"could not load {spec!r}: its TransformerBridge adapter "
            f"({getattr(cfg, 'architecture', None) or 'unknown architecture'}) lacks hook(s) "
            f"{', '.join(missing[:4])}{' ...' if len(missing) > 4 else ''}"
        )


def _bridge_source(spec: str) -> tuple[str, str, bool, Path | None]:
    """Where ``spec`` loads from: ``(source, name, read offline, its config.json if on disk)``;
    one line at once for what cannot load (a file, a bad hub name, an unreachable hub with
    nothing cached)."""
    local = Path(spec).expanduser()
    offline = _offline_env()
    if local.is_dir():
        config_file = local / "config.json"
        if config_file.exists() or config_file.is_symlink():
            with _naming(spec):
                read_model_config(config_file)  # a malformed one is refused naming it
        if not is_hf_directory(local):
            raise LoadError(
                f"could not load {spec!r}: the directory has no config.json with "
                "'model_type' or 'architectures' (not a Hugging Face model directory)"
            )
        return "local directory", str(local), True, config_file
    if local.exists():
        raise LoadError(
            f"could not load {spec!r}: it is a file, not a Hugging Face model directory"
        )
    if not _REPO_ID.match(spec) or ".." in spec or spec.startswith((".", "~")):
        raise LoadError(
            f"could not load {spec!r}: not a local directory, and not a valid Hugging Face hub name"
        )
    if offline and cached_config(spec) is None:
        raise LoadError(
            f"could not load {spec!r}: not a local directory, and the hub is offline "
            f"({_offline_flag()}) and it is not in the cache"
        )
    config_file = cached_config(spec)
    problem = None if offline else hub_problem()
    if problem is None:
        return "hub", spec, offline, config_file
    if config_file is None:  # unreachable: the cache only, or one line at once
        raise LoadError(
            f"could not load {spec!r}: not a local directory, the Hugging Face hub "
            f"is unreachable ({problem}) and it is not in the cache"
        )
    return "hub", spec, True, config_file


def boot_bridge(
    spec: str | os.PathLike[str],
    device: str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> BridgedModel:
    """Load a Hugging Face causal LM as a hookable ``TransformerBridge``.

    Args:
        spec: a local Hugging Face model directory (``config.json`` + weights +
            tokenizer) or a hub name such as ``"openai-community/gpt2"``.
        device: torch device to put the model on.
        dtype: parameter dtype.

    Returns:
        The bridge, in eval mode, with raw (unfolded) HF weights; see the module
        docstring for the hook names and what they hold.

    Raises:
        CorruptFileError: a local checkpoint file exists but cannot be parsed.
        LoadError: anything else that stops the load, in one line naming ``spec``.
    """
    spec_str = os.fspath(spec)
    source, name, force_offline, config_file = _bridge_source(spec_str)
    if config_file is not None:  # sized before anything is built (a lying config.json)
        with _naming(spec_str):
            model_config_preflight(read_model_config(config_file), config_file)

    from transformer_lens.model_bridge.transformer_bridge import TransformerBridge

    try:
        with _hub_offline(force_offline), quiet_loading():
            bridge = TransformerBridge.boot_transformers(
                name, device=device, dtype=dtype, trust_remote_code=False
            )
    except Exception as exc:
        pickled = refused_pickle(name, exc)
        if pickled is not None:
            raise pickled from exc
        if source == "local directory" and _is_corrupt(exc):
            raise CorruptFileError(
                f"could not load {spec_str!r}: a checkpoint file is corrupt ({_short(exc)})"
            ) from exc
        where = (
            "from the local directory"
            if source == "local directory"
            else f"from the Hugging Face hub{' cache (offline)' if force_offline else ''}"
        )
        raise LoadError(
            f"could not load {spec_str!r} {where} with TransformerBridge: {_short(exc)}"
        ) from exc
    bridge.eval()
    _check_bridge(bridge, spec_str)
    return bridge
