"""Importing this package registers every reproduction (one module per finding)."""

from interp.reproductions import cope, precache  # noqa: F401  (registration: interp reproduce precache)
