"""The one cell store: sweeps save each finished cell as one atomic JSON file.

``RUN/cells/<key>.json`` holds one cell (a grid point, a seed, an encoding); a resumed sweep
skips the keys already there.  Cells trained together (a batched group) are saved behind a
pending marker ``RUN/cells/.pending.json`` listing their keys: a kill between two of the
group's saves leaves the marker, and the next start deletes the whole group so it is trained
again together (training a part of a group alone would give other numbers).

Every read checks what it reads (:func:`interp.runs.read_cell`): a cell that is not a JSON
object, does not have the sweep's ``spec`` shape, or that the sweep's own ``check`` rejects, is
refused with one line naming the file.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from interp.errors import CorruptFileError, InterpError
from interp.io import read_json
from interp.runs import RunDir, ShapeError, read_cell

FOLDER = "cells"
PENDING = ".pending.json"
_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.=+-]{0,200}")

Check = Callable[[Mapping[str, Any]], str | None]  # None when fine, else what is wrong


class CellStore:
    """``spec``: the shape every cell has (:func:`interp.runs.check_shape`; default: an
    object); ``check``: what the sweep checks beyond it (say, the grid point a key stands for)."""

    def __init__(self, run: RunDir, check: Check | None = None, spec: Any = None) -> None:
        self.run = run
        self.check = check
        self.spec = {} if spec is None else spec

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
        check = check if check is not None else self.check

        def problem(cell: Any) -> None:
            found = check(cell) if check is not None else None
            if found is not None:
                raise ShapeError(found)

        return read_cell(path, "sweep cell", self.spec, problem)

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
        keys = read_json(marker, "sweep pending list")
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
            raise CorruptFileError(
                f"sweep pending list {marker} is not a list of cell keys; delete it and the "
                "cells of the group it named"
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
            self.run.tree.write_json(f"{FOLDER}/{PENDING}", list(cells))
        for key, cell in cells.items():
            self.put(key, cell)
        if len(cells) > 1:
            self.run.tree.remove(f"{FOLDER}/{PENDING}")


__all__ = ["CellStore", "Check"]
