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
import errno
import os
import platform
import socket
import stat
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from interp.errors import CorruptFileError, InterpError
from interp.io import fsync_dir, read_json, read_jsonl, truncate_jsonl
from interp.safefs import MARKER, Tree, UnsafePathError, has_marker, is_link, remove_path
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
LOCK = ".interp-lock"  # the advisory lock of the process working on a run (see the docstring)

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


# --------------------------------------------------------------------------- locks
LOCK_RETRY_S = 0.3  # a lock held by a mere probe (check_creatable) is released within this


class RunInUseError(InterpError):
    """Another live interp process holds the run directory's lock."""


@dataclass
class HeldRun:
    """A run directory whose lock this process holds (the work on it is in progress)."""

    path: Path
    fd: int
    pid: int  # the process that took it (a forked child does not inherit it)
    hint: str | None = None  # how the work continues after an interruption (None: the CLI says)


_HELD: dict[str, HeldRun] = {}
_NO_FLOCK = {errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS}


def _key(path: Path) -> str:
    return os.path.abspath(path)


def _read_pid(fd: int) -> str:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return "?"
    return text if text.isdigit() else "?"


def _holder_pid(fd: int) -> str:
    """The pid in a lock file another process holds; it writes it an instant after taking the
    lock, so an empty file is read again for up to 0.1 s."""
    for _ in range(20):
        if (pid := _read_pid(fd)) != "?":
            return pid
        time.sleep(0.005)
    return "?"


def _same_file(fd: int, path: Path) -> bool:
    try:
        a, b = os.fstat(fd), os.lstat(path)
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _open_lock_file(path: Path, create: bool) -> int:
    """``path/LOCK`` opened without following a link; a planted link or hard link is refused
    (the pid written into it must never land in someone else's file)."""
    target = Tree(path).path(LOCK)  # no link on the way (the run folder itself may be one)
    flags = os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC | (os.O_CREAT if create else 0)
    try:
        fd = os.open(target, flags, 0o644)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise UnsafePathError(f"refusing to lock through the symbolic link {target}") from None
        raise
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1:
        os.close(fd)
        raise UnsafePathError(
            f"refusing to use {target} as interp's lock file: it is not a plain file of its own "
            "(a hard link?); remove it"
        )
    return fd


def holds(path: Path) -> bool:
    """True when this process holds the lock of the run directory ``path``."""
    held = _HELD.get(_key(path))
    return held is not None and held.pid == os.getpid() and _same_file(held.fd, path / LOCK)


def lock_run(
    path: Path,
    *,
    wait: bool = False,
    on_wait: Callable[[str], None] | None = None,
    hint: str | None = None,
) -> HeldRun:
    """Hold the advisory lock of the existing folder ``path`` for the life of the work.

    Re-entrant within a process.  Held by another process: :class:`RunInUseError` (one line
    naming its pid), or with ``wait`` block until it is released (``on_wait`` is told once).
    Released by :func:`release_run` / :func:`release_all`, or when the process ends."""
    import fcntl

    path = Path(path)
    key = _key(path)
    if holds(path):
        held = _HELD[key]
        held.hint = hint if hint is not None else held.hint
        return held
    _drop(key)  # a lock this process held on a folder since moved away (--overwrite)
    deadline = time.monotonic() + LOCK_RETRY_S
    told = False
    while True:
        fd = _open_lock_file(path, create=True)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _holder_pid(fd)
            if wait:
                if on_wait is not None and not told:
                    on_wait(pid)
                    told = True
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX)
                except BaseException:
                    os.close(fd)
                    raise
            else:
                os.close(fd)
                if time.monotonic() < deadline:
                    time.sleep(0.01)
                    continue
                raise RunInUseError(
                    f"run directory {path} is in use by another interp process (pid {pid})"
                ) from None
        except OSError as e:
            if e.errno not in _NO_FLOCK:
                os.close(fd)
                raise
            # a file system without flock (some network mounts): work unlocked, as before locks
        except BaseException:
            os.close(fd)
            raise
        if not _same_file(fd, path / LOCK):  # the folder was replaced while we waited
            os.close(fd)
            continue
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except OSError as e:  # a full disk: the line names the lock file
            os.close(fd)
            raise OSError(e.errno, e.strerror, str(path / LOCK)) from None
        held = HeldRun(path, fd, os.getpid(), hint)
        _HELD[key] = held
        return held


def in_use_by(path: Path) -> str | None:
    """The pid (as text) of another process holding ``path``'s lock, else None.  A probe: it
    takes a shared lock for an instant and writes nothing."""
    import fcntl

    path = Path(path)
    if holds(path) or not (path / LOCK).is_file() or is_link(path / LOCK):
        return None
    try:
        fd = os.open(path / LOCK, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return _holder_pid(fd)
    except OSError:
        return None
    finally:
        os.close(fd)  # closing releases the probe's shared lock
    return None


def _drop(key: str) -> None:
    held = _HELD.pop(key, None)
    if held is not None and held.pid == os.getpid():
        try:
            os.close(held.fd)
        except OSError:
            pass


def release_run(path: Path) -> None:
    """Release this process's lock on ``path`` (nothing if it holds none)."""
    _drop(_key(path))


def release_all() -> None:
    """Release every run lock this process holds (the CLI calls this when a command ends)."""
    for key in list(_HELD):
        _drop(key)


def held_runs() -> list[HeldRun]:
    """The run directories this process is working on, oldest first."""
    return [h for h in _HELD.values() if h.pid == os.getpid()]


def _forget_inherited() -> None:  # a forked child: its parent's locks are not its own
    for held in _HELD.values():
        try:
            os.close(held.fd)  # the parent's descriptor stays open: its lock is kept
        except OSError:
            pass
    _HELD.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_inherited)


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


# --------------------------------------------------------------------------- saved cells
# Sweeps save each finished cell (a model, a batched group) as one atomic JSON file and skip it
# on --resume.  A kill never leaves a malformed cell (atomic writes), so one that parses but
# holds the wrong content was edited or damaged by something else: it is refused with one line
# naming the file, not silently recomputed (that would hide the damage and destroy the file);
# deleting it is the one step that recomputes it.


class Num:
    """A finite number in ``[lo, hi]`` (an int or a float, never a bool); ``none``: or null."""

    def __init__(self, lo: float = -float("inf"), hi: float = float("inf"), none: bool = False):
        self.lo, self.hi, self.none = lo, hi, none

    def __repr__(self) -> str:
        bounds = (
            ""
            if self.lo == -float("inf") and self.hi == float("inf")
            else f" in [{self.lo:g}, {self.hi:g}]"
        )
        return f"a number{bounds}" + (" or null" if self.none else "")


class ListOf:
    def __init__(self, item: Any, length: int | None = None) -> None:
        self.item, self.length = item, length


class MapOf:
    """A JSON object with any (string) keys, every value of one shape."""

    def __init__(self, value: Any) -> None:
        self.value = value


class OneOf:
    def __init__(self, *values: Any) -> None:
        self.values = values


class ShapeError(ValueError):
    pass


def _describe(spec: Any) -> str:
    if spec is int:
        return "an integer"
    if spec is str:
        return "a string"
    if isinstance(spec, OneOf):
        return "one of " + ", ".join(repr(v) for v in spec.values)
    if isinstance(spec, ListOf):
        return "a list" + (f" of {spec.length}" if spec.length is not None else "")
    if isinstance(spec, dict | MapOf):
        return "an object"
    return repr(spec)


def check_shape(value: Any, spec: Any, where: str = "") -> None:
    """Raise :class:`ShapeError` (naming the field) unless ``value`` has the shape ``spec``:
    ``int``, ``str``, :class:`Num`, :class:`OneOf`, :class:`ListOf`, :class:`MapOf`, or a dict of
    required keys (other keys are allowed) to their shapes."""
    field = where or "the file"
    if spec is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif spec is str:
        ok = isinstance(value, str)
    elif isinstance(spec, Num):
        real = isinstance(value, int | float) and not isinstance(value, bool)
        ok = (value is None and spec.none) or (
            real and value == value and spec.lo <= value <= spec.hi  # NaN fails value == value
        )
    elif isinstance(spec, OneOf):
        ok = any(value == v and type(value) is type(v) for v in spec.values)
    elif isinstance(spec, ListOf):
        ok = isinstance(value, list) and (spec.length is None or len(value) == spec.length)
        if ok:
            for i, item in enumerate(value):
                check_shape(item, spec.item, f"{where}[{i}]")
    elif isinstance(spec, MapOf):
        ok = isinstance(value, dict)
        if ok:
            for key, item in value.items():
                check_shape(item, spec.value, f"{where}.{key}" if where else str(key))
    elif isinstance(spec, dict):
        ok = isinstance(value, dict)
        if ok:
            for key, sub in spec.items():
                if key not in value:
                    raise ShapeError(f"{field} has no {key!r}")
                check_shape(value[key], sub, f"{where}.{key}" if where else key)
    else:  # pragma: no cover - a bad spec is a bug
        raise TypeError(f"unknown shape {spec!r}")
    if not ok:
        shown = repr(value)
        shown = shown if len(shown) <= 40 else shown[:37] + "..."
        raise ShapeError(f"{field} is {shown}, not {_describe(spec)}")


RECOMPUTE = "delete it to recompute it on --resume"


def read_cell(
    path: Path,
    what: str,
    spec: Any,
    check: Callable[[Any], None] | None = None,
    remedy: str = RECOMPUTE,
) -> Any:
    """A saved cell read back and validated: its JSON parses, has the shape ``spec``, and passes
    ``check`` (which raises :class:`ShapeError`, say, for a cell of another grid point); else
    one line naming the file and ``remedy`` (:class:`~interp.errors.CorruptFileError`)."""
    cell = read_json(path, what)
    try:
        check_shape(cell, spec)
        if check is not None:
            check(cell)
    except ShapeError as e:
        raise CorruptFileError(f"{what} {path} is malformed ({e}); {remedy}") from None
    return cell
