"""Importing this package registers every reproduction (one module per finding)."""

from interp.reproductions import collapse, cope, counting, grokking, precache  # noqa: F401
