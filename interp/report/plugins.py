"""The report's section modules, found by listing the package: ``build_report`` imports them all.

An analysis adds its figures to reports by registering a section builder
(:func:`interp.report.sections.register_section` or ``register_results_section``) in its own
module ``interp/report/NAME.py``; nothing else lists it.  The modules that hold the machinery
(:data:`MACHINERY`) register no section.
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

MACHINERY = frozenset({"figures", "html", "plugins", "sections", "tables"})


def section_modules() -> tuple[str, ...]:
    """Every module of ``interp.report`` that may register sections, by name."""
    here = [str(Path(__file__).parent)]
    names = sorted(m.name for m in pkgutil.iter_modules(here) if not m.ispkg)
    return tuple(f"interp.report.{n}" for n in names if n not in MACHINERY and n[0] != "_")


SECTION_MODULES: tuple[str, ...] = section_modules()


def load_plugins() -> None:
    for name in SECTION_MODULES:
        importlib.import_module(name)
