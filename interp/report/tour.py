"""Report section for ``interp demo``: the tour's steps (what each ran, how long it took) and
the default model's training curves.  Each step's finding is its own section's verdict, listed
on the report's first screen ("Findings") and linked to that section."""

from __future__ import annotations

from pathlib import Path

from interp.errors import InterpError
from interp.report import figures
from interp.report.html import Section
from interp.report.sections import RunView, load_run_view, register_section


@register_section("tour", order=2)
def tour_section(run: RunView) -> Section | None:
    if run.config.get("kind") != "demo":
        return None
    results = run.read_json("results.json")
    if not isinstance(results, dict):
        return None
    rows = [
        {
            "step": s.get("name"),
            "experiment": s.get("kind"),
            "what": s.get("title"),
            "wall seconds": s.get("seconds"),
            "CPU seconds": s.get("cpu_seconds"),
            "this time": "reused" if s.get("reused") else "ran",
            "sub-run": s.get("run"),
        }
        for s in results.get("steps", [])
    ]
    model = str(results.get("model", ""))
    figs, notes = [], []
    try:
        view = load_run_view(Path(model))
        if view.metrics:
            figs.append(figures.loss_curves(view.metrics))
    except InterpError as e:  # the cached model was removed since: the rest still reads
        notes.append(f"the model's training curves are not shown: {e}")
    text = (
        "The tour runs one small example of each finding, each an experiment of its own in a "
        "sub-run of this run (the same command continues a stopped tour and reuses finished "
        "steps). The findings above are each experiment's own sentence, guarded by its "
        "baseline; the settings are small, so a sentence may honestly say inconclusive."
    )
    if results.get("model_summary"):
        text += f"\n\nModel: {results['model_summary']}."
    return Section(
        title="The tour", figures=tuple(figs), text=text, table=tuple(rows), notes=tuple(notes)
    )
