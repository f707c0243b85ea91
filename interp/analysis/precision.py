"""Float formats and the two ways of running a model in one: ``emulated`` and ``native``.

Formats (aliases in parentheses):

    float32 (fp32)   float16 (fp16, half)   bfloat16 (bf16)
    float8_e4m3fn (e4m3, fp8_e4m3)          float8_e5m2 (e5m2, fp8_e5m2)

**Emulated** (``precision_context(model, fmt, "emulated")``): the model computes in float32, its
weights are rounded to the format once (restored afterwards), and every ``HookPoint`` rounds
its value to the format (a forward hook on each distinct hook module).  Rounding is exactly
``tensor.to(format).to(float32)`` (round to nearest even; float16 and e5m2 overflow to inf,
e4m3fn saturates to +-448, NaN stays NaN), except that +-inf is kept as is so the causal
mask (-inf in ``hook_attn_scores``) survives a format without infinities (e4m3fn).

**Native**: a copy of the model converted with ``model.to(dtype)``; every kernel runs in the
format.  Float8 has no general kernels in torch (CPU or GPU), so float8 is emulated only.

How the two differ (checked on small models in ``tests/test_precision.py``): emulated rounds
only at hook boundaries, so what happens *between* two hooks is exact float32 (a matmul's sum,
LayerNorm's mean and variance, softmax, GELU, the RoPE rotation, the residual addition
``resid + attn_out`` before ``hook_resid_mid/post``), while native rounds after every
elementary op (LayerNorm's mean, the centred values, their square, ...; matmuls accumulate in
float32 on CPU but round the output).  Native float16/bfloat16 RoPE also rounds its inverse
frequencies (a float buffer converted by ``model.to``).  Measured on a 2-layer, d=32 RoPE model
(``tests/test_precision.py``): the final states of either mode are within ~1 eps of float32
(relative to the largest coordinate; bf16 and fp16 alike) and 1.3 eps from each other, and
only ~35% of their coordinates are bit-identical (as between either and rounded float32).  So
the two modes give the same curves down to the format's resolution but not the same bits:
bit-identity (``identical_length``) is mode-dependent, the resolution-based collapse length
much less so.
On this CPU native bfloat16 matmul is ~150x slower than float32, hence ``emulated`` is the
default on CPU and ``native`` on GPU (float8 stays emulated).

TransformerBridge models: emulated rounding covers every hook the bridge exposes and fires (its
``hook_dict`` less the gated-off ``hook_result``/``hook_*_input``/``hook_mlp_in``/``hook_attn_in``):
the input and output of every linear map (``attn.q/k/v/o``, ``mlp.gate/in/out``), the
attention scores and pattern, the rotary cos/sin, every norm's scale and normalized value and
every block's input and output; the weights of the wrapped HF model are rounded once.  What a
HF module computes between two of these hooks (the matmul inside a linear, softmax, the norm's
statistics) stays float32.  A bridge's norm recomputes its output from the rounded
``hook_normalized`` (it does so whenever a hook edits it).  Native mode converts the wrapped HF
model with ``.to(dtype)``: HF's own kernels, which upcast some steps to float32 themselves
(Llama's RMSNorm statistics, rotary tables, the eager softmax).  On a bridge the final-layer
state is ``ln_final.hook_out`` (the norm's output in the model's dtype): the bridge's
``ln_final.hook_normalized`` is the float32 intermediate before the norm's weight.
"""

from __future__ import annotations

import copy
import functools
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from interp.doctor import _time_matmul
from interp.errors import ConfigError

__all__ = [
    "FORMATS",
    "MODES",
    "FloatFormat",
    "bits_equal",
    "default_mode",
    "parse_format",
    "parse_formats",
    "precision_context",
    "resolve_mode",
    "round_to_format",
]


@dataclass(frozen=True)
class FloatFormat:
    name: str
    dtype: torch.dtype
    bits: int
    has_native: bool  # torch has general kernels for it

    @property
    def eps(self) -> float:
        return float(torch.finfo(self.dtype).eps)

    @property
    def short(self) -> str:
        return {
            "float32": "fp32",
            "float16": "fp16",
            "bfloat16": "bf16",
            "float8_e4m3fn": "e4m3",
            "float8_e5m2": "e5m2",
        }[self.name]


FORMATS: dict[str, FloatFormat] = {
    "float32": FloatFormat("float32", torch.float32, 32, True),
    "float16": FloatFormat("float16", torch.float16, 16, True),
    "bfloat16": FloatFormat("bfloat16", torch.bfloat16, 16, True),
    "float8_e4m3fn": FloatFormat("float8_e4m3fn", torch.float8_e4m3fn, 8, False),
    "float8_e5m2": FloatFormat("float8_e5m2", torch.float8_e5m2, 8, False),
}
_ALIASES = {
    "fp32": "float32",
    "f32": "float32",
    "fp16": "float16",
    "half": "float16",
    "f16": "float16",
    "bf16": "bfloat16",
    "e4m3": "float8_e4m3fn",
    "e4m3fn": "float8_e4m3fn",
    "fp8_e4m3": "float8_e4m3fn",
    "float8_e4m3": "float8_e4m3fn",
    "fp8": "float8_e4m3fn",
    "e5m2": "float8_e5m2",
    "fp8_e5m2": "float8_e5m2",
}
MODES = ("auto", "emulated", "native")
_INT_VIEW = {4: torch.int32, 2: torch.int16, 1: torch.uint8}


def parse_format(name: str) -> FloatFormat:
    key = str(name).strip().lower().replace("-", "_").removeprefix("torch.")
    key = _ALIASES.get(key, key)
    if key not in FORMATS:
        raise ConfigError(
            f"unknown dtype {name!r}; choose from {', '.join(FORMATS)} "
            "(or fp32, fp16, bf16, e4m3, e5m2)"
        )
    return FORMATS[key]


def parse_formats(names: str | list[str]) -> list[FloatFormat]:
    """``"float32,bf16"`` or a list -> formats, in order, without duplicates."""
    items = names.split(",") if isinstance(names, str) else list(names)
    out: list[FloatFormat] = []
    for item in items:
        if not str(item).strip():
            continue
        fmt = parse_format(item)
        if fmt not in out:
            out.append(fmt)
    if not out:
        raise ConfigError("no dtype given")
    return out


NATIVE_FAST_SLOWDOWN = 1.5  # native counts as fast up to this time ratio to float32 (as doctor)
NATIVE_SPEED_ENV = "INTERP_NATIVE_LOWP"  # "fast" / "slow": skip the measurement (tests pin it)


@functools.cache
def native_slowdown(dtype: torch.dtype, device: str = "cpu") -> float | None:
    """Time of a native ``dtype`` matmul over a float32 one on ``device`` (best of short rounds
    over ~0.1 s each, as ``interp doctor`` measures it; None if ``dtype`` has no matmul here)."""

    try:
        fp32 = _time_matmul(torch.float32, device, 256, 0.05)
        low = _time_matmul(dtype, device, 256, 0.05)
    except (RuntimeError, TypeError):
        return None
    return low / fp32


def native_is_fast(fmt: FloatFormat, device: str | torch.device) -> bool:
    """Whether ``fmt``'s native kernels are fast enough here to beat the emulation (float32
    kernels plus a rounding at every hook): always on a GPU; on a CPU as measured
    (:func:`native_slowdown` <= :data:`NATIVE_FAST_SLOWDOWN`; AVX-512 bf16 CPUs run bf16 ~2x
    faster than float32, most run float16 several times slower); ``INTERP_NATIVE_LOWP=fast``
    or ``slow`` decides without measuring."""
    if not fmt.has_native:
        return False
    dev = torch.device(device)
    if dev.type == "cuda":
        return True
    forced = os.environ.get(NATIVE_SPEED_ENV, "").strip().lower()
    if forced in ("fast", "slow"):
        return forced == "fast"
    slowdown = native_slowdown(fmt.dtype, str(dev))
    return slowdown is not None and slowdown <= NATIVE_FAST_SLOWDOWN


def default_mode(device: str | torch.device, fmt: FloatFormat | None = None) -> str:
    """What ``auto`` picks for ``fmt`` (default bfloat16) on ``device``: ``native`` where its
    kernels are fast (:func:`native_is_fast`), else ``emulated``."""
    fmt = fmt or FORMATS["bfloat16"]
    return "native" if native_is_fast(fmt, device) else "emulated"


def resolve_mode(mode: str, fmt: FloatFormat, device: str | torch.device) -> str:
    """The mode actually used for ``fmt``: ``auto`` follows the measured native speed
    (:func:`default_mode`); float8 is emulated only."""
    if mode not in MODES:
        raise ConfigError(f"unknown precision mode {mode!r}; choose from {', '.join(MODES)}")
    if fmt.name == "float32":
        return "native"  # the model already computes in float32: both modes coincide
    if mode == "auto":
        return default_mode(device, fmt) if fmt.has_native else "emulated"
    if mode == "native" and not fmt.has_native:
        raise ConfigError(
            f"{fmt.name} runs emulated only (torch has no general float8 kernels); "
            "use --mode emulated or --mode auto"
        )
    return mode


def round_to_format(x: Tensor, fmt: FloatFormat, keep_inf: bool = False) -> Tensor:
    """``x`` rounded to ``fmt`` and returned in ``x``'s dtype: exactly ``x.to(fmt).to(x.dtype)``.

    ``keep_inf=True`` keeps +-inf unchanged (e4m3fn has no infinities and would saturate them).
    """
    if fmt.dtype == x.dtype:
        return x
    rounded = x.to(fmt.dtype).to(x.dtype)
    if keep_inf and fmt.dtype == torch.float8_e4m3fn:
        rounded = torch.where(torch.isinf(x), x, rounded)
    return rounded


def bits_equal(a: Tensor, b: Tensor, fmt: FloatFormat) -> Tensor:
    """Elementwise: do ``a`` and ``b`` have the same bit pattern once rounded to ``fmt``?"""
    view = _INT_VIEW[torch.empty((), dtype=fmt.dtype).element_size()]
    return a.to(fmt.dtype).view(view) == b.to(fmt.dtype).view(view)


def _unique_hooks(model: Any) -> list[tuple[str, torch.nn.Module]]:
    """One (name, module) per distinct hook module that fires (a bridge lists aliases beside
    canonicals, and has gated-off hooks that never fire unless enabled)."""
    gated = getattr(model, "_gated_hook_reason", None)
    seen: dict[int, tuple[str, torch.nn.Module]] = {}
    for name, hook in model.hook_dict.items():
        if gated is not None and gated(getattr(hook, "name", None) or name) is not None:
            continue
        seen.setdefault(id(hook), (name, hook))
    return list(seen.values())


def is_bridge(model: Any) -> bool:
    return type(model).__name__ == "TransformerBridge" or hasattr(model, "original_model")


@contextmanager
def _rounded_weights(model: torch.nn.Module, fmt: FloatFormat) -> Iterator[None]:
    saved: list[tuple[Tensor, Tensor]] = []
    with torch.no_grad():
        for p in list(model.parameters()) + list(model.buffers()):
            if p.is_floating_point() and p.dtype == torch.float32:
                saved.append((p, p.detach().clone()))
                p.copy_(round_to_format(p, fmt))
    try:
        yield
    finally:
        with torch.no_grad():
            for p, original in saved:
                p.copy_(original)


@contextmanager
def precision_context(
    model: Any, fmt: FloatFormat, mode: str = "emulated"
) -> Iterator[tuple[Any, list[tuple[str, Callable[..., Any]]]]]:
    """Yield ``(model_to_run, rounding_hooks)`` for ``fmt`` in ``mode`` (``emulated``/``native``).

    ``rounding_hooks`` are ``(hook_name, fn)`` pairs to pass first in ``run_with_hooks``'s
    ``fwd_hooks`` (empty in native mode and for float32).  Emulated mode rounds the model's
    weights in place for the duration of the block and restores them afterwards.
    """
    if mode not in ("emulated", "native"):
        raise ConfigError(f"mode must be emulated or native, not {mode!r}")
    if fmt.name == "float32":
        yield model, []
        return
    if mode == "native":
        if not fmt.has_native:
            raise ConfigError(f"{fmt.name} runs emulated only")
        native = copy.deepcopy(model).to(fmt.dtype)
        try:
            yield native, []
        finally:
            del native
        return

    last: list[Any] = [None, -1]  # the tensor the previous rounding hook returned, its version

    def round_hook(x: Tensor, hook: Any) -> Tensor:
        # The same tensor often passes two hook boundaries in a row (``blocks.l.hook_resid_post``
        # is ``blocks.{l+1}.hook_resid_pre``; a bridge's ``hook_out`` is the next ``hook_in``):
        # unless modified in place since (its version counter), it is already rounded, and
        # rounding is idempotent, so skip the copy.
        if not isinstance(x, Tensor) or not x.is_floating_point():
            return x
        if x is last[0] and x._version == last[1]:
            return x
        out = round_to_format(x, fmt, keep_inf=True)
        last[0], last[1] = out, out._version
        return out

    hooks = [(name, round_hook) for name, _ in _unique_hooks(model)]
    try:
        with _rounded_weights(model, fmt):
            yield model, hooks
    finally:
        last[0] = None
