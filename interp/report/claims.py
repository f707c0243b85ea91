"""Report section for ``interp reproduce``: the claims table (paper vs ours, pass/fail)."""

from __future__ import annotations

from interp.report.html import Section
from interp.report.sections import RunView, register_section


@register_section("claims", order=5)
def claims_section(run: RunView) -> Section | None:
    claims = run.read_json("claims.json")
    if not claims:
        return None
    rows = []
    for c in claims:
        verdict = {True: "pass", False: "FAIL", None: "reported"}[c.get("passed")]
        rows.append(
            {
                "claim": c.get("claim"),
                "paper": c.get("paper"),
                "ours": c.get("ours"),
                "verdict": verdict,
            }
        )
    n_pass = sum(1 for c in claims if c.get("passed") is True)
    n_judged = sum(1 for c in claims if c.get("passed") is not None)
    return Section(
        title="Claims: the paper beside this reproduction",
        text=f"{n_pass} of {n_judged} qualitative claims hold in this scaled-down reproduction.",
        table=tuple(rows),
    )
