"""Modules that register report sections for analyses; ``build_report`` imports them all.

An analysis adds its figures to reports by registering a section builder (see
``interp.report.sections.register_section``) in its own module and listing the module here.
"""

from __future__ import annotations

import importlib

SECTION_MODULES: tuple[str, ...] = ("interp.report.claims",)
SECTION_MODULES += ("interp.report.probe",)  # interp probe heatmaps
SECTION_MODULES += ("interp.report.pe_bench",)  # interp pe-bench tables and CoPE maps
SECTION_MODULES += ("interp.report.precache",)  # interp precache: myopic vs vanilla twins
SECTION_MODULES += ("interp.report.collapse",)  # interp collapse / squash curves


def load_plugins() -> None:
    for name in SECTION_MODULES:
        importlib.import_module(name)
