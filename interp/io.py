"""Crash-safe file I/O: every artifact is written to a temporary file, fsynced, then renamed.

A reader therefore sees either the old complete file or the new complete file, never a
truncated one.  ``metrics.jsonl`` is appended line by line; a torn last line (from a kill
mid-append) is ignored on reading and dropped before the next append.
"""

from __future__ import annotations

import json
import math
import os
import stat
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


# Limits on what a reader accepts (interp's own files stay far below them): a deeper structure,
# a longer integer or a larger file is someone else's hostile or broken file, refused in one line
# before anything recurses over it or converts it.
MAX_JSON_DEPTH = 100  # nesting levels (json itself gives up near sys.getrecursionlimit())
MAX_JSON_INT_DIGITS = 100  # digits of one integer literal (float() of it always works)
MAX_JSON_BYTES = 512 * 2**20  # size of one JSON file


class JSONContentError(ValueError):
    """Text that is not acceptable JSON; the message is a short reason (no file name).
    ``syntax`` is true for invalid syntax (what a torn, half-written line looks like)."""

    def __init__(self, reason: str, syntax: bool = False) -> None:
        super().__init__(reason)
        self.syntax = syntax


def _parse_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_JSON_INT_DIGITS:
        raise JSONContentError(f"an integer has more than {MAX_JSON_INT_DIGITS} digits")
    return int(text)


def _too_deep(obj: Any) -> bool:
    """True when ``obj`` nests lists/objects deeper than :data:`MAX_JSON_DEPTH` (no recursion)."""
    stack = [(obj, 1)]
    while stack:
        cur, depth = stack.pop()
        children = cur.values() if isinstance(cur, dict) else cur if isinstance(cur, list) else ()
        for child in children:
            if isinstance(child, dict | list):
                if depth + 1 > MAX_JSON_DEPTH:
                    return True
                stack.append((child, depth + 1))
    return False


def loads_json(text: str | bytes) -> Any:
    """``json.loads`` that turns every malformed input into :class:`JSONContentError` with a
    one-line reason: invalid syntax, nesting deeper than :data:`MAX_JSON_DEPTH` (json's own
    ``RecursionError``), integers longer than :data:`MAX_JSON_INT_DIGITS` digits."""
    try:
        obj = json.loads(text, parse_int=_parse_int)
    except JSONContentError:
        raise
    except json.JSONDecodeError as e:
        raise JSONContentError(f"{e.msg} at line {e.lineno} column {e.colno}", True) from None
    except RecursionError:
        raise JSONContentError(f"nested deeper than {MAX_JSON_DEPTH} levels") from None
    except UnicodeDecodeError as e:
        raise JSONContentError(f"not UTF-8 text ({e.reason} at byte {e.start})") from None
    except (ValueError, MemoryError) as e:  # e.g. the digit limit of int() on a huge exponent
        reason = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
        raise JSONContentError(reason) from None
    if _too_deep(obj):
        raise JSONContentError(f"nested deeper than {MAX_JSON_DEPTH} levels")
    return obj


def read_regular_file(path: str | os.PathLike, limit: int | None, what: str = "file") -> bytes:
    """The bytes of ``path``, a regular file (or a link to one) of at most ``limit`` bytes.

    Opened non-blocking and checked with ``fstat`` on the open descriptor, so a FIFO, a device
    (``/dev/zero``) or a socket, or a link to one, is refused at once instead of hanging or
    reading for ever; a larger file is refused after reading ``limit + 1`` bytes at most."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise LoadError(f"{what} not found: {path}") from None
    try:
        regular = stat.S_ISREG(os.fstat(fd).st_mode)
    except OSError:
        os.close(fd)
        raise
    if not regular:
        os.close(fd)
        raise CorruptFileError(f"{what} {path} is not a regular file")
    with os.fdopen(fd, "rb", buffering=0) as f:
        if limit is None:
            return f.readall()
        chunks, total = [], 0
        while total <= limit:  # read(n) allocates n bytes up front: ask for what is left only
            chunk = f.read(min(_CHUNK, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
    if total > limit:
        raise CorruptFileError(f"{what} {path} is larger than {limit:,} bytes")
    return b"".join(chunks)


_CHUNK = 2**20


def read_json(path: str | os.PathLike, what: str = "JSON file") -> Any:
    """Parse a JSON file; any malformed content is one :class:`CorruptFileError` naming it."""
    path = Path(path)
    if not path.exists():
        raise LoadError(f"{what} not found: {path}")
    data = read_regular_file(path, MAX_JSON_BYTES, what)
    try:
        return loads_json(data.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise CorruptFileError(f"{what} {path} is not valid JSON (not UTF-8 text)") from e
    except JSONContentError as e:
        raise CorruptFileError(f"{what} {path} is not valid JSON ({e})") from e


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
    """Read a JSON-lines file; a torn (unterminated) last line is skipped.  A line that is not
    a JSON object (or nests too deep, or holds a huge integer) is one :class:`CorruptFileError`
    naming the file and the line.  A path that is not a regular file reads as no rows."""
    path = Path(path)
    if not path.is_file():
        return []
    try:
        data = read_regular_file(path, None, "JSON-lines file")
    except LoadError:  # vanished, or swapped for a FIFO/device since the check
        return []
    lines = data.decode("utf-8", errors="replace").split("\n")
    rows: list[dict[str, Any]] = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            row = loads_json(line)
        except JSONContentError as e:
            if i == len(lines) - 1 and e.syntax:
                break  # torn tail from a kill mid-write
            raise CorruptFileError(f"{path} line {i + 1} is not valid JSON ({e})") from e
        if not isinstance(row, dict):
            raise CorruptFileError(
                f"{path} line {i + 1} is not a JSON object (got {type(row).__name__})"
            )
        rows.append(row)
    return rows


def truncate_jsonl(path: str | os.PathLike, keep: Any) -> None:
    """Rewrite a JSON-lines file keeping only rows for which ``keep(row)`` is true (atomic)."""
    path = Path(path)
    rows = [r for r in read_jsonl(path) if keep(r)]
    atomic_write_text(path, "".join(dumps_json(r, indent=None) + "\n" for r in rows))
