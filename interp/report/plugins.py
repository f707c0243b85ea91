"""Modules that register report sections for analyses; ``build_report`` imports them all.

An analysis adds its figures to reports by registering a section builder (see
``interp.report.sections.register_section``) in its own module and listing the module here.
"""

from __future__ import annotations

import importlib

SECTION_MODULES: tuple[str, ...] = (
    "interp.report.claims",  # interp reproduce: paper vs ours
    "interp.report.tour",  # interp demo: the tour's steps
    "interp.report.probe",  # interp probe heatmaps
    "interp.report.precache",  # interp precache: myopic vs vanilla twins
    "interp.report.collapse",  # interp collapse / squash curves
    "interp.report.counting",  # interp count: accuracy vs m, m_thr vs d
    "interp.report.pe_bench",  # interp pe-bench tables and CoPE maps
    "interp.report.grok",  # interp grok: curves, spectra, circle, phases
)


def load_plugins() -> None:
    for name in SECTION_MODULES:
        importlib.import_module(name)
