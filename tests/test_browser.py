"""Every report kind, opened in headless Chromium: no console errors, every figure drawn with
data, and a screenshot.  Skips (with the reason) where no Chromium is installed.

A copy of each report gets a first ``<script>`` that records ``window.onerror``, unhandled
rejections and ``console.error``, and, after ``load``, writes a JSON summary of every figure
(``.main-svg`` count, traces and calc points from Plotly's ``calcdata``) into an attribute of
``<html>``; ``--dump-dom`` returns it.  The same Chromium call saves the screenshot.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

CHROMIUM = next(
    (p for p in ("/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser"))
     if p and os.access(p, os.X_OK)),
    None,
)  # fmt: skip
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no Chromium (install Debian's 'chromium' package; .ci/run does) for the browser test",
)
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-extensions", "--no-first-run",
         "--virtual-time-budget=20000", "--window-size=1280,2000"]  # fmt: skip

PROBE_JS = """<script>
(function(){
  var errs = [];
  window.addEventListener('error', function(e){
    errs.push('error: ' + (e.message || (e.target && (e.target.src || e.target.href)) || e.type));
  }, true);
  window.addEventListener('unhandledrejection', function(e){ errs.push('rejection: ' + e.reason); });
  var orig = console.error;
  console.error = function(){
    errs.push('console.error: ' + Array.prototype.join.call(arguments, ' '));
    return orig.apply(console, arguments);
  };
  window.addEventListener('load', function(){ setTimeout(function(){
    var figs = Array.prototype.map.call(document.querySelectorAll('script.fig-data'), function(el){
      var d = document.getElementById(el.dataset.target), traces = 0, points = 0;
      if (d && d.calcdata) {
        traces = d.calcdata.length;
        d.calcdata.forEach(function(cd){ points += cd.length; });
      }
      return {id: el.dataset.target, cls: d ? d.className : null,
              svg: d ? d.querySelectorAll('.main-svg').length : 0, traces: traces, points: points};
    });
    document.documentElement.setAttribute('data-check', JSON.stringify({errors: errs, figs: figs}));
  }, 500); });
})();
</script>"""
FIG_DATA = re.compile(r'<script type="application/json" class="fig-data" data-target="[^"]+">')
CHECK = re.compile(r'<html[^>]*\sdata-check="([^"]*)"')


def _instrument(report: Path, dest: Path) -> Path:
    text = report.read_text(encoding="utf-8")
    head = text.index("<head>") + len("<head>")
    dest.write_text(text[:head] + PROBE_JS + text[head:], encoding="utf-8")
    return dest


def _chromium(page: Path, png: Path, work: Path) -> subprocess.Popen:
    cmd = [CHROMIUM, *FLAGS, f"--user-data-dir={work / ('profile-' + page.stem)}",
           f"--screenshot={png}", "--dump-dom", page.as_uri()]  # fmt: skip
    return subprocess.Popen(
        cmd, cwd=work, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )


def open_reports(reports: dict[str, Path], work: Path, parallel: int = 2) -> dict[str, dict]:
    """Open the reports, ``parallel`` Chromiums at a time; -> kind: {errors, figs, expected, png}."""
    pending = list(reports.items())
    running: list[tuple[str, Path, Path, subprocess.Popen]] = []
    out: dict[str, dict] = {}
    try:
        while pending or running:
            while pending and len(running) < parallel:
                kind, report = pending.pop(0)
                page = _instrument(report, work / f"{kind}.html")
                png = work / f"{kind}.png"
                running.append((kind, report, png, _chromium(page, png, work)))
            kind, report, png, proc = running.pop(0)
            try:
                dom, _ = proc.communicate(timeout=180)
            except subprocess.TimeoutExpired:
                pytest.fail(f"{kind}: Chromium did not finish in 180 s")
            m = CHECK.search(dom)
            assert m, f"{kind}: the page never finished loading (no check attribute in the DOM)"
            check = json.loads(html.unescape(m.group(1)))
            check["expected"] = len(FIG_DATA.findall(report.read_text(encoding="utf-8")))
            check["png"] = png
            out[kind] = check
    finally:
        for *_, proc in running:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    return out


def problems(check: dict) -> list[str]:
    """Everything wrong with one opened report (empty when it is fine)."""
    bad = [f"JS: {e}" for e in check["errors"]]
    if len(check["figs"]) != check["expected"]:
        bad.append(f"{len(check['figs'])} figures found, {check['expected']} in the file")
    for f in check["figs"]:
        if "plot-error" in (f["cls"] or "") or "js-plotly-plot" not in (f["cls"] or ""):
            bad.append(f"{f['id']}: not rendered (class {f['cls']!r})")
        elif f["svg"] < 1 or f["traces"] < 1 or f["points"] < 1:
            bad.append(f"{f['id']}: no data drawn ({f})")
    png = check["png"]
    if not png.is_file() or png.stat().st_size < 10_000:
        bad.append(f"screenshot {png} missing or blank")
    elif png.read_bytes()[:8] != b"\x89PNG\r\n\x1a\n":
        bad.append(f"screenshot {png} is not a PNG")
    return bad


def test_every_report_kind_renders_in_chromium(reports, tmp_path) -> None:
    checks = open_reports(reports, tmp_path)
    failures = {kind: problems(c) for kind, c in checks.items() if problems(c)}
    assert not failures, json.dumps(failures, indent=1, default=str)
    for kind, c in checks.items():
        assert c["expected"] >= 1, f"{kind}: the report has no figures"
    # the model's own report gained the analyses run on it
    assert len(checks["train"]["figs"]) > 3


def test_a_broken_report_is_caught(reports, tmp_path) -> None:
    """The checker fails on a figure with bad data and on a script error."""
    text = reports["squash"].read_text(encoding="utf-8")
    broken = FIG_DATA.sub(lambda m: m.group(0) + "{not json", text, count=1)
    broken = broken.replace("</body>", "<script>undefinedFunction()</script></body>")
    (tmp_path / "broken-src.html").write_text(broken, encoding="utf-8")
    check = open_reports({"broken": tmp_path / "broken-src.html"}, tmp_path)["broken"]
    found = problems(check)
    assert any("not rendered" in p for p in found), found
    assert any("undefinedFunction" in p for p in found), found
