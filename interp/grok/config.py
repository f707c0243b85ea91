"""The grokking configs: one run (:class:`GrokConfig`) and a grid of runs (:class:`GrokSweepConfig`).

Inert frozen dataclasses: ``validate()`` refuses what no run can use (the experiments layer
calls it before anything is written); every task-dependent default comes from the task's entry
in :mod:`interp.grok.tasks`.  Both round-trip through ``to_dict`` / ``from_dict``.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from interp.config import _Config, check_optimizer
from interp.errors import ConfigError
from interp.grok.detect import LabelRule
from interp.grok.tasks import grok_model_names, grok_task, grok_task_names
from interp.grok.variants import GrokVariant, grok_variant
from interp.train.optim import Optim


def _check(cond: bool, message: str) -> None:
    if not cond:
        raise ConfigError(message)


def _check_task_and_model(task: str, model: str) -> None:
    _check(task in grok_task_names(),
           f"unknown grok task {task!r}; choose {', '.join(grok_task_names())}")  # fmt: skip
    models = grok_model_names()
    _check(model in models, f"unknown grok model {model!r}; choose {', '.join(models)}")
    spec = grok_task(task)
    if model not in spec.models:
        owners = [t for t in grok_task_names() if model in grok_task(t).models]
        raise ConfigError(f"--model {model} is for {', '.join(owners)}; {task} uses the "
                          f"{spec.models[0]}")  # fmt: skip


@dataclass(frozen=True)
class GrokConfig(_Config):
    """One grokking run.  ``None`` fields take the task's, model's and variant's defaults
    (``resolved``): modular addition's MLP is PAIR's notebook (variant pair, d_embed 500,
    seed 165), which groks on a CPU in ~15 minutes; ``variant="interp", d_embed=32, seed=0`` is
    the earlier default (it memorises without generalising at these settings)."""

    task: str = "modadd"
    model: str = "mlp"
    # the model's definition (interp.grok.variants): nanda (transformer), pair (PAIR's notebook:
    # the mlp on modadd) or interp (interp's earlier ones; the mlp on sparse-parity); None takes
    # the model's default for the task (variants.default_variant)
    variant: str | None = None
    p: int = 67
    pairs: str | None = None  # ordered (a <= b, PAIR) for MLPs, all (Nanda) for the transformer
    train_fraction: float | None = None  # 0.4 (PAIR) for MLPs, 0.3 (Nanda) for the transformer
    n_bits: int = 30
    k: int = 3
    n_train: int = 1200
    n_test: int = 2000
    width: int | None = None  # 24 (PAIR mod-add), 5 (fixed), 512 (transformer), 256 (parity)
    d_embed: int | None = None  # the variant's: 500 (pair, PAIR's embed_size), 32 (interp)
    frequency: int = 1  # the fixed model's embedding frequency
    d_model: int = 128
    weight_decay: float | None = None  # 1.0 (mod-add), 0.3 (parity)
    lr: float | None = None  # 1e-3 (mod-add, the papers'), 1e-2 (parity)
    beta1: float = 0.9
    beta2: float = 0.98
    steps: int | None = None  # 50,000 (mod-add), 4,000 (parity)
    log_every: int = 100
    checkpoint_every: int = 10_000
    top_k: int = 5  # frequencies counted in the "top-k share"
    seed: int | None = None  # the variant's: 165 (pair, PAIR's notebook), 0 (the others)
    data_seed: int | None = None  # which examples are training examples (default: seed)
    device: str = "cpu"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GrokConfig:
        """A config.json written before variants existed recorded no ``variant``: its model was
        interp's earlier definition, so it reads back as that one (its weights load)."""
        if isinstance(data, Mapping) and "variant" not in data:
            data = {**data, "variant": "interp"}
        return super().from_dict(data)

    def validate(self) -> None:
        _check_task_and_model(self.task, self.model)
        v = self.definition
        _check(self.task in v.tasks, f"variant {v.name} of the {self.model} is for "
                                     f"{', '.join(v.tasks)}, not {self.task}")  # fmt: skip
        r = self.resolved()
        check_optimizer(r.lr, r.weight_decay, self.beta1, self.beta2)
        _check(
            self.steps is None or (isinstance(self.steps, int) and self.steps >= 1),
            f"steps must be >= 1, got {self.steps!r}",
        )
        for name in ("log_every", "checkpoint_every", "d_embed", "d_model", "top_k"):
            value = getattr(r, name)
            _check(isinstance(value, int) and value >= 1, f"{name} must be >= 1, got {value!r}")
        _check(self.width is None or self.width >= 1, f"width must be >= 1, got {self.width}")
        _check(isinstance(r.seed, int) and r.seed >= 0, f"seed must be >= 0, got {r.seed!r}")
        self.task_object()  # p < 2, a train fraction outside (0, 1), k > n_bits: ConfigError

    @property
    def spec(self) -> Any:
        """This run's task entry (:class:`interp.grok.tasks.GrokTask`)."""
        return grok_task(self.task)

    def resolved(self) -> GrokConfig:
        """The config with every ``None`` default filled in (what config.json records)."""
        spec, transformer = self.spec, self.model == "transformer"
        filled = {k: v for k, v in spec.defaults.items() if getattr(self, k) is None}
        v = self.definition
        return self.replace(
            **filled,
            variant=v.name,
            d_embed=self.d_embed if self.d_embed is not None else v.d_embed,
            seed=self.init_seed,
            pairs=self.pairs or ("all" if transformer else "ordered"),
            train_fraction=(
                self.train_fraction
                if self.train_fraction is not None
                else (0.3 if transformer else 0.4)
            ),
            width=self.width if self.width is not None else spec.default_width(self.model),
        )

    def task_object(self) -> Any:
        return self.spec.task_object(self)

    @property
    def definition(self) -> GrokVariant:
        """The model's definition (:mod:`interp.grok.variants`): ``variant``, or the model's
        default for the task."""
        return grok_variant(self.model, self.variant, self.task)

    @property
    def init_seed(self) -> int:
        """``seed``, or the variant's where it is ``None``."""
        return self.seed if self.seed is not None else self.definition.seed

    @property
    def split_seed(self) -> int:
        return self.init_seed if self.data_seed is None else self.data_seed

    @property
    def optim(self) -> Optim:
        c = self.resolved()
        assert c.lr is not None and c.weight_decay is not None
        return Optim(c.lr, c.weight_decay, c.beta1, c.beta2, warmup=self.definition.warmup)


@dataclass(frozen=True)
class GrokSweepConfig(_Config):
    """A grid of small MLP runs trained many at a time (PAIR's phase diagrams).

    ``None`` fields take the task's sweep defaults on construction (so config.json records
    them; :attr:`interp.grok.tasks.GrokTask.sweep_defaults`): modular addition the PAIR MLP
    recipe (width 24, lr 1e-3, wd 0 / 0.3 / 1, 20,000 steps), sparse parity the recipe that
    groks on CPU (width 256, lr 1e-2, wd 0 / 0.1 / 0.3, 4,000 steps)."""

    task: str = "modadd"
    p: int = 67
    n_bits: int = 30
    k: int = 3
    n_test: int = 2000
    weight_decays: tuple[float, ...] | None = None
    train_fractions: tuple[float, ...] = (0.3, 0.4, 0.6)  # modadd
    train_sizes: tuple[int, ...] = (600, 1200)  # sparse-parity
    widths: tuple[int, ...] | None = None
    seeds: tuple[int, ...] = (0, 1, 2, 3)
    d_embed: int = 32  # the sweeps train interp's MLP (variant interp), unchanged
    lr: float | None = None
    steps: int | None = None
    log_every: int | None = None
    checkpoint_every: int = 1_000  # batched state saved for --resume
    device: str = "cpu"
    rule: LabelRule = field(default_factory=LabelRule)

    def __post_init__(self) -> None:  # normalisation only: defaults filled, lists as tuples
        if self.task in grok_task_names():
            for name, value in grok_task(self.task).sweep_defaults.items():
                if getattr(self, name) is None:
                    object.__setattr__(self, name, value)
        for name in ("weight_decays", "train_fractions", "train_sizes", "widths", "seeds"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, tuple(getattr(self, name)))
        if isinstance(self.rule, Mapping):
            object.__setattr__(self, "rule", LabelRule(**self.rule))

    def validate(self) -> None:
        _check_task_and_model(self.task, "mlp")
        for name in ("weight_decays", "train_fractions", "train_sizes", "widths", "seeds"):
            _check(len(getattr(self, name)) > 0, f"the sweep needs at least one value of {name}")
        for wd in self.weight_decays:
            check_optimizer(self.lr, wd, 0.9, 0.98)  # the sweep's AdamW (train.optim.Optim)
        _check(all(w >= 1 for w in self.widths), "widths must be >= 1")
        _check(self.steps >= 1 and self.log_every >= 1, "steps and log_every must be >= 1")
        _check(self.checkpoint_every >= 1, "checkpoint_every must be >= 1")
        for point in self.points()[:1] + self.points()[-1:]:  # bad p / fraction / k: ConfigError
            self.run_config(point).validate()
        if self.spec.size_key == "train_fraction":
            for f in self.train_fractions:
                _check(0 < f < 1, f"train fraction must be in (0, 1), got {f}")

    @property
    def spec(self) -> Any:
        return grok_task(self.task)

    @property
    def seed(self) -> int:  # env.json's seed: each run's own seed is in its grid point
        return 0

    def points(self) -> list[dict[str, Any]]:
        spec = self.spec
        return [
            {"width": w, "weight_decay": wd, spec.size_key: s, "seed": seed}
            for w, wd, s, seed in itertools.product(
                self.widths, self.weight_decays, getattr(self, spec.sweep_axis), self.seeds
            )
        ]

    def run_config(self, point: Mapping[str, Any]) -> GrokConfig:
        return GrokConfig(
            task=self.task,
            model="mlp",
            variant="interp",  # the sweeps' MLP (not the single run's modadd default, PAIR's)
            p=self.p,
            n_bits=self.n_bits,
            k=self.k,
            n_test=self.n_test,
            d_embed=self.d_embed,
            lr=self.lr,
            steps=self.steps,
            log_every=self.log_every,
            device=self.device,
            data_seed=0 if self.spec.shared_split else None,
            **point,
        ).resolved()

    def groups(self) -> list[list[dict[str, Any]]]:
        """Points that can share one batched training (same width)."""
        groups: dict[int, list[dict[str, Any]]] = {}
        for point in self.points():
            groups.setdefault(point["width"], []).append(point)
        return list(groups.values())


__all__ = ["GrokConfig", "GrokSweepConfig"]
