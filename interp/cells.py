"""The one cell store: sweeps save each finished cell as one atomic JSON file.

``RUN/cells/<key>.json`` holds one cell (a grid point, a seed, an encoding); a resumed sweep
skips the keys already there.  Cells trained together (a batched group) are saved behind a
pending marker ``RUN/cells/.pending.json`` listing their keys: a kill between two of the
group's saves leaves the marker, and the next start deletes the whole group so it is trained
again together (training a part of a group alone would give other numbers).

Every read checks what it reads (:func:`interp.runs.read_cell`): a cell that does not parse,
does not have the sweep's ``spec`` shape (:func:`interp.runs.check_shape`), or that its own
``check`` rejects, is refused with one line naming the file.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from interp.errors import InterpError
from interp.runs import ListOf, RunDir, ShapeError, read_cell

FOLDER = "cells"
PENDING = ".pending.json"
_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.=+-]{0,200}")

Check = Callable[[Mapping[str, Any]], str | None]  # None when fine, else what is wrong


def _keys_check(keys: list[str]) -> None:
    bad = next((k for k in keys if not _KEY.fullmatch(k)), None)
    if bad is not None:
        raise ShapeError(f"it names {bad!r}, not a cell key")


@dataclass(frozen=True)
class GroupMarker:
    """How the pending marker spells a group's keys (the default: the keys themselves; a sweep
    may spell them as grid points), its shape and its check (raises ShapeError)."""

    spec: Any = None
    encode: Callable[[list[str]], Any] = list
    decode: Callable[[Any], list[str]] = list
    check: Callable[[Any], None] = _keys_check


KEYS = GroupMarker(spec=ListOf(str))


class CellStore:
    """``run``'s cells: ``spec`` is the shape every cell must have, ``check`` a further test
    (None when fine, else what is wrong), ``identity(cell)`` the (key, label) a cell says it
    is (checked against its file name), ``what`` how errors name a cell, ``marker`` how a
    group in progress is marked."""

    def __init__(
        self,
        run: RunDir,
        check: Check | None = None,
        *,
        spec: Any = None,
        identity: Callable[[Mapping[str, Any]], tuple[str, str]] | None = None,
        what: str = "sweep cell",
        marker: GroupMarker = KEYS,
    ) -> None:
        self.run, self.check, self.what = run, check, what
        self.identity, self.marker = identity, marker
        self.spec = {} if spec is None else spec  # {}: any JSON object

    # ------------------------------------------------------------------ paths
    @staticmethod
    def _rel(key: str) -> str:
        if not _KEY.fullmatch(key):
            raise InterpError(f"bad cell key {key!r}")
        return f"{FOLDER}/{key}.json"

    def path(self, key: str) -> Path:
        return self.run.tree.path(self._rel(key))

    # ------------------------------------------------------------------ reads
    def has(self, key: str) -> bool:
        return self.path(key).is_file()

    def get(self, key: str, check: Check | None = None) -> dict[str, Any] | None:
        """The cell saved under ``key`` (None if there is none), checked by ``check`` (default:
        the store's)."""
        path = self.path(key)
        if not path.is_file():
            return None
        return self.read(path, check)

    def read(self, path: Path, extra: Check | None = None) -> dict[str, Any]:
        """The cell in ``path``, validated (``extra``: instead of the store's ``check``)."""
        own = extra if extra is not None else self.check

        def check(cell: Any) -> None:
            if self.identity is not None:
                key, label = self.identity(cell)
                if key != path.stem:
                    raise ShapeError(f"it holds the cell {label}, not {path.stem}")
            problem = own(cell) if own is not None else None
            if problem is not None:
                raise ShapeError(problem)

        return read_cell(path, self.what, self.spec, check)

    def keys(self) -> list[str]:
        folder = self.run.path / FOLDER
        if not folder.is_dir():
            return []
        return sorted(p.stem for p in folder.glob("*.json") if _KEY.fullmatch(p.stem))

    def missing(self, keys: Iterable[str]) -> list[str]:
        return [k for k in keys if not self.has(k)]

    # ------------------------------------------------------------------ writes
    def recover(self) -> list[str]:
        """Undo a group a kill left half-saved: delete its cells and the marker; returns the
        keys removed (they are trained again)."""
        marker = self.run.tree.path(f"{FOLDER}/{PENDING}")
        if not marker.is_file():
            return []
        keys = self.marker.decode(
            read_cell(
                marker,
                "sweep pending list",
                self.marker.spec,
                self.marker.check,
                remedy="it marks the group whose save was interrupted; delete it and that "
                "group's cells to recompute them, or start over with --overwrite",
            )
        )
        for key in keys:
            self.run.tree.remove(self._rel(key))
        self.run.tree.remove(f"{FOLDER}/{PENDING}")
        return keys

    def put(self, key: str, cell: Mapping[str, Any]) -> Path:
        return self.run.tree.write_json(self._rel(key), cell)

    def put_group(self, cells: Mapping[str, Mapping[str, Any]]) -> None:
        """Save cells trained together: all of them or (after a kill) none."""
        if len(cells) > 1:
            self.run.tree.write_json(f"{FOLDER}/{PENDING}", self.marker.encode(list(cells)))
        for key, cell in cells.items():
            self.put(key, cell)
        if len(cells) > 1:
            self.run.tree.remove(f"{FOLDER}/{PENDING}")


__all__ = ["KEYS", "CellStore", "Check", "GroupMarker"]
