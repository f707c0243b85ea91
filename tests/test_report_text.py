"""Report text a person reads: no Python or JSON reprs (``{'a': 1}``, ``["x"]``, ``None``) in
any report kind's visible text, tables included."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest

from interp.report.html import format_value, readable

REPRS = {
    "a dict repr": r"\{\s*['\"]",
    "a list repr": r"\[\s*['\"]",
    "None": r"\bNone\b",
    "a Python bool": r"\b(True|False)\b",
}


def visible_text(report: Path) -> str:
    text = report.read_text(encoding="utf-8")
    text = re.sub(r"<(script|style)\b.*?</\1>", " ", text, flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", " ", text))


def test_structured_values_read_as_text() -> None:
    assert readable({"blocks.0": None, "ln_final": 3}) == "blocks.0 none; ln_final 3"
    assert readable(["fp32", "bf16"]) == "fp32, bf16" and readable({}) == "none"
    assert format_value({"length": 4}) == "length 4"
    assert format_value(None) == "—"


@pytest.mark.parametrize(
    "kind", ["train", "probe", "collapse", "squash", "count", "grok", "pe-bench", "precache"]
)
def test_no_reprs_in_any_report(reports, kind: str) -> None:
    text = visible_text(reports[kind])
    found = {
        what: text[max(0, m.start() - 50) : m.end() + 50]
        for what, pattern in REPRS.items()
        if (m := re.search(pattern, text))
    }
    assert not found, f"{kind} report shows reprs: {found}"
