"""Run directories: one per experiment, everything needed to redo any step without retraining.

RUN/config.json     what was asked (model, train, data configs, seed, kind)
RUN/env.json        versions, device, seed, host
RUN/metrics.jsonl   one JSON row per log/eval event
RUN/checkpoints/    safetensors + JSON checkpoints (see interp.train.checkpoint)
RUN/model.safetensors  final weights
RUN/tokenizer/      the tokenizer, when the run trained on text
RUN/report.html     the interactive report, rebuilt from the files above alone
RUN/.interp-lock    the advisory lock of the process working on the run (its pid inside)

Locks: a process that creates, resumes or overwrites a run holds ``fcntl.flock`` on
``RUN/.interp-lock`` for the life of the work (the CLI releases it when the command ends; the
kernel releases it when the process dies, SIGKILL included).  A second process is refused with
one line naming the holder's pid (:class:`RunInUseError`), or waits for it (the shared demo
cache, :func:`interp.demo.ensure_demo_model`).  The lock file lives *inside* the run folder, so
nothing is written outside the output folder: the folder is created first (``mkdir``, harmless
when two processes race: they meet at the lock), and every decision (does a run exist here? is
it blank? may it be replaced?) is taken again once the lock is held.  ``--overwrite`` moves the
old folder aside with its lock file and locks the new folder before writing into it; a lock
whose file was moved away meanwhile is detected (inode check) and taken again.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import socket
import stat
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from interp.errors import CorruptFileError, InterpError
from interp.io import fsync_dir, read_json, read_jsonl, truncate_jsonl
from interp.locks import (  # noqa: F401  (the run locks: importable from here as before)
    LOCK,
    LOCK_RETRY_S,
    HeldRun,
    RunInUseError,
    held_runs,
    holds,
    in_use_by,
    lock_run,
    release_all,
    release_run,
)
from interp.safefs import MARKER, Tree, UnsafePathError, has_marker, is_link, remove_path
from interp.shapes import (  # noqa: F401  (the saved cells' shapes, as before)
    RECOMPUTE,
    ListOf,
    MapOf,
    Num,
    OneOf,
    ShapeError,
    check_shape,
    read_cell,
)
from interp.version import __version__


def _interp_version() -> str:
    return __version__


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
    out["interp"] = __version__
    return out


def _is_write_debris(path: Path) -> bool:
    """A temporary file of :func:`interp.io.atomic_write_bytes` (``.NAME.XXXX.tmp``), the
    marker interp writes before anything else (a run killed before its ``config.json``), or the
    lock file (taken before anything is written)."""
    if path.name in (MARKER, LOCK):
        return path.is_file() and not is_link(path)
    return path.is_file() and path.name.startswith(".") and path.name.endswith(".tmp")


TRASH = ".interp-trash"

# What interp writes inside a run: checked for planted symbolic links before any work starts.
RUN_SUBPATHS = (
    LOCK,
    "config.json",
    "env.json",
    "metrics.jsonl",
    "results.json",
    "claims.json",
    "model.safetensors",
    "report.html",
    "checkpoints",
    "tokenizer",
    "analyses",
    "cells",
    "runs",
)


def _aside_path(path: Path) -> Path:
    """Where ``--overwrite`` moves an old run before deleting it: ``PARENT/.interp-trash/NAME``
    (a hidden folder, two levels down, so no ``PARENT/*/results.json`` lookup ever sees it)."""
    path = Path(os.path.abspath(path))  # '..' resolved, symlinks not
    return path.parent / TRASH / path.name


def _trash_dir(path: Path) -> Path:
    """``PARENT/.interp-trash``, refused when something other than a real folder sits there."""
    trash = _aside_path(path).parent
    if is_link(trash) or (trash.exists() and not trash.is_dir()):
        raise UnsafePathError(
            f"refusing to overwrite {path}: {trash} is not a plain folder (interp moves the old "
            "run there before deleting it); remove it yourself"
        )
    return trash


def describe_file(path: Path) -> str:
    """What a file interp writes is, for a one-line error: ``the checkpoint of step 300 (P)``."""
    import re

    path = Path(path)
    name = path.name
    debris = re.fullmatch(r"\.(.+)\.[^.]+\.tmp", name)  # a temporary of an atomic write
    name = debris[1] if debris else name
    parts = path.parts
    step = next((re.search(r"step_0*(\d+)", p) for p in reversed(parts[:-1]) if "step_" in p), None)
    if step is not None:
        what = f"the checkpoint of step {step[1]}"
    elif any(p in ("tokenizer", ".tmp-tokenizer") for p in parts[:-1]):
        what = "the tokenizer"
    elif "cells" in parts[:-1] or name == ".pending.json":
        what = "a finished sweep cell"
    elif "analyses" in parts[:-1]:
        what = "the analysis copy in the model's run"
    else:
        what = {
            "metrics.jsonl": "the metrics",
            "model.safetensors": "the final weights",
            "report.html": "the report",
            "results.json": "the results",
            "claims.json": "the claims",
            "config.json": "the run config",
            "env.json": "the run environment",
            MARKER: "the run marker",
            LOCK: "the run lock",
        }.get(name, "a file")
    return f"{what} ({path})"


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
        if path.is_dir() and (pid := in_use_by(path)) is not None:
            raise RunInUseError(
                f"run directory {path} is in use by another interp process (pid {pid})"
            )
        if path.is_dir() and not RunDir.is_blank(path):
            if not overwrite:
                raise InterpError(f"run directory {path} already exists; {remedy}")
            if not has_marker(path):
                raise InterpError(
                    f"refusing to overwrite {path}: not a run directory interp created (no {MARKER} "
                    "marker); delete it yourself or choose another --out"
                )
            _trash_dir(path)

    @classmethod
    def create(
        cls,
        path: Path,
        config: Mapping[str, Any],
        overwrite: bool = False,
        remedy: str = RESUMABLE,
    ) -> RunDir:
        """Create a new run directory; refuse to reuse an existing non-empty one unless asked.

        The run's lock is held from here on (see the module docstring)."""
        path = Path(path)
        cls.check_creatable(path, overwrite, remedy)
        path.mkdir(parents=True, exist_ok=True)  # two racing creators both pass: the lock decides
        lock_run(path)
        cls.check_creatable(path, overwrite, remedy)  # again: a run may have appeared meanwhile
        aside = _aside_path(path)
        trash = _trash_dir(path)
        if trash.is_dir() and (aside.exists() or is_link(aside)):
            remove_path(aside)  # an --overwrite killed mid-delete: finish it (links not followed)
        replaced = any(p.name != LOCK for p in path.iterdir())
        if replaced:
            # moved out of the way in one rename, deleted only once the new run exists: a kill
            # never leaves a half-deleted run in ``path`` (at worst hidden trash, cleared later)
            trash.mkdir(exist_ok=True)
            _trash_dir(path)  # still a plain folder (not swapped for a link meanwhile)
            path.rename(aside)  # its lock file goes with it (still held until the lock below)
            fsync_dir(trash.parent)
            try:
                path.mkdir()
            except FileExistsError:  # another process took the name in that instant
                raise RunInUseError(
                    f"run directory {path} is in use by another interp process (pid "
                    f"{in_use_by(path) or '?'})"
                ) from None
            lock_run(path)
        run = cls(path)
        run.tree.write_json(MARKER, {"interp": _interp_version()})
        config = dict(config)
        config.setdefault("created", _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"))
        run.tree.write_json("config.json", config)
        if replaced:
            remove_path(aside)
        try:
            trash.rmdir()  # only when empty (no other run's leftovers)
        except OSError:
            pass
        return run

    @classmethod
    def open(cls, path: Path, writable: bool = True) -> RunDir:
        """An existing run; ``writable`` (resume, overwrite) also refuses planted links."""
        path = Path(path)
        if not (path / "config.json").is_file():
            if not path.exists():
                raise InterpError(f"nothing to resume: {path} does not exist")
            raise InterpError(f"not a run directory (no config.json): {path}")
        run = cls(path)
        if writable:  # resume: held for the life of the work, like a new run
            run.check_safe()
            if not has_marker(path) and not isinstance(run.config().get("kind"), str):
                raise InterpError(  # a folder someone else made: not even a lock file in it
                    f"not an interp run directory (its config.json names no 'kind'): {path}"
                )
            lock_run(path)
            if not (path / "config.json").is_file():  # replaced meanwhile by an --overwrite
                raise InterpError(f"not a run directory (no config.json): {path}")
        return run

    @staticmethod
    def nothing_to_resume(path: Path) -> bool:
        """True when ``--resume`` on ``path`` has nothing to continue (the folder does not exist,
        or holds only debris of a run killed before its ``config.json``): start a new run."""
        path = Path(path)
        return not path.exists() or RunDir.is_blank(path)

    @property
    def tree(self) -> Tree:
        """Every write inside the run goes through this (no write through a planted link)."""
        return Tree(self.path)

    def check_analysis(self, kind: str) -> None:
        """Refuse now, before the analysis runs, if its copy would go through a planted link."""
        self.tree.check(("analyses", f"analyses/{kind}"))

    def write_analysis(self, kind: str, results: Any, name: str) -> Path:
        """``analyses/<kind>/<name>/results.json``: one folder per analysis run of this run's
        model (``name`` = when and where it ran), so the model's report keeps a section for
        each, the newest marked, and no analysis silently replaces another."""
        folder = f"analyses/{kind}/{name}"
        n = 1
        while self.tree.path(folder).exists():
            n += 1
            folder = f"analyses/{kind}/{name}-{n}"
        return self.tree.write_json(f"{folder}/results.json", results)

    def check_safe(self, extra: tuple[str, ...] = ()) -> None:
        """Refuse, before any work, a run whose files or folders interp writes are links, or
        that holds a link or a FIFO, device or socket anywhere below its root: interp never
        makes one in a run, so it was planted (a resumed experiment writes into sub-runs, cells
        and models folders whose names vary; a FIFO would hang the first read or append)."""
        self.tree.check((*RUN_SUBPATHS, *extra))
        for dirpath, dirnames, filenames in os.walk(self.path):  # links are not followed
            for name in (*dirnames, *filenames):
                found = Path(dirpath) / name
                try:
                    mode = os.lstat(found).st_mode
                except OSError:
                    continue
                if stat.S_ISLNK(mode):
                    raise UnsafePathError(
                        f"refusing to use the run {self.path}: {found} is a symbolic link "
                        "(interp never makes one in a run; it may lead outside it)"
                    )
                if not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
                    raise UnsafePathError(
                        f"refusing to use the run {self.path}: {found} is not a regular file "
                        "(a FIFO, device or socket)"
                    )

    def write_env(self, seed: int, device: str, world_size: int = 1, executor: Any = None) -> None:
        """``env.json``: versions, seed, device, host, threads; ``world_size`` the processes
        working on the run (torchrun), ``executor`` where a sweep's groups trained
        (:meth:`interp.executors.Executor.describe`; None for work that is not a sweep).  A
        resumed run rewrites it: it describes the last invocation."""
        env = {
            "versions": _versions(),
            "seed": seed,
            "device": device,
            "host": socket.gethostname(),
            "threads": int(os.environ.get("OMP_NUM_THREADS", 0)) or None,
            "world_size": world_size,
            "executor": executor,
        }
        self.tree.write_json("env.json", env)

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
        self.tree.append_jsonl("metrics.jsonl", [row])

    def metrics(self) -> list[dict[str, Any]]:
        return read_jsonl(self.metrics_path)

    def truncate_metrics_after(self, step: int) -> None:
        """Drop rows logged after ``step`` (they are redone when a run resumes from ``step``)."""
        self.tree.path("metrics.jsonl")

        def keep(row: dict[str, Any]) -> bool:
            logged = row.get("step", 0)
            if isinstance(logged, bool) or not isinstance(logged, int | float):
                raise CorruptFileError(f"{self.metrics_path}: a row has a non-numeric step")
            return logged <= step

        truncate_jsonl(self.metrics_path, keep)
