"""Run locks: ``fcntl.flock`` on ``RUN/.interp-lock``, held by the process working on a run
for the life of the work (see :mod:`interp.runs` for how runs use them): re-entrant within a
process, dropped in forked children, released by the kernel when the process dies; a second
process is refused with one line naming the holder's pid, or waits for it."""

from __future__ import annotations

import errno
import os
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from interp.errors import InterpError
from interp.safefs import Tree, UnsafePathError, is_link

LOCK = ".interp-lock"  # the advisory lock of the process working on a run (see the docstring)
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
