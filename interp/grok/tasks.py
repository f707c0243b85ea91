"""The grokking tasks, registered by name: what differs between modular addition and sparse
parity lives here, once, instead of ``task == "modadd"`` tests spread over the grok code.

A :class:`GrokTask` knows its models, its defaults (one run and a sweep), its examples as one
full batch, the grid axis a sweep varies (``size_key``), whether the Fourier analysis applies,
and its memory / disk estimates.  ``interp.grok.config`` and the grok experiments only ask it.
Adding a task: subclass, set the class attributes, ``@register_grok_task``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import nn

from interp.errors import ConfigError
from interp.grok.models import FixedFourierMLP, NandaTransformer, PairMLP, ParityMLP
from interp.resources import F32, REPORT_BYTES, grok_sweep_estimate, train_estimate
from interp.tasks import build_task
from interp.train.full_batch import FullBatchData

if TYPE_CHECKING:  # pragma: no cover
    from interp.grok.config import GrokConfig, GrokSweepConfig


class GrokTask:
    name: ClassVar[str]
    models: ClassVar[tuple[str, ...]]  # the first is the default
    size_key: ClassVar[str]  # the training-set axis of a sweep grid (a GrokConfig field)
    sweep_axis: ClassVar[str]  # the GrokSweepConfig field holding its values
    fourier: ClassVar[bool] = False  # embedding spectra, key frequencies, circles
    defaults: ClassVar[dict[str, Any]]  # None fields of a GrokConfig: lr, weight_decay, steps
    sweep_defaults: ClassVar[dict[str, Any]]  # None fields of a GrokSweepConfig
    shared_split: ClassVar[bool] = False  # sweep runs read one split (data_seed 0)

    def default_width(self, model: str) -> int:
        raise NotImplementedError

    def task_object(self, cfg: GrokConfig) -> Any:
        raise NotImplementedError

    def build_data(self, cfg: GrokConfig) -> FullBatchData:
        raise NotImplementedError

    def build_model(self, cfg: GrokConfig) -> nn.Module:
        raise NotImplementedError

    def sweep_data(self, configs: Sequence[GrokConfig]) -> tuple[torch.Tensor, ...]:
        """``(x, y, masks [run example])``: the examples every run of a group shares."""
        datas = [self.build_data(c) for c in configs]
        return datas[0].x, datas[0].y, torch.stack([d.train for d in datas])

    def estimate(self, cfg: GrokConfig, checkpoints: int, n_logs: int) -> tuple[int, int]:
        """``(disk, memory)`` bytes of one run of ``cfg`` (resolved) keeping ``checkpoints``
        checkpoints and logging ``n_logs`` times."""
        raise NotImplementedError

    def sweep_estimate(self, cfg: GrokSweepConfig) -> tuple[int, int]:
        raise NotImplementedError


_TASKS: dict[str, GrokTask] = {}


def register_grok_task(cls: type[GrokTask]) -> type[GrokTask]:
    if cls.name in _TASKS:
        raise ValueError(f"grok task {cls.name!r} is registered twice")
    _TASKS[cls.name] = cls()
    return cls


def grok_task(name: str) -> GrokTask:
    if name not in _TASKS:
        raise ConfigError(f"unknown grok task {name!r}; choose {', '.join(_TASKS)}")
    return _TASKS[name]


def grok_task_names() -> tuple[str, ...]:
    return tuple(_TASKS)


def grok_model_names() -> tuple[str, ...]:
    return tuple(dict.fromkeys(m for t in _TASKS.values() for m in t.models))


@register_grok_task
class ModAdd(GrokTask):
    """``a + b mod p``: the PAIR MLP, the fixed (cos, sin) MLP, Nanda's transformer."""

    name = "modadd"
    models = ("mlp", "fixed", "transformer")
    size_key = "train_fraction"
    sweep_axis = "train_fractions"
    fourier = True
    defaults = {"lr": 1e-3, "weight_decay": 1.0, "steps": 50_000}  # the papers'
    sweep_defaults = {
        "weight_decays": (0.0, 0.3, 1.0),
        "widths": (24,),
        "lr": 1e-3,
        "steps": 20_000,
        "log_every": 500,
    }

    def default_width(self, model: str) -> int:
        return {"fixed": 5, "transformer": 512}.get(model, 24)

    def task_object(self, cfg: GrokConfig) -> Any:
        c = cfg.resolved() if cfg.pairs is None or cfg.train_fraction is None else cfg
        options = {"p": c.p, "pairs": c.pairs, "train_fraction": c.train_fraction}
        split = c.definition.split
        return build_task("modadd", {**options, "split_seed": c.split_seed, "split": split})

    def build_data(self, cfg: GrokConfig) -> FullBatchData:
        task = self.task_object(cfg)
        data = task.dataset()
        sequences = cfg.model == "transformer"  # "a b =" tokens; the MLPs read (a, b)
        x = task.sequences(data) if sequences else torch.stack([data.a, data.b], 1)
        return FullBatchData(x, data.label, data.train)

    def build_model(self, cfg: GrokConfig) -> nn.Module:
        cfg = cfg.resolved()
        if cfg.model == "fixed":
            return FixedFourierMLP(cfg.p, width=cfg.width, frequency=cfg.frequency, seed=cfg.seed)
        v = cfg.definition
        if cfg.model == "transformer":
            return NandaTransformer(cfg.p, d_model=cfg.d_model, d_mlp=cfg.width, seed=cfg.seed,
                                    variant=v)  # fmt: skip
        return PairMLP(cfg.p, cfg.width, cfg.d_embed, seed=cfg.seed, init=v.init)

    def estimate(self, cfg: GrokConfig, checkpoints: int, n_logs: int) -> tuple[int, int]:

        data = self.task_object(cfg).dataset_bytes()
        logs = n_logs * (1024 + 48 * cfg.p)  # a row holds two Fourier spectra of ~p numbers
        if cfg.model == "transformer":
            disk, memory = train_estimate(1, cfg.d_model, cfg.width, 4, cfg.p + 1, 3, cfg.p**2,
                                          checkpoints_kept=checkpoints - 1, data_bytes=data)  # fmt: skip
            return disk + logs, memory
        params = cfg.p * cfg.d_embed + 2 * cfg.d_embed * cfg.width
        _, memory = grok_sweep_estimate(1, (cfg.width,), 2 * cfg.p, cfg.p, cfg.p**2, cfg.d_embed,
                                        0, data_bytes=data)  # fmt: skip
        return params * F32 * (3 * checkpoints + 1) + logs + REPORT_BYTES + 2**20, memory

    def sweep_estimate(self, cfg: GrokSweepConfig) -> tuple[int, int]:
        from interp.resources import grok_sweep_estimate

        per_width = len(cfg.weight_decays) * len(cfg.train_fractions) * len(cfg.seeds)
        return grok_sweep_estimate(
            per_width, cfg.widths, 2 * cfg.p, cfg.p, cfg.p**2, cfg.d_embed,
            cfg.steps // cfg.log_every + 1, data_bytes=96 * cfg.p**2,
        )  # fmt: skip


@register_grok_task
class SparseParity(GrokTask):
    """The parity of the first ``k`` of ``n_bits`` random bits, on a fixed training set.

    Defaults: width 256, lr 1e-2, wd 0.3, 4,000 steps: it memorises the 1,200 training
    sequences by step ~300 and reaches 100% test accuracy around step 1,500-2,500 (see
    :mod:`interp.tasks.sparse_parity`); lr 1e-3 / width 128 never left chance within 8,000
    steps."""

    name = "sparse-parity"
    models = ("mlp",)
    size_key = "n_train"
    sweep_axis = "train_sizes"
    defaults = {"lr": 1e-2, "weight_decay": 0.3, "steps": 4_000}
    sweep_defaults = {
        "weight_decays": (0.0, 0.1, 0.3),
        "widths": (256,),
        "lr": 1e-2,
        "steps": 4_000,
        "log_every": 100,
    }
    shared_split = True

    def default_width(self, model: str) -> int:
        return 256

    def task_object(self, cfg: GrokConfig) -> Any:
        options = {"n_bits": cfg.n_bits, "k": cfg.k, "n_train": cfg.n_train}
        return build_task("sparse-parity", {**options, "n_test": cfg.n_test,
                                            "split_seed": cfg.split_seed})  # fmt: skip

    def build_data(self, cfg: GrokConfig) -> FullBatchData:
        x_train, y_train, x_test, y_test = self.task_object(cfg).dataset()
        train = torch.cat([torch.ones(len(y_train)), torch.zeros(len(y_test))]).bool()
        return FullBatchData(torch.cat([x_train, x_test]), torch.cat([y_train, y_test]), train)

    def build_model(self, cfg: GrokConfig) -> nn.Module:
        c = cfg.resolved()
        return ParityMLP(c.n_bits, c.width, seed=c.seed)

    def sweep_data(self, configs: Sequence[GrokConfig]) -> tuple[torch.Tensor, ...]:
        # every run reads a prefix of the largest training set (and the same test set)
        pool = self.build_data(max(configs, key=lambda c: c.n_train))
        masks = torch.stack([(torch.arange(len(pool.y)) < c.n_train) & pool.train for c in configs])
        return pool.x, pool.y, masks

    def estimate(self, cfg: GrokConfig, checkpoints: int, n_logs: int) -> tuple[int, int]:
        from interp.resources import F32, REPORT_BYTES, grok_sweep_estimate

        data, logs = self.task_object(cfg).dataset_bytes(), n_logs * 1024
        params = cfg.n_bits * cfg.width + 3 * cfg.width + 2
        _, memory = grok_sweep_estimate(1, (cfg.width,), cfg.n_bits, 2, cfg.n_train + cfg.n_test,
                                        1, 0, data_bytes=data, dense_inputs=True)  # fmt: skip
        return params * F32 * (3 * checkpoints + 1) + logs + REPORT_BYTES + 2**20, memory

    def sweep_estimate(self, cfg: GrokSweepConfig) -> tuple[int, int]:
        from interp.resources import grok_sweep_estimate

        per_width = len(cfg.weight_decays) * len(cfg.train_sizes) * len(cfg.seeds)
        examples = max(cfg.train_sizes) + cfg.n_test
        return grok_sweep_estimate(
            per_width, cfg.widths, cfg.n_bits, 2, examples, 1, cfg.steps // cfg.log_every + 1,
            data_bytes=24 * examples * cfg.n_bits, dense_inputs=True,
        )  # fmt: skip


__all__ = [
    "GrokTask",
    "grok_model_names",
    "grok_task",
    "grok_task_names",
    "register_grok_task",
]
