"""Run directories: one per experiment, everything needed to redo any step without retraining.

RUN/config.json     what was asked (model, train, data configs, seed, kind)
RUN/env.json        versions, device, seed, host
RUN/metrics.jsonl   one JSON row per log/eval event
RUN/checkpoints/    safetensors + JSON checkpoints (see interp.train.checkpoint)
RUN/model.safetensors  final weights
RUN/tokenizer/      the tokenizer, when the run trained on text
RUN/report.html     the interactive report, rebuilt from the files above alone
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import shutil
import socket
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from interp.errors import CorruptFileError, InterpError
from interp.io import (
    append_jsonl,
    atomic_write_json,
    fsync_dir,
    read_json,
    read_jsonl,
    truncate_jsonl,
)


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": sys.version.split()[0], "platform": platform.platform()}
    # read from package metadata: importing transformer_lens just to name it costs seconds
    for name, dist in (
        ("torch", "torch"),
        ("transformer_lens", "transformer-lens"),
        ("transformers", "transformers"),
        ("numpy", "numpy"),
        ("plotly", "plotly"),
    ):
        try:
            out[name] = version(dist)
        except PackageNotFoundError:
            out[name] = "not installed"
    from interp import __version__

    out["interp"] = __version__
    return out


def _is_write_debris(path: Path) -> bool:
    """A temporary file of :func:`interp.io.atomic_write_bytes` (``.NAME.XXXX.tmp``)."""
    return path.is_file() and path.name.startswith(".") and path.name.endswith(".tmp")


TRASH = ".interp-trash"


def _aside_path(path: Path) -> Path:
    """Where ``--overwrite`` moves an old run before deleting it: ``PARENT/.interp-trash/NAME``
    (a hidden folder, two levels down, so no ``PARENT/*/results.json`` lookup ever sees it)."""
    path = Path(os.path.abspath(path))  # '..' resolved, symlinks not
    return path.parent / TRASH / path.name


def _remove(path: Path) -> None:
    if path.is_symlink():  # --out was a link to a run: drop the link, not what it points to
        path.unlink()
    else:
        shutil.rmtree(path, ignore_errors=True)


# How an "already exists" refusal ends, by what the command offers.
RESUMABLE = "pass --resume to continue it or --overwrite to replace it"
REPLACEABLE = "pass --overwrite to replace it"
NEW_OUT_ONLY = "choose another --out"


class RunDir:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    # ------------------------------------------------------------ creation
    @staticmethod
    def is_blank(path: Path) -> bool:
        """True for an existing folder that holds nothing but temporary files of interrupted
        atomic writes (a run killed before its ``config.json`` was in place)."""
        path = Path(path)
        return path.is_dir() and all(_is_write_debris(p) for p in path.iterdir())

    @staticmethod
    def check_creatable(path: Path, overwrite: bool = False, remedy: str = RESUMABLE) -> None:
        """Raise the error ``create`` would raise, before any expensive work starts.

        ``remedy`` ends the "already exists" line: what the command offers instead."""
        path = Path(path)
        if path.exists() and not path.is_dir():
            raise InterpError(f"output path {path} exists and is not a directory")
        if path.is_dir() and not RunDir.is_blank(path):
            if not overwrite:
                raise InterpError(f"run directory {path} already exists; {remedy}")
            if not (path / "config.json").is_file():
                raise InterpError(
                    f"refusing to overwrite {path}: it is not a run directory (no config.json)"
                )

    @classmethod
    def create(
        cls,
        path: Path,
        config: Mapping[str, Any],
        overwrite: bool = False,
        remedy: str = RESUMABLE,
    ) -> RunDir:
        """Create a new run directory; refuse to reuse an existing non-empty one unless asked."""
        path = Path(path)
        cls.check_creatable(path, overwrite, remedy)
        aside = _aside_path(path)
        if aside.exists() or aside.is_symlink():  # an --overwrite killed mid-delete: finish it
            _remove(aside)
        replaced = path.is_dir() and any(path.iterdir())
        if replaced:
            # moved out of the way in one rename, deleted only once the new run exists: a kill
            # never leaves a half-deleted run in ``path`` (at worst hidden trash, cleared later)
            aside.parent.mkdir(exist_ok=True)
            path.rename(aside)
            fsync_dir(aside.parent.parent)
        path.mkdir(parents=True, exist_ok=True)
        run = cls(path)
        config = dict(config)
        config.setdefault("created", _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"))
        atomic_write_json(run.config_path, config)
        if replaced:
            _remove(aside)
        try:
            aside.parent.rmdir()  # only when empty (no other run's leftovers)
        except OSError:
            pass
        return run

    @classmethod
    def open(cls, path: Path) -> RunDir:
        path = Path(path)
        if not (path / "config.json").is_file():
            if not path.exists():
                raise InterpError(f"nothing to resume: {path} does not exist")
            raise InterpError(f"not a run directory (no config.json): {path}")
        return cls(path)

    def write_env(self, seed: int, device: str) -> None:
        env = {
            "versions": _versions(),
            "seed": seed,
            "device": device,
            "host": socket.gethostname(),
            "threads": int(os.environ.get("OMP_NUM_THREADS", 0)) or None,
        }
        atomic_write_json(self.path / "env.json", env)

    # ------------------------------------------------------------ files
    @property
    def config_path(self) -> Path:
        return self.path / "config.json"

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def weights_path(self) -> Path:
        return self.path / "model.safetensors"

    @property
    def report_path(self) -> Path:
        return self.path / "report.html"

    def config(self) -> dict[str, Any]:
        config = read_json(self.config_path, "run config")
        if not isinstance(config, dict):
            raise CorruptFileError(
                f"run config {self.config_path} is not a JSON object (got {type(config).__name__})"
            )
        return config

    def append_metrics(self, row: Mapping[str, Any]) -> None:
        append_jsonl(self.metrics_path, [row])

    def metrics(self) -> list[dict[str, Any]]:
        return read_jsonl(self.metrics_path)

    def truncate_metrics_after(self, step: int) -> None:
        """Drop rows logged after ``step`` (they are redone when a run resumes from ``step``)."""
        truncate_jsonl(self.metrics_path, lambda row: int(row.get("step", 0)) <= step)
