"""What an experiment is: a frozen Config, a typed Results, a prepare step and a run step.

One experiment per file in this package, registered by ``kind``.  :func:`interp.experiments.
execute` drives every one of them the same way (see ``execute.py``)::

    config = CollapseConfig(dtypes=("bfloat16",))          # inert, round-trips config.json
    prepared = experiment.prepare(config, model=None)      # loads and validates; writes nothing
    results = experiment.run(prepared, context)            # the work; files only via context.run

The Config is what ``config.json`` stores (``Config.from_dict(run.config())`` reads it back);
the Results is what ``results.json`` stores (with its ``kind`` and ``schema`` version).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar

from interp.cells import CellStore
from interp.config import _Config, _plain
from interp.errors import ConfigError, CorruptFileError
from interp.progress import SILENT, Progress
from interp.runs import REPLACEABLE, RESUMABLE, RunDir

C = TypeVar("C", bound="ExperimentConfig")
R = TypeVar("R", bound="Results")


class ExperimentConfig(_Config):
    """Base of the experiments layer's own frozen configs (``to_dict``/``from_dict``/``validate``
    from :class:`interp.config._Config`).  ``resume_free`` names the fields a ``--resume`` may
    change (say ``steps``).  Analysis configs that serve as an experiment's config directly
    (``probes.run.ProbeConfig``) subclass ``_Config`` and have the same interface."""

    resume_free: ClassVar[frozenset[str]] = frozenset()
    resume_resolved: ClassVar[frozenset[str]] = frozenset()


@dataclass
class Results:
    """Base of every experiment's typed results; ``results.json`` is ``to_dict()``.

    Subclasses declare their fields (plain JSON values, or nested mappings of them) and a
    ``schema`` version, bumped whenever a field changes meaning."""

    kind: ClassVar[str] = ""
    schema: ClassVar[int] = 1

    def to_dict(self) -> dict[str, Any]:
        body = {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}
        return {"kind": self.kind, "schema": self.schema, **body}

    @classmethod
    def from_dict(cls: type[R], data: Mapping[str, Any], where: str = "results") -> R:
        if not isinstance(data, Mapping):
            raise CorruptFileError(f"{where} is not a JSON object")
        if data.get("kind", cls.kind) != cls.kind:
            raise CorruptFileError(f"{where} holds {data.get('kind')!r} results, not {cls.kind!r}")
        names = [f.name for f in dataclasses.fields(cls)]
        required = [
            f.name
            for f in dataclasses.fields(cls)
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        ]
        missing = [n for n in required if n not in data]
        if missing:
            raise CorruptFileError(f"{where} has no {', '.join(missing)}")
        return cls(**{n: data[n] for n in names if n in data})

    def lines(self) -> list[str]:
        """What the CLI prints after the headline and the tables (details, notes)."""
        return []

    def tables(self) -> list[Any]:
        """Result tables (``interp.report.tables.Table``) the CLI prints."""
        return []

    # ------------------------------------------------------------------ notebooks
    def figures(self) -> list[Any]:
        """The plotly figures of this result's report section (the same ones the HTML shows)."""
        from interp.report.sections import results_section

        section = results_section(self.kind, self.to_dict())
        return list(section.figures) if section is not None else []

    def figure(self, index: int = 0) -> Any:
        """One of :meth:`figures` (the first by default)."""
        figs = self.figures()
        if not figs:
            raise ConfigError(f"{self.kind} results have no figure")
        return figs[index]

    def save(self, directory: str | Path, overwrite: bool = False) -> Path:
        """Write the run directory the CLI would have written for this result (config.json,
        env.json, results.json, report.html); returns its path."""
        from interp.experiments.execute import save_results

        return save_results(self, Path(directory), overwrite=overwrite)

    def __str__(self) -> str:
        head = getattr(self, "headline", "")
        return "\n".join([head, *self.lines()] if head else self.lines()) or f"{self.kind} results"


@dataclass(frozen=True)
class Estimate:
    """What a run needs: bytes of memory and disk, and what the work is (for the preflight).

    ``memory`` is what the run will allocate; ``resident`` what the process already holds for
    it when the estimate is made (the loaded model, the libraries), so that the printed need
    is the expected peak of the process (:func:`interp.resources.expected_peak`)."""

    memory: int
    disk: int
    what: str
    resident: int = 0


@dataclass
class Prepared(Generic[C]):
    """A validated, loaded experiment: nothing has been written yet."""

    config: C  # resolved: what config.json stores
    estimate: Estimate | None  # None: no single estimate (made of other experiments)
    model: Any = None  # the loaded model, for analyses of one
    model_run: Path | None = None  # its interp run directory: results are copied there
    state: Any = None  # whatever the experiment planned (lengths, prompts, ...)


@dataclass
class Context:
    """What a running experiment may use: its run directory (None for an analysis, which writes
    nothing while it runs), progress, resume flag."""

    run: RunDir | None
    resume: bool = False
    progress: Progress = SILENT

    @cached_property
    def cells(self) -> Any:

        return CellStore(self.run)


class Experiment(Generic[C, R]):
    """One kind of experiment.  Subclasses set the class attributes and implement
    :meth:`prepare` and :meth:`run`."""

    kind: ClassVar[str]
    config_cls: ClassVar[type]
    results_cls: ClassVar[type]
    resumable: ClassVar[bool] = False
    # trainers and sweeps write into their run directory as they go (checkpoints, cells): it
    # exists before ``run``; an analysis gets none and its directory is written once it is done
    writes_while_running: ClassVar[bool] = False
    #: runs under ``torchrun`` with more than one process (each rank a shard, rank 0 writes);
    #: the others refuse there (``interp.distributed``)
    data_parallel: ClassVar[bool] = False
    description: ClassVar[str] = ""

    @property
    def remedy(self) -> str:
        """How an "already exists" refusal ends for this experiment."""
        return RESUMABLE if self.resumable else REPLACEABLE

    def validate(self, config: C) -> None:
        """Refuse a config no run can use, before anything is read or written: the config's
        own ``validate()``; an experiment whose config holds a model's adds the model layer's
        checks (the positional encoding's registry)."""
        config.validate()  # type: ignore[attr-defined]

    def estimate(self, config: C, report: bool = True) -> Estimate | None:
        """What the run needs when the config alone says it (a trainer): checked before
        ``prepare`` reads any data.  None: the estimate comes with ``prepare`` (an analysis
        needs its model loaded first)."""
        return None

    def prepare(
        self, config: C, model: Any = None, progress: Progress = SILENT, **kw: Any
    ) -> Prepared[C]:
        """Load and validate; write nothing.  A ``resumable`` experiment's ``prepare`` also
        takes ``run``: the run directory it continues (None for a fresh start), and any
        per-invocation ``options`` of :func:`execute` as keywords.  The default, for a trainer
        whose config is all it needs (its estimate comes from :meth:`estimate`): nothing to
        load."""
        return Prepared(config, None)

    def run(self, prepared: Prepared[C], context: Context) -> R:
        raise NotImplementedError

    def check_resume(self, stored: C, asked: C) -> C:
        """The one resume check: the config a resumed run continues with is the stored one,
        with the ``resume_free`` fields taken from the request (say ``steps``, or
        ``train.steps`` inside a nested config); ``resume_resolved`` fields (fixed from the
        data when the run started: a vocabulary) are not compared; any other difference is
        refused naming the field."""
        s, a = _flatten(stored.to_dict()), _flatten(asked.to_dict())
        free: frozenset[str] = getattr(type(stored), "resume_free", frozenset())
        resolved: frozenset[str] = getattr(type(stored), "resume_resolved", frozenset())
        for key in sorted(set(s) | set(a)):
            if key.split(".")[0] in free or key in free | resolved or s.get(key) == a.get(key):
                continue
            raise ConfigError(
                f"--resume: {key} is {a.get(key)!r} but the run was started with "
                f"{s.get(key)!r} (the request differs from its config.json); use the same "
                "options (or a new --out)"
            )
        for name in sorted(free):
            stored = _replace_path(stored, name.split("."), _get_path(asked, name.split(".")))
        return stored


def _get_path(config: Any, path: list[str]) -> Any:
    for name in path:
        config = getattr(config, name)
    return config


def _replace_path(config: Any, path: list[str], value: Any) -> Any:
    """``config`` with the (nested) field at ``path`` set to ``value``."""
    head, rest = path[0], path[1:]
    inner = value if not rest else _replace_path(getattr(config, head), rest, value)
    return dataclasses.replace(config, **{head: inner})


def _flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in d.items():
        if isinstance(value, Mapping) and value and not key.endswith("options"):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


# ------------------------------------------------------------------------------------ registry
_REGISTRY: dict[str, Experiment] = {}  # read through interp.experiments.registry


def register_experiment(cls: type[Experiment]) -> type[Experiment]:
    """Class decorator: register one instance of ``cls`` under ``cls.kind`` (once)."""
    kind = cls.kind
    if kind in _REGISTRY:
        raise ValueError(f"experiment {kind!r} is registered twice")
    _REGISTRY[kind] = cls()
    return cls


__all__ = [
    "Context",
    "Estimate",
    "Experiment",
    "ExperimentConfig",
    "Prepared",
    "Results",
    "register_experiment",
]
