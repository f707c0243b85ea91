"""Self-contained, offline HTML reports built from :class:`Section` objects.

The page embeds plotly.js exactly once (inline, at the end of ``<body>``); every figure is
stored as a JSON blob in a ``<script type="application/json">`` tag next to its ``<div>``,
and one small loader script draws them all.  Nothing is fetched from the network: no CDN,
no web fonts, no MathJax.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from interp.io import atomic_write_text

__all__ = ["PLOT_CONFIG", "Section", "render_html", "write_report"]

#: Config passed to ``Plotly.newPlot`` for every figure.
PLOT_CONFIG: dict[str, Any] = {
    "displaylogo": False,
    "responsive": True,
    "toImageButtonOptions": {"format": "png", "scale": 2},
}

_MAX_CELL_CHARS = 400


@dataclass(frozen=True)
class Section:
    """One card of a report.

    ``text`` is plain text (it is HTML-escaped); a blank line starts a new paragraph.
    ``table`` rows become an HTML table whose columns are the union of the rows' keys, in
    order of first appearance.  ``notes`` are short caveats shown under the figures.
    ``verdict`` is the section's finding in one sentence: shown first in the card and listed
    on the report's first screen ("Findings"), linked to the card.  ``banner`` is a warning
    shown above everything (an incomplete run).
    """

    title: str
    figures: tuple[go.Figure, ...] = ()
    text: str = ""
    table: tuple[dict[str, Any], ...] = ()
    notes: tuple[str, ...] = ()
    verdict: str = ""


# --------------------------------------------------------------------------- formatting


def readable(value: Any) -> str:
    """Structured values as text a person reads: ``{"a": 1, "b": None}`` -> ``a 1, b none``,
    lists -> ``x, y, z``, empty -> ``none`` (never a Python or JSON repr)."""
    if value is None:
        return "none"
    if isinstance(value, Mapping):
        if not value:
            return "none"
        return "; ".join(f"{k} {readable(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(readable(v) for v in value) if value else "none"
    if isinstance(value, float):
        return format_value(value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def format_value(value: Any) -> str:
    """A short human-readable string for a table cell or meta entry (not yet escaped)."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        if value != 0 and (abs(value) >= 1e6 or abs(value) < 1e-4):
            return f"{value:.4g}"
        return f"{value:.6g}"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        text = value
    elif isinstance(value, Mapping | list | tuple):
        text = readable(value)
    else:
        text = str(value)
    if len(text) > _MAX_CELL_CHARS:
        text = text[: _MAX_CELL_CHARS - 1] + "…"
    return text


def _slug(text: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:40] or "section"


def _paragraphs(text: str) -> str:
    parts = [p.strip() for p in re.split(r"\n\s*\n", text.strip()) if p.strip()]
    return "".join(
        "<p>" + "<br>".join(escape(line) for line in p.splitlines()) + "</p>" for p in parts
    )


def _is_numeric(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _render_table(rows: Sequence[Mapping[str, Any]]) -> str:
    columns: list[str] = []
    for row in rows:
        for key in row:
            if key not in columns:
                columns.append(key)
    if not columns:
        return ""
    head = "".join(f"<th>{escape(str(c))}</th>" for c in columns)
    body = []
    for row in rows:
        cells = []
        for c in columns:
            v = row.get(c)
            cls = ' class="num"' if _is_numeric(v) else ""
            cells.append(f"<td{cls}>{escape(format_value(v))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (
        '<div class="table-wrap"><table><thead><tr>'
        + head
        + "</tr></thead><tbody>"
        + "".join(body)
        + "</tbody></table></div>"
    )


def _figure_json(fig: go.Figure) -> str:
    """Figure JSON that is safe inside a ``<script>`` element (``<``, ``>``, ``&`` escaped)."""
    text = fig.to_json(validate=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _render_figures(figures: Sequence[go.Figure], sid: str) -> tuple[str, list[str]]:
    """HTML for a section's figures, plus notes for figures that could not be serialised."""
    parts: list[str] = []
    errors: list[str] = []
    for j, fig in enumerate(figures):
        fid = f"{sid}-fig{j + 1}"
        try:
            payload = _figure_json(fig)
        except Exception as e:  # a broken figure must not break the whole page
            errors.append(f"figure {j + 1} could not be rendered: {type(e).__name__}: {e}")
            continue
        parts.append(
            f'<div class="fig"><div class="plot" id="{fid}"></div>'
            f'<script type="application/json" class="fig-data" data-target="{fid}">'
            f"{payload}</script></div>"
        )
    return "".join(parts), errors


def _render_section(section: Section, sid: str) -> str:
    figs_html, fig_errors = _render_figures(section.figures, sid)
    out = [f'<section class="card" id="{sid}"><h2>{escape(section.title)}</h2>']
    if section.verdict:
        out.append(f'<p class="verdict">{escape(section.verdict)}</p>')
    if section.text:
        out.append(f'<div class="text">{_paragraphs(section.text)}</div>')
    if figs_html:
        out.append(f'<div class="figs">{figs_html}</div>')
    if section.table:
        out.append(_render_table(section.table))
    notes = [*section.notes, *fig_errors]
    if notes:
        items = "".join(f"<li>{escape(str(n))}</li>" for n in notes)
        out.append(f'<ul class="notes">{items}</ul>')
    out.append("</section>")
    return "".join(out)


def _render_meta(meta: Mapping[str, Any]) -> str:
    items = "".join(
        f"<div><dt>{escape(str(k))}</dt><dd>{escape(format_value(v))}</dd></div>"
        for k, v in meta.items()
        if v is not None and v != ""
    )
    return f'<dl class="meta">{items}</dl>' if items else ""


# --------------------------------------------------------------------------- page

_CSS = """
.banner{background:#fff4e5;border:1px solid #f0b35a;border-radius:8px;padding:10px 14px;margin:12px 0;font-weight:600}
.findings{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:10px 18px;margin:14px 0}
.findings h2{font-size:1.05rem;margin:4px 0 6px}.findings li{margin:4px 0}
.verdict{font-weight:600;margin:4px 0 10px}
:root{--bg:#f5f6f8;--card:#fff;--fg:#1f2328;--muted:#656d76;--line:#e3e6ea;--accent:#2563eb;
--note:#fff8e6;--note-line:#f0c36d}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);line-height:1.5;font-size:15px;
font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,"Noto Sans",sans-serif}
.wrap{max-width:1100px;margin:0 auto;padding:24px 16px 48px}
header h1{margin:0 0 12px;font-size:1.6rem;font-weight:650;letter-spacing:-.01em}
.meta{display:grid;grid-template-columns:repeat(auto-fill,minmax(170px,1fr));gap:8px;margin:0}
.meta div{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:6px 10px;
min-width:0}
.meta dt{font-size:.72rem;text-transform:uppercase;letter-spacing:.04em;color:var(--muted)}
.meta dd{margin:0;font-weight:550;overflow-wrap:anywhere}
nav.toc{margin:16px 0;font-size:.9rem}
nav.toc ol{list-style:none;display:flex;flex-wrap:wrap;gap:6px;margin:0;padding:0}
nav.toc a{display:block;padding:3px 10px;border-radius:999px;background:var(--card);
border:1px solid var(--line);color:var(--accent);text-decoration:none}
nav.toc a:hover{border-color:var(--accent)}
.card{background:var(--card);border:1px solid var(--line);border-radius:12px;padding:16px 20px;
margin:16px 0;box-shadow:0 1px 2px rgba(0,0,0,.04);scroll-margin-top:12px}
.card h2{margin:0 0 8px;font-size:1.2rem;font-weight:620}
.text p{margin:0 0 8px;max-width:75ch;color:#333}
.fig{margin:8px 0;min-width:0}
.plot{width:100%;min-height:120px}
.plot-error{color:#b42318;font-size:.85rem}
.table-wrap{overflow-x:auto;margin:8px 0}
table{border-collapse:collapse;font-size:.86rem;min-width:50%}
th,td{padding:4px 10px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
th{background:#f0f2f5;font-weight:600}
td.num{text-align:right;font-variant-numeric:tabular-nums}
tbody tr:hover{background:#f8f9fb}
.notes{margin:8px 0 0;padding:8px 12px 8px 28px;background:var(--note);
border-left:3px solid var(--note-line);border-radius:6px;font-size:.84rem;color:#5c4813}
footer{color:var(--muted);font-size:.8rem;text-align:center;margin-top:24px}
@media print{body{background:#fff}.card{box-shadow:none;break-inside:avoid}nav.toc{display:none}}
"""

_LOADER = """
(function(){
  var config = %s;
  document.querySelectorAll('script.fig-data').forEach(function(el){
    var div = document.getElementById(el.dataset.target);
    try {
      var fig = JSON.parse(el.textContent);
      Plotly.newPlot(div, fig.data || [], fig.layout || {}, config);
    } catch (err) {
      div.className = 'plot plot-error';
      div.textContent = 'figure failed to render: ' + err;
    }
  });
})();
"""


def _render_findings(sections: Sequence[Section], sids: Sequence[str]) -> str:
    items = "".join(
        f'<li><a href="#{sid}">{escape(s.title)}</a>: {escape(s.verdict)}</li>'
        for sid, s in zip(sids, sections, strict=True)
        if s.verdict
    )
    return f'<section class="findings"><h2>Findings</h2><ul>{items}</ul></section>' if items else ""


def render_html(
    title: str,
    sections: Sequence[Section],
    meta: Mapping[str, Any] | None = None,
    banner: str = "",
) -> str:
    """Render a complete, self-contained HTML page (plotly.js inlined once): the header, a
    ``banner`` warning if any, the findings (each section's verdict), contents, sections."""
    sids = [f"s{i + 1}-{_slug(s.title)}" for i, s in enumerate(sections)]
    toc = "".join(
        f'<li><a href="#{sid}">{escape(s.title)}</a></li>'
        for sid, s in zip(sids, sections, strict=True)
    )
    body = "".join(_render_section(s, sid) for sid, s in zip(sids, sections, strict=True))
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    loader = _LOADER % json.dumps(PLOT_CONFIG)
    return "".join(
        [
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>",
            f'<div class="wrap"><header><h1>{escape(title)}</h1>',
            _render_meta(meta or {}),
            "</header>",
            f'<div class="banner" role="alert">{escape(banner)}</div>' if banner else "",
            _render_findings(sections, sids),
            f'<nav class="toc" aria-label="Contents"><ol>{toc}</ol></nav>' if sections else "",
            f"<main>{body}</main>",
            f"<footer>Generated {generated} by interp · self-contained, works offline</footer>",
            "</div>",
            # MathJax is never loaded; tell plotly.js not to look for it.
            "<script>window.PlotlyConfig = {MathJaxConfig: 'local'};</script>",
            f'<script type="text/javascript">{get_plotlyjs()}</script>',
            f"<script>{loader}</script>",
            "</body></html>\n",
        ]
    )


def write_report(
    path: Path,
    title: str,
    sections: Sequence[Section],
    meta: Mapping[str, Any] | None = None,
) -> Path:
    """Render the report and write it to ``path`` atomically; returns the path."""
    return atomic_write_text(Path(path), render_html(title, sections, meta))
