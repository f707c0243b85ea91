"""Crash-safe file I/O: every artifact is written to a temporary file, fsynced, then renamed.

A reader therefore sees either the old complete file or the new complete file, never a
truncated one.  ``metrics.jsonl`` is appended line by line; a torn last line (from a kill
mid-append) is ignored on reading and dropped before the next append.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch

from interp.errors import CorruptFileError, LoadError


def fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~_umask()


def _named(e: OSError, path: Path) -> OSError:
    """``e`` naming ``path`` (a failed write or fsync names no file: a full disk would be a line
    that says neither what nor where)."""
    if e.filename is not None:
        return e
    named = OSError(e.errno, e.strerror or str(e), str(path))  # the errno's own subclass
    named.__cause__ = e
    return named


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temp file in the same folder, fsync, rename).

    The temporary file (``.NAME.XXXX.tmp``) is ``flock``-ed while it is written, so that
    :func:`remove_write_debris` can tell a live write from the leftover of a killed one."""
    import fcntl

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # a new file: never blocks
        os.fchmod(fd, _FILE_MODE)  # mkstemp makes 0600 files; use the usual mode
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
            os.replace(tmp, path)  # renamed while still locked (the lock goes with the inode)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise _named(e, path) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
    return path


def remove_write_debris(folder: str | os.PathLike, name: str) -> None:
    """Delete the temporary files that killed atomic writes of ``folder/name`` left behind
    (``.NAME.XXXX.tmp``); one that another process is writing right now (locked) is kept.
    Links are never followed (a planted link is unlinked, its target untouched)."""
    import fcntl
    import stat

    folder = Path(folder)
    try:
        entries = list(folder.glob(f".{glob_escape(name)}.*.tmp"))
    except OSError:
        return
    for tmp in entries:
        try:
            mode = os.lstat(tmp).st_mode
        except OSError:
            continue
        if stat.S_ISLNK(mode):
            tmp.unlink(missing_ok=True)
            continue
        if not stat.S_ISREG(mode):
            continue
        try:
            fd = os.open(tmp, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            continue  # a live write (or an odd file system): leave it
        else:
            st = os.fstat(fd)
            if st.st_size == 0 and time.time() - st.st_mtime < 5:
                continue  # maybe a write in the instant between its mkstemp and its flock
            if os.path.exists(tmp) and os.path.samestat(st, os.lstat(tmp)):
                tmp.unlink(missing_ok=True)
        finally:
            os.close(fd)


def glob_escape(text: str) -> str:
    import glob

    return glob.escape(text)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def _json_default(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "tolist"):  # numpy arrays and scalars
        return obj.tolist()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def _finite(obj: Any) -> Any:
    """Replace non-finite floats by None so the JSON stays standard (NaN is not JSON)."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, Mapping):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    return obj


def dumps_json(obj: Any, indent: int | None = 2) -> str:
    obj = json.loads(json.dumps(obj, default=_json_default))  # normalise tensors/paths first
    return json.dumps(_finite(obj), indent=indent, allow_nan=False, sort_keys=False)


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    return atomic_write_text(path, dumps_json(obj) + "\n")


def read_json(path: str | os.PathLike, what: str = "JSON file") -> Any:
    path = Path(path)
    if not path.is_file():
        raise LoadError(f"{what} not found: {path}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CorruptFileError(
            f"{what} {path} is not valid JSON ({e.__class__.__name__}: {e})"
        ) from e


def append_jsonl(path: str | os.PathLike, rows: Iterable[Mapping[str, Any]]) -> None:
    """Append rows to a JSON-lines file, each flushed and fsynced; repairs a torn last line first."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _drop_torn_tail(path)
    try:
        with open(path, "a", encoding="utf-8") as f:
            for row in rows:
                f.write(dumps_json(row, indent=None) + "\n")
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        raise _named(e, path) from None


def _drop_torn_tail(path: Path) -> None:
    """Drop an unterminated last line (a kill mid-append); reads one byte unless there is one."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            if f.tell() == 0:
                return
            f.seek(-1, os.SEEK_END)
            if f.read(1) == b"\n":
                return
    except FileNotFoundError:
        return
    data = path.read_bytes()
    keep = data[: data.rfind(b"\n") + 1]
    atomic_write_bytes(path, keep)


def read_jsonl(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Read a JSON-lines file; a torn (unterminated) last line is skipped."""
    path = Path(path)
    if not path.is_file():
        return []
    rows: list[dict[str, Any]] = []
    lines = path.read_text(encoding="utf-8", errors="replace").split("\n")
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as e:
            if i == len(lines) - 1:  # torn tail from a kill mid-write
                break
            raise CorruptFileError(f"{path} line {i + 1} is not valid JSON") from e
    return rows


def truncate_jsonl(path: str | os.PathLike, keep: Any) -> None:
    """Rewrite a JSON-lines file keeping only rows for which ``keep(row)`` is true (atomic)."""
    path = Path(path)
    rows = [r for r in read_jsonl(path) if keep(r)]
    atomic_write_text(path, "".join(dumps_json(r, indent=None) + "\n" for r in rows))
