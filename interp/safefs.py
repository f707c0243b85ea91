"""The one safe-write layer: every file interp writes or deletes goes through a :class:`Tree`.

A tree is a directory interp owns (a run directory, an output folder).  Paths inside it are
given relative to its root and checked component by component before any write, rename or
delete: a symbolic link anywhere below the root is refused with one line, so nothing planted
in a folder (``RUN/checkpoints -> ~/thesis``) can redirect a write or a delete outside it.  The
root itself may be a link: the user named it.

Deletes never follow links (a link is unlinked, a directory is removed with ``shutil.rmtree``,
which does not descend into links), and ``--overwrite`` deletes only a directory that carries
interp's own marker file (:data:`MARKER`), never a folder that merely has a ``config.json``.
"""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePath
from typing import Any

from interp.errors import InterpError

MARKER = ".interp-run"  # written first into every directory interp creates as a run


class UnsafePathError(InterpError):
    """A write or delete would go through a symbolic link or leave its tree."""


def _relative(rel: str | os.PathLike) -> PurePath:
    rel = PurePath(rel)
    if rel.is_absolute() or ".." in rel.parts:
        raise UnsafePathError(f"path {str(rel)!r} is not inside the output directory")
    return rel


def is_link(path: Path) -> bool:
    try:
        return stat.S_ISLNK(os.lstat(path).st_mode)
    except OSError:
        return False


class Tree:
    """A directory interp writes into, with every path below its root checked."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"Tree({str(self.root)!r})"

    # ------------------------------------------------------------------ checks
    def path(self, rel: str | os.PathLike = ".") -> Path:
        """``root/rel``, refusing any symbolic link between the root and the target (inclusive)."""
        cur = self.root
        for part in _relative(rel).parts:
            if part == ".":
                continue
            cur = cur / part
            if is_link(cur):
                raise UnsafePathError(
                    f"refusing to write through the symbolic link {cur} "
                    f"(it may lead outside {self.root})"
                )
        return cur

    def rel(self, path: str | os.PathLike) -> PurePath:
        """``path`` relative to the root (it must lie lexically below it)."""
        path = Path(os.path.abspath(path))
        root = Path(os.path.abspath(self.root))
        try:
            return path.relative_to(root)
        except ValueError:
            raise UnsafePathError(f"{path} is outside the output directory {root}") from None

    def check(self, rels: Iterable[str | os.PathLike]) -> None:
        """Refuse now (before any work) if any of ``rels`` would be written through a link."""
        for rel in rels:
            self.path(rel)

    def sub(self, rel: str | os.PathLike) -> Tree:
        """The tree rooted at ``root/rel`` (checked; the sub-root may not be a link)."""
        return Tree(self.path(rel))

    # ------------------------------------------------------------------ writes
    def mkdir(self, rel: str | os.PathLike = ".") -> Path:
        target = self.path(rel)
        cur = self.root
        self.root.mkdir(parents=True, exist_ok=True)
        for part in _relative(rel).parts:
            if part == ".":
                continue
            cur = cur / part
            try:
                cur.mkdir()
            except FileExistsError:
                if is_link(cur) or not cur.is_dir():
                    raise UnsafePathError(f"{cur} exists and is not a directory") from None
        return target

    def write_bytes(self, rel: str | os.PathLike, data: bytes) -> Path:
        from interp.io import atomic_write_bytes

        target = self.path(rel)
        self.mkdir(PurePath(rel).parent)
        return atomic_write_bytes(target, data)

    def write_text(self, rel: str | os.PathLike, text: str) -> Path:
        return self.write_bytes(rel, text.encode("utf-8"))

    def write_json(self, rel: str | os.PathLike, obj: Any) -> Path:
        from interp.io import dumps_json

        return self.write_text(rel, dumps_json(obj) + "\n")

    def append_jsonl(self, rel: str | os.PathLike, rows: Iterable[Mapping[str, Any]]) -> None:
        from interp.io import append_jsonl

        target = self.path(rel)
        self.mkdir(PurePath(rel).parent)
        append_jsonl(target, rows)

    def rename(self, src: str | os.PathLike, dst: str | os.PathLike) -> Path:
        source, target = self.path(src), self.path(dst)
        self.mkdir(PurePath(dst).parent)
        os.replace(source, target)
        from interp.io import fsync_dir

        fsync_dir(target.parent)
        return target

    def remove(self, rel: str | os.PathLike) -> None:
        """Delete ``rel`` (file or directory) without following links; absent is fine."""
        parent = self.path(PurePath(rel).parent)
        target = parent / PurePath(rel).name
        remove_path(target)


def remove_path(target: Path) -> None:
    """Delete one path without following links: a link is unlinked, a directory is removed
    with ``shutil.rmtree`` (which unlinks the links inside it, never their targets)."""
    try:
        mode = os.lstat(target).st_mode
    except FileNotFoundError:
        return
    if stat.S_ISDIR(mode):
        shutil.rmtree(target, ignore_errors=True)
    else:
        target.unlink(missing_ok=True)


def has_marker(path: Path) -> bool:
    """True for a directory that carries interp's marker file, a regular file (a run interp
    created).  ``path`` itself may be a link: replacing it removes the link, not its target."""
    try:
        return stat.S_ISREG(os.lstat(Path(path) / MARKER).st_mode)
    except OSError:
        return False


__all__ = ["MARKER", "Tree", "UnsafePathError", "has_marker", "is_link", "remove_path"]
