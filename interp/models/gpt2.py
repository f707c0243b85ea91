"""Import Hugging Face GPT-2 checkpoints into the hooked family (exact logits).

Two ways in, one weight mapping (:func:`convert_gpt2`):

* :func:`from_safetensors`: straight from the checkpoint's ``model.safetensors`` (or the shards
  of ``model.safetensors.index.json``) into the hooked modules, tensor by tensor, with no
  ``transformers`` model in between.  Each tensor is read once into memory the model then owns
  (``pread``, not a file mapping: a checkpoint truncated or rewritten by someone else while the
  model lives can never crash the process); tensors that need a new layout (Q/K/V split by head)
  are copied one layer at a time.  Peak memory is about one model.
* :func:`from_hf_gpt2`: from a loaded ``GPT2LMHeadModel`` (a checkpoint that only has a pickled
  ``pytorch_model.bin``, read by ``transformers`` with ``torch.load(weights_only=True)``; or a
  model a notebook already holds).  Two copies exist while converting.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from einops import rearrange
from torch import Tensor

from interp.config import ModelConfig
from interp.errors import CorruptFileError, LoadError
from interp.io import read_json
from interp.models.transformer import HookedTransformer

_ACTS = {
    "gelu_new": "gelu_new",
    "gelu_pytorch_tanh": "gelu_new",
    "gelu": "gelu",
    "relu": "relu",
    "silu": "silu",
}
#: causal-mask buffers some GPT-2 checkpoints store beside the weights (never read)
_BUFFERS = ("attn.bias", "attn.masked_bias")


def gpt2_config(hf_cfg: Any) -> ModelConfig:
    act = getattr(hf_cfg, "activation_function", "gelu_new")
    if act not in _ACTS:
        raise LoadError(f"GPT-2 activation {act!r} is not supported")
    for flag in ("scale_attn_by_inverse_layer_idx", "reorder_and_upcast_attn"):
        if getattr(hf_cfg, flag, False):
            raise LoadError(f"GPT-2 option {flag}=True is not supported by the importer")
    if not getattr(hf_cfg, "scale_attn_weights", True):
        raise LoadError("GPT-2 option scale_attn_weights=False is not supported by the importer")
    n_embd = hf_cfg.n_embd
    cfg = ModelConfig(
        n_layers=hf_cfg.n_layer,
        d_model=n_embd,
        n_heads=hf_cfg.n_head,
        d_mlp=hf_cfg.n_inner or 4 * n_embd,
        n_ctx=hf_cfg.n_positions,
        d_vocab=hf_cfg.vocab_size,
        act_fn=_ACTS[act],
        normalization="layernorm",
        positional="absolute",
        tied_embeddings=bool(getattr(hf_cfg, "tie_word_embeddings", True)),
        unembed_bias=False,  # GPT-2's head has no bias
        eps=hf_cfg.layer_norm_epsilon,
        init_range=getattr(hf_cfg, "initializer_range", 0.02),
    )
    cfg.validate()  # what no model can be built from, refused before any weight is read
    return cfg


def _own(t: Tensor) -> Tensor:
    """``t`` as a float32 contiguous tensor that owns all of its storage (a view into a larger
    tensor, say one head's slice of ``c_attn``, is copied: parameters sharing storage could not
    be saved as safetensors)."""
    t = t.float()
    whole = t.untyped_storage().nbytes() == t.numel() * t.element_size()
    if t.is_contiguous() and t.storage_offset() == 0 and whole:
        return t
    return t.contiguous().clone() if t.is_contiguous() else t.contiguous()


def convert_gpt2(get: Callable[[str], Tensor], cfg: ModelConfig) -> Iterator[tuple[str, Tensor]]:
    """Our parameters from GPT-2's, one at a time: ``get(name)`` returns the GPT-2 tensor of
    ``name`` (without the ``transformer.`` prefix).  Conv1D weights are ``[in, out]``."""
    n_heads = cfg.n_heads
    yield "embed.W_E", _own(get("wte.weight"))
    yield "pos_embed.W_pos", _own(get("wpe.weight"))
    for layer in range(cfg.n_layers):
        p, b = f"h.{layer}.", f"blocks.{layer}."
        for ours, theirs in (("ln1", "ln_1"), ("ln2", "ln_2")):
            yield b + f"{ours}.w", _own(get(p + f"{theirs}.weight"))
            yield b + f"{ours}.b", _own(get(p + f"{theirs}.bias"))
        W_qkv = get(p + "attn.c_attn.weight").chunk(3, dim=1)  # [d_model, 3 d_model]
        b_qkv = get(p + "attn.c_attn.bias").chunk(3, dim=0)
        for name, W, bias in zip("QKV", W_qkv, b_qkv, strict=True):
            yield (
                b + f"attn.W_{name}",
                _own(
                    rearrange(
                        W,
                        "d_model (head_index d_head) -> head_index d_model d_head",
                        head_index=n_heads,
                    )
                ),
            )
            yield (
                b + f"attn.b_{name}",
                _own(
                    rearrange(bias, "(head_index d_head) -> head_index d_head", head_index=n_heads)
                ),
            )
        del W_qkv, b_qkv
        yield (
            b + "attn.W_O",
            _own(
                rearrange(
                    get(p + "attn.c_proj.weight"),
                    "(head_index d_head) d_model -> head_index d_head d_model",
                    head_index=n_heads,
                )
            ),
        )
        yield b + "attn.b_O", _own(get(p + "attn.c_proj.bias"))
        yield b + "mlp.W_in", _own(get(p + "mlp.c_fc.weight"))
        yield b + "mlp.b_in", _own(get(p + "mlp.c_fc.bias"))
        yield b + "mlp.W_out", _own(get(p + "mlp.c_proj.weight"))
        yield b + "mlp.b_out", _own(get(p + "mlp.c_proj.bias"))
    yield "ln_final.w", _own(get("ln_f.weight"))
    yield "ln_final.b", _own(get("ln_f.bias"))
    if not cfg.tied_embeddings:
        yield "unembed.W_U", get("lm_head.weight").float().T.contiguous()


def _fill(model: HookedTransformer, tensors: Iterator[tuple[str, Tensor]], where: str) -> None:
    """Assign every converted tensor to the model (shapes checked first, one line naming
    ``where`` on a mismatch); the model's own uninitialised tensors are dropped unread."""
    expected = {k: v.shape for k, v in model.state_dict().items()}
    new: dict[str, Tensor] = {}
    for name, t in tensors:
        if name not in expected:
            raise LoadError(f"internal: no parameter {name} in the hooked GPT-2")
        if t.shape != expected[name]:
            raise CorruptFileError(
                f"{where}: the tensor for {name} has shape {tuple(t.shape)}, the config "
                f"expects {tuple(expected[name])}"
            )
        new[name] = t
    model.load_state_dict(new, strict=True, assign=True)


@torch.no_grad()
def from_hf_gpt2(hf_model: Any) -> HookedTransformer:
    """Convert a ``transformers`` ``GPT2LMHeadModel`` into a :class:`HookedTransformer`."""
    cfg = gpt2_config(hf_model.config)
    sd = {k.removeprefix("transformer."): v for k, v in hf_model.state_dict().items()}
    model = HookedTransformer(cfg, seed=None)
    # copies: the new model never shares storage with the transformers model
    _fill(model, ((k, v.clone()) for k, v in convert_gpt2(sd.__getitem__, cfg)), "GPT-2 model")
    return model


# --------------------------------------------------------------------------- safetensors


def safetensors_files(directory: Path) -> list[Path] | None:
    """The checkpoint's safetensors files (one, or the shards its index names), None if it has
    none.  An index naming a file outside the directory, or a missing shard, is refused."""

    single = directory / "model.safetensors"
    if single.is_file():
        return [single]
    index = directory / "model.safetensors.index.json"
    if not index.is_file():
        return None
    data = read_json(index, "safetensors index")
    weight_map = data.get("weight_map") if isinstance(data, dict) else None
    if not isinstance(weight_map, dict) or not weight_map:
        raise CorruptFileError(f"safetensors index {index} has no weight_map")
    names = sorted({str(v) for v in weight_map.values()})
    files = []
    for name in names:
        if Path(name).name != name or name in (".", ".."):
            raise CorruptFileError(
                f"safetensors index {index} names {name!r}, not a file beside it"
            )
        if not (directory / name).is_file():
            raise CorruptFileError(f"safetensors index {index} names {name}, which is missing")
        files.append(directory / name)
    return files


@contextmanager
def _opened(files: list[Path]) -> Iterator[Callable[[str], Tensor]]:
    """``get(name)`` over the tensors of ``files`` (prefix ``transformer.`` dropped); every
    safetensors failure is one line naming the file."""
    from safetensors import safe_open

    handles: dict[str, tuple[Any, str, Path]] = {}
    owned = True  # pread gives memory of our own; a mapping is copied tensor by tensor
    for path in files:
        try:
            try:
                f = safe_open(str(path), framework="pt", device="cpu", backend="pread")
            except TypeError:  # safetensors < 0.8: mapped files only
                f = safe_open(str(path), framework="pt", device="cpu")
                owned = False
            for key in f.keys():
                handles[key.removeprefix("transformer.")] = (f, key, path)
        except Exception as e:  # noqa: BLE001 - SafetensorError, OSError: a bad file
            raise _corrupt(path, e) from e

    def get(name: str) -> Tensor:
        if name not in handles:
            shown = ", ".join(str(p) for p in files)
            raise CorruptFileError(f"{shown}: no tensor {name} (is this a GPT-2 checkpoint?)")
        f, key, path = handles[name]
        try:
            t = f.get_tensor(key)
        except Exception as e:  # noqa: BLE001
            raise _corrupt(path, e) from e
        return t if owned else t.clone()

    yield get


def _corrupt(path: Path, exc: BaseException) -> CorruptFileError:
    text = str(exc).strip().splitlines()
    reason = text[0][:200] if text else type(exc).__name__
    return CorruptFileError(f"could not load {path}: not a valid safetensors file ({reason})")


@torch.no_grad()
def from_safetensors(hf_cfg: Any, files: list[Path]) -> HookedTransformer:
    """A hooked GPT-2 built from ``hf_cfg`` (a ``GPT2Config``) and its safetensors ``files``."""
    cfg = gpt2_config(hf_cfg)
    model = HookedTransformer(cfg, seed=None)  # uninitialised: replaced before it is read
    with _opened(files) as get:
        _fill(model, convert_gpt2(get, cfg), ", ".join(str(p) for p in files))
    return model


__all__ = ["convert_gpt2", "from_hf_gpt2", "from_safetensors", "gpt2_config", "safetensors_files"]
