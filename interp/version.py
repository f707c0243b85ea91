"""The package version (one place; ``interp/__init__`` and run directories read it)."""

__version__ = "0.1.0"
