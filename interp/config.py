"""Inert, frozen configuration dataclasses: validation only, no side effects.

Every config round-trips through ``to_dict`` / ``from_dict`` (and so through ``config.json``).
Unknown keys in ``from_dict`` are an error, so a typo never passes silently.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, TypeVar

from interp.errors import ConfigError
from interp.options import _is_int, _is_real

T = TypeVar("T", bound="_Config")

ACTIVATIONS = ("gelu", "gelu_new", "relu", "silu")
NORMALIZATIONS = ("layernorm", "rmsnorm", "none")
INPUT_KINDS = ("tokens", "vector")
GRAD_MODES = ("vanilla", "myopic")  # see interp.train.grad_modes


# keys a run directory's ``config.json`` holds beside a config's own fields
RESERVED_KEYS = ("kind", "schema", "created", "seed", "device")


def _plain(value: Any) -> Any:
    """A config value as plain JSON: nested configs as objects, tuples as lists."""
    if isinstance(value, _Config):
        return value.to_dict()
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def _convert(value: Any, hint: Any) -> Any:
    """A JSON value as the field's declared type, for the shapes configs use: nested configs,
    tuples (of configs), optional values."""
    if value is None:
        return None
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(hint):
            if arg is type(None):
                continue
            converted = _convert(value, arg)
            if converted is not value:
                return converted
        return value
    if isinstance(hint, type) and issubclass(hint, _Config) and isinstance(value, Mapping):
        return hint.from_dict(value)
    if origin is tuple and isinstance(value, list | tuple):
        args = typing.get_args(hint)
        inner = args[0] if args and (len(args) == 1 or args[-1] is Ellipsis) else None
        return tuple(_convert(v, inner) for v in value) if inner is not None else tuple(value)
    return value


class _Config:
    """Base of every frozen config dataclass: ``to_dict`` gives plain JSON, ``from_dict`` reads
    it back (nested configs and tuples restored, unknown keys refused; the reserved run keys of
    ``config.json`` that are not fields are ignored)."""

    def to_dict(self) -> dict[str, Any]:
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}  # type: ignore[arg-type]

    @classmethod
    def from_dict(cls: type[T], data: Mapping[str, Any]) -> T:
        if not isinstance(data, Mapping):
            raise ConfigError(f"{cls.__name__} must be a JSON object, got {type(data).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        data = {k: v for k, v in data.items() if k in names or k not in RESERVED_KEYS}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(f"{cls.__name__}: unknown field(s) {', '.join(unknown)}")
        hints = _hints(cls)
        try:
            return cls(**{k: _convert(v, hints.get(k)) for k, v in data.items()})
        except TypeError as e:
            raise ConfigError(f"{cls.__name__}: {e}") from e

    def replace(self: T, **changes: Any) -> T:
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]

    def validate(self) -> None:
        """Raise :class:`ConfigError` for values no run can use.  Configs are inert: a value
        is checked here, when the config is used, never at construction."""


def _hints(cls: type) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls)
    except (NameError, TypeError):  # a forward reference the module cannot resolve: no conversion
        return {}


def _check(cond: bool, message: str) -> None:
    if not cond:
        raise ConfigError(message)


# AdamW moves every weight by about lr per step: above 10 no model here trains (it overflows or
# oscillates), below 1e-12 the steps vanish under float32 resolution (nothing ever changes).
MIN_LR, MAX_LR = 1e-12, 10.0


def check_optimizer(
    lr: Any, weight_decay: Any = 0.0, beta1: Any = 0.9, beta2: Any = 0.99, option: str = "--lr"
) -> None:
    """Refuse, in one line, AdamW settings no run can use (before any folder is made): a
    learning rate outside [1e-12, 10], a weight decay that is negative, not finite or so large
    that one step wipes the weights (AdamW multiplies them by ``1 - lr * weight_decay``), betas
    outside [0, 1)."""
    _check(
        _is_real(lr) and MIN_LR <= lr <= MAX_LR,
        f"{option} {lr!r} is not a usable learning rate: AdamW moves every weight by about lr "
        f"per step; give a number in [{MIN_LR:g}, {MAX_LR:g}]",
    )
    _check(
        _is_real(weight_decay) and weight_decay >= 0,
        f"weight decay {weight_decay!r} must be a finite number >= 0",
    )
    _check(
        lr * weight_decay < 1,
        f"weight decay {weight_decay:g} at learning rate {lr:g}: AdamW multiplies every weight "
        f"by 1 - lr x weight decay = {1 - lr * weight_decay:g} each step, which wipes (or flips) "
        "the weights; lower one of them",
    )
    _check(
        _is_real(beta1) and _is_real(beta2) and 0 <= beta1 < 1 and 0 <= beta2 < 1,
        f"betas must be in [0, 1), got {beta1!r}, {beta2!r}",
    )


@dataclass(frozen=True)
class ModelConfig(_Config):
    """Shape and options of a model of the hooked transformer family."""

    n_layers: int = 2
    d_model: int = 64
    n_heads: int = 4
    d_head: int | None = None  # default d_model // n_heads
    d_mlp: int = 256  # 0 = attention-only
    n_ctx: int = 128
    d_vocab: int = 258  # output size (vocabulary, or regression outputs)
    act_fn: str = "gelu"
    normalization: str = "layernorm"
    positional: str = "rope"
    positional_options: Mapping[str, Any] = field(default_factory=dict)
    tied_embeddings: bool = False
    input_kind: Literal["tokens", "vector"] = "tokens"
    d_input: int = 1  # feature size when input_kind == "vector"
    eps: float = 1e-5
    init_range: float = 0.02
    use_bias: bool = True  # biases in attention, MLP and unembedding
    # a trainable unembedding bias b_U (with use_bias); GPT-2 has none, so its import sets False.
    # Written to config.json only when False (runs made before it existed keep their config).
    unembed_bias: bool = True

    def validate(self) -> None:
        """The fields' values; the positional encoding's name and options are checked by its
        registry where the model is built (``interp.models.check_model_config``: the
        :class:`~interp.models.HookedTransformer` constructor, and ``execute``)."""
        for name in ("n_layers", "d_model", "n_heads", "n_ctx", "d_vocab", "d_input"):
            value = getattr(self, name)
            _check(
                _is_int(value) and value >= 1, f"{name} must be a positive integer, got {value!r}"
            )
        _check(_is_int(self.d_mlp) and self.d_mlp >= 0, f"d_mlp must be >= 0, got {self.d_mlp!r}")
        if self.d_head is None:
            _check(
                self.d_model % self.n_heads == 0,
                f"d_model ({self.d_model}) is not divisible by n_heads ({self.n_heads}); "
                "set d_head explicitly",
            )
        else:
            _check(
                _is_int(self.d_head) and self.d_head >= 1,
                f"d_head must be >= 1, got {self.d_head!r}",
            )
        _check(
            self.act_fn in ACTIVATIONS,
            f"unknown activation {self.act_fn!r}; choose from {', '.join(ACTIVATIONS)}",
        )
        _check(
            self.normalization in NORMALIZATIONS,
            f"unknown normalization {self.normalization!r}; choose from {', '.join(NORMALIZATIONS)}",
        )
        _check(
            self.input_kind in INPUT_KINDS,
            f"unknown input kind {self.input_kind!r}; choose tokens or vector",
        )
        _check(
            not (self.tied_embeddings and self.input_kind == "vector"),
            "tied embeddings need token input",
        )
        _check(isinstance(self.positional_options, Mapping), "positional_options must be a mapping")
        _check(self.eps > 0 and self.init_range > 0, "eps and init_range must be positive")
        _check(isinstance(self.unembed_bias, bool), "unembed_bias must be true or false")

    @property
    def head_dim(self) -> int:
        return self.d_head if self.d_head is not None else self.d_model // self.n_heads

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        if out["unembed_bias"]:  # the default: left out, so configs and cache keys stay as before
            del out["unembed_bias"]
        return out


@dataclass(frozen=True)
class OptimConfig(_Config):
    """AdamW with linear warmup and cosine decay."""

    lr: float = 1e-3
    min_lr_ratio: float = 0.1
    warmup_steps: int = 50
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.99
    grad_clip: float = 1.0  # 0 = off

    def validate(self) -> None:
        check_optimizer(self.lr, self.weight_decay, self.beta1, self.beta2)
        _check(
            _is_real(self.min_lr_ratio) and 0 <= self.min_lr_ratio <= 1,
            "min_lr_ratio must be in [0, 1]",
        )
        _check(_is_int(self.warmup_steps) and self.warmup_steps >= 0, "warmup_steps must be >= 0")
        _check(
            _is_real(self.grad_clip) and self.grad_clip >= 0, "grad_clip must be >= 0 and finite"
        )


@dataclass(frozen=True)
class TrainConfig(_Config):
    """The training loop: steps, batch, evaluation and checkpoint cadence, seed."""

    steps: int = 1000
    batch_size: int = 16
    eval_every: int = 100
    eval_batches: int = 8
    checkpoint_every: int = 200
    log_every: int = 10
    seed: int = 0
    device: str = "cpu"
    grad_mode: str = "vanilla"
    optim: OptimConfig = field(default_factory=OptimConfig)

    def __post_init__(self) -> None:  # normalisation only: optim read from a mapping
        if isinstance(self.optim, Mapping):
            object.__setattr__(self, "optim", OptimConfig.from_dict(self.optim))

    def validate(self) -> None:
        _check(isinstance(self.optim, OptimConfig), "optim must be a mapping of AdamW options")
        self.optim.validate()  # first: the optimizer's config is built before the loop's
        for name in (
            "steps",
            "batch_size",
            "eval_every",
            "eval_batches",
            "checkpoint_every",
            "log_every",
        ):
            value = getattr(self, name)
            _check(
                _is_int(value) and value >= 1, f"{name} must be a positive integer, got {value!r}"
            )
        _check(
            _is_int(self.seed) and 0 <= self.seed < 2**63,
            f"seed must be an integer in [0, 2**63), got {self.seed!r}",
        )
        _check(
            self.grad_mode in GRAD_MODES,
            f"unknown gradient mode {self.grad_mode!r}; choose {' or '.join(GRAD_MODES)}",
        )

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["optim"] = self.optim.to_dict()
        return out


@dataclass(frozen=True)
class DataConfig(_Config):
    """Where training data comes from: a text corpus (tokenised) or a registered synthetic task."""

    source: Literal["corpus", "task"] = "corpus"
    corpus: str = "builtin"
    max_chars: int | None = 2_000_000
    tokenizer: str = "bpe"  # byte | bpe
    bpe_vocab_size: int = 2048
    val_fraction: float = 0.05
    task: str | None = None
    task_options: Mapping[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        _check(self.source in ("corpus", "task"), f"unknown data source {self.source!r}")
        _check(isinstance(self.corpus, str), f"corpus must be a string, got {self.corpus!r}")
        _check(
            self.task is None or isinstance(self.task, str),
            f"task must be a task name, got {self.task!r}",
        )
        _check(
            self.tokenizer in ("byte", "bpe"),
            f"unknown tokenizer {self.tokenizer!r}; choose byte or bpe",
        )
        _check(
            0 < self.val_fraction < 1, f"val_fraction must be in (0, 1), got {self.val_fraction}"
        )
        _check(
            self.max_chars is None or (_is_int(self.max_chars) and self.max_chars > 0),
            "max_chars must be positive",
        )
        _check(
            _is_int(self.bpe_vocab_size) and self.bpe_vocab_size >= 258,
            "bpe_vocab_size must be >= 258",
        )
        if self.source == "task":
            _check(bool(self.task), "a task source needs a task name")
        _check(isinstance(self.task_options, Mapping), "task_options must be a mapping")


TRAIN_KIND = "train"
# keys a training run's config.json holds beside the job (see interp.experiments.train)
TRAIN_RUN_KEYS = ("corpus", "data_changes")


@dataclass(frozen=True)
class TrainJob(_Config):
    """A training run's whole config: the model, the optimisation, the data.  ``config.json``
    of a ``train`` run is this (resolved: the vocabulary and context fixed by the data), with
    the corpus record and any allowed data change beside it."""

    model: ModelConfig
    train: TrainConfig
    data: DataConfig

    # a resume may train for more steps; the shape fixed from the data is not compared (the
    # request carries the unresolved defaults)
    resume_free: ClassVar[frozenset[str]] = frozenset({"train.steps"})
    resume_resolved: ClassVar[frozenset[str]] = frozenset(
        {"model.d_vocab", "model.n_ctx", "model.input_kind", "model.d_input"}
    )

    def validate(self) -> None:
        for part in (self.data, self.model, self.train):  # the order the CLI builds them in
            part.validate()

    @property
    def seed(self) -> int:
        return self.train.seed

    @property
    def device(self) -> str:
        return self.train.device

    def to_dict(self) -> dict[str, Any]:
        return {"kind": TRAIN_KIND, "seed": self.train.seed, **super().to_dict()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainJob:  # type: ignore[override]
        if not isinstance(data, Mapping):
            raise ConfigError(f"TrainJob must be a JSON object, got {type(data).__name__}")
        if data.get("kind") != TRAIN_KIND:
            raise ConfigError(f"config kind is {data.get('kind')!r}, expected {TRAIN_KIND!r}")
        for key in ("model", "train", "data"):
            if key not in data:
                raise ConfigError(f"config is missing the {key!r} section")
        return super().from_dict({k: v for k, v in data.items() if k not in TRAIN_RUN_KEYS})
