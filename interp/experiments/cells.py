"""Moved to :mod:`interp.cells` (below the analyses, which use it); this name is kept while
branches written against it land."""

from interp.cells import KEYS, CellStore, Check, GroupMarker

__all__ = ["KEYS", "CellStore", "Check", "GroupMarker"]
