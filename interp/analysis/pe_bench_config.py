"""``interp pe-bench``'s config: :class:`PEBenchConfig` (inert; :meth:`~PEBenchConfig.validate`
checks it) and :func:`check_variants`, which refuses to resume a run whose encodings this interp
defines differently."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from interp.config import ModelConfig, OptimConfig, TrainConfig, _Config
from interp.errors import ConfigError
from interp.models import check_model_config
from interp.models.positional import build_positional, positional_names

ProgressFn = Callable[[str], None]


@dataclass(frozen=True)
class PEBenchConfig(_Config):
    """``interp pe-bench``: the task, the encodings, the seeds and the model and training sizes
    (``config.json`` holds these fields, ``seed`` = the first seed, and ``variants``).  Inert:
    checked by :meth:`validate`.  ``variants`` is what each encoding is (:meth:`encoding_labels`),
    fixed when the run starts (None until then): a run resumed by an interp that defines one
    differently is refused, its saved cells would mix two definitions."""

    task: str | None = "flipflop"
    task_options: Mapping[str, Any] = field(default_factory=dict)
    encodings: tuple[str, ...] = ("none", "absolute", "rope", "alibi", "cope")
    positional_options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    seeds: tuple[int, ...] = (0, 1, 2)
    steps: int = 1000
    batch_size: int = 32
    lr: float = 3e-3
    n_layers: int = 2
    d_model: int = 64
    n_heads: int = 4
    d_mlp: int = 256
    eval_sequences: int = 256
    n_maps: int = 2  # examples with CoPE position-only attention maps
    text: bool = False
    text_encodings: tuple[str, ...] = ("absolute", "rope", "cope")
    text_ctx: int = 64
    text_eval_ctx: tuple[int, ...] = (64, 128, 256)
    text_steps: int = 300
    text_max_chars: int = 400_000
    text_eval_blocks: int = 32
    device: str = "cpu"
    variants: Mapping[str, str] | None = None  # resolved when the run starts
    # a paper's own optimizer (interp reproduce cope --scale paper); None: the bench's AdamW
    # (warmup min(50, steps / 10), cosine).  Both left out of config.json at their defaults
    optim: OptimConfig | None = None
    tied_embeddings: bool = False

    resume_free: ClassVar[frozenset[str]] = frozenset()
    resume_resolved: ClassVar[frozenset[str]] = frozenset({"variants"})

    def __post_init__(self) -> None:  # lists as tuples (no checks here: see validate)
        for name in ("encodings", "seeds", "text_encodings", "text_eval_ctx"):
            if isinstance(getattr(self, name), list):
                object.__setattr__(self, name, tuple(getattr(self, name)))

    @property
    def seed(self) -> int:
        return self.seeds[0] if self.seeds else 0

    def validate(self) -> None:
        from interp.resources import MAX_SAMPLES, MAX_STEPS, check_limit

        if self.task is None and not self.text:
            raise ConfigError("pe-bench needs a task, text, or both")
        known = positional_names()
        for pe in (*self.encodings, *(self.text_encodings if self.text else ())):
            if pe not in known:
                raise ConfigError(
                    f"unknown positional encoding {pe!r}; choose from {', '.join(known)}"
                )
        if not self.encodings and self.task is not None:
            raise ConfigError("pe-bench needs at least one encoding")
        if not self.seeds:
            raise ConfigError("pe-bench needs at least one seed")
        for name in (
            "steps",
            "batch_size",
            "eval_sequences",
            "text_steps",
            "text_ctx",
            "text_max_chars",
            "text_eval_blocks",
        ):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if any(c < 1 for c in self.text_eval_ctx):
            raise ConfigError(f"text_eval_ctx must be >= 1, got {list(self.text_eval_ctx)}")
        if self.task is not None:
            from interp.tasks import build_task

            build_task(self.task, self.task_options)  # unknown task or bad options: one line
        for pe in set(self.encodings) | set(self.text_encodings):
            check_model_config(self.model_config(pe))  # bad positional options: one line
        for steps in (self.steps, self.text_steps):  # the learning rate: one line, before output
            self.train_config(self.seeds[0], steps).validate()
        check_limit(self.steps, "--steps", MAX_STEPS, "steps per model")
        check_limit(self.text_steps, "--text-steps", MAX_STEPS, "steps per model")
        check_limit(self.eval_sequences, "--eval-sequences", MAX_SAMPLES, "sequences per split")

    def model_config(self, pe: str, **overrides: Any) -> ModelConfig:
        return ModelConfig(
            n_layers=self.n_layers,
            d_model=self.d_model,
            n_heads=self.n_heads,
            d_mlp=self.d_mlp,
            positional=pe,
            positional_options=dict(self.positional_options.get(pe, {})),
            tied_embeddings=self.tied_embeddings,
            **overrides,
        )

    def train_config(self, seed: int, steps: int) -> TrainConfig:
        return TrainConfig(
            steps=steps,
            batch_size=self.batch_size,
            eval_every=steps,
            eval_batches=2,
            checkpoint_every=steps,
            log_every=max(1, steps // 25),
            seed=seed,
            device=self.device,
            optim=self.optim or OptimConfig(lr=self.lr, warmup_steps=min(50, steps // 10)),
        )

    def encoding_labels(self) -> dict[str, str]:
        """How results and reports name each encoding: its label (CoPE: ``cope`` as the public
        code defines it, or the options that differ, interp's own variants marked as such)."""
        names = dict.fromkeys((*self.encodings, *(self.text_encodings if self.text else ())))
        return {pe: build_positional(self.model_config(pe)).label() for pe in names}

    def resolved(self) -> PEBenchConfig:
        """This config with ``variants`` fixed by this interp's definitions."""
        return self.replace(variants=self.encoding_labels())

    def labels(self) -> dict[str, str]:
        return dict(self.variants) if self.variants is not None else self.encoding_labels()

    def to_dict(self) -> dict[str, Any]:
        """What ``config.json`` holds (beside ``kind`` and ``schema``): ``seed`` (the first
        seed, read by nothing but people), then the fields in order."""
        out = super().to_dict()
        for name, default in (("optim", None), ("tied_embeddings", False)):
            if out[name] == default:  # as before the field existed (configs and resumes agree)
                del out[name]
        return {"seed": self.seed, **out}

    def results_dict(self) -> dict[str, Any]:
        """The config as ``results.json`` records it (its fields, no ``seed``)."""
        out = self.to_dict()
        out.pop("seed")
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PEBenchConfig:
        if not isinstance(data, Mapping):
            raise ConfigError(f"{cls.__name__} must be a JSON object, got {type(data).__name__}")
        return super().from_dict({k: v for k, v in data.items() if k != "seed"})


def check_variants(
    stored: Mapping[str, str] | None,
    now: Mapping[str, str],
    redefined: set[str] | frozenset = frozenset(),
) -> None:
    """Refuse to resume a run whose encodings this interp defines differently.  A run started
    by an interp that recorded no ``variants`` (before CoPE followed the public code) is
    refused for the encodings ``redefined`` since then (the registry says which: CoPE, whose
    per-head tables are its earlier definition)."""
    before = (
        dict(stored)
        if stored is not None
        else {pe: v for pe, v in now.items() if pe not in redefined}
    )
    changed = [pe for pe in now if before.get(pe) != now[pe]]
    if changed:
        pe = changed[0]
        was = before.get(pe)
        raise ConfigError(
            f"--resume: this interp defines {pe!r} as {now[pe]!r}, the run was started with "
            + (
                f"{was!r}"
                if was
                else "an earlier definition (before CoPE followed the public "
                "code: one table per head)"
            )
            + "; its finished models would mix two definitions: use a new --out"
        )
