"""Tests for interp.report: self-contained HTML reports of run directories."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
import pytest
from plotly.offline import get_plotlyjs

from interp.errors import CorruptFileError, LoadError
from interp.report import (
    RunView,
    Section,
    build_report,
    load_run_view,
    register_section,
    registered_section,
    render_html,
    section_builders,
    unregister_section,
    write_report,
)
from interp.report import figures as F

BUNDLE_MARK = get_plotlyjs()[:60]  # the bundle's licence header, e.g. "/**\n* plotly.js v4..."

PLOT_DIV = re.compile(r'<div class="plot" id="([^"]+)"></div>')
FIG_DATA = re.compile(
    r'<script type="application/json" class="fig-data" data-target="([^"]+)">(.*?)</script>',
    re.S,
)
H2 = re.compile(r"<h2>(.*?)</h2>")


def _config(**data: Any) -> dict[str, Any]:
    return {
        "kind": "train",
        "seed": 7,
        "model": {
            "n_layers": 2,
            "d_model": 64,
            "n_heads": 4,
            "d_mlp": 256,
            "n_ctx": 16,
            "d_vocab": 50,
            "positional": "rope",
            "normalization": "LN",
        },
        "train": {"steps": 200, "lr": 1e-3, "batch_size": 8},
        "data": {"corpus": "tiny", "tokenizer": "char", **data},
        "created": "2025-01-01T00:00:00+00:00",
    }


def _metrics(n_train: int = 20, n_val: int = 3, n_ctx: int = 16) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for i in range(n_train):
        step = (i + 1) * 10
        rows.append(
            {
                "step": step,
                "split": "train",
                "loss": 4.0 * math.exp(-i / 6) + 0.1 + 0.05 * (i % 3),
                "lr": 1e-3 * min(1.0, (i + 1) / 5),
                "grad_norm": 1.0 + 0.1 * (i % 4),
                "tokens": step * 8 * n_ctx,
                "elapsed": 0.1 * i,
            }
        )
    for j in range(n_val):
        step = (j + 1) * n_train * 10 // n_val
        scale = 3.0 / (j + 1)
        rows.append(
            {
                "step": step,
                "split": "val",
                "loss": scale,
                "loss_by_pos": [scale * (1 + 1 / (p + 1)) for p in range(n_ctx)],
                "accuracy": 0.3 + 0.6 * j / max(1, n_val - 1),
            }
        )
    return rows


def make_run(
    root: Path,
    *,
    config: dict[str, Any] | None = None,
    metrics: list[dict[str, Any]] | None = None,
) -> Path:
    run = root / "run-1"
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps(config if config is not None else _config()))
    env = {
        "versions": {"python": "3.11", "torch": "2.13", "transformer_lens": "4.0", "interp": "0.1"},
        "device": "cpu",
        "seed": 7,
        "hostname": "test",
    }
    (run / "env.json").write_text(json.dumps(env))
    rows = _metrics() if metrics is None else metrics
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return run


def parse_figures(html: str) -> dict[str, dict[str, Any]]:
    divs = PLOT_DIV.findall(html)
    blobs = {fid: json.loads(payload) for fid, payload in FIG_DATA.findall(html)}
    assert len(divs) == len(set(divs)), "plot div ids must be unique"
    assert set(divs) == set(blobs), "one JSON blob per plot div"
    return blobs


def expected_sections(run_dir: Path) -> list[Section]:
    view = load_run_view(run_dir)
    out: list[Section] = []
    for _, builder in section_builders():
        built = builder(view)  # a results section builds one section per set of results
        out.extend(built if isinstance(built, list) else [built] if built is not None else [])
    return out


# --------------------------------------------------------------------------- build_report


def test_build_report_is_self_contained(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    path = build_report(run)
    assert path == run / "report.html"
    html = path.read_text(encoding="utf-8")
    assert html.count(BUNDLE_MARK) == 1, "plotly.js must be embedded exactly once"
    assert 'src="http' not in html
    assert re.search(r"<script[^>]*\bsrc=", html) is None
    assert re.search(r"<link[^>]*href=", html) is None
    assert '"displaylogo": false' in html

    figs = parse_figures(html)
    n_expected = sum(len(s.figures) for s in expected_sections(run))
    assert n_expected >= 3
    assert len(figs) == n_expected
    for fig in figs.values():
        assert len(fig["data"]) >= 1
        for trace in fig["data"]:
            assert len(trace["x"]) > 0

    # header meta grid and table of contents
    assert "rope" in html and "2 layers" in html and "200 / 200" in html
    for title in H2.findall(html):
        assert f">{title}</a>" in html


def test_build_report_custom_out(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    out = tmp_path / "elsewhere" / "r.html"
    assert build_report(run, out=out) == out
    assert out.is_file() and not (run / "report.html").exists()


def test_sections_in_registry_order(tmp_path: Path) -> None:
    run = make_run(tmp_path)

    def first(_: RunView) -> Section:
        return Section("Zeroth section")

    def middle(_: RunView) -> Section:
        return Section("Between training and per-position")

    def skipped(_: RunView) -> None:
        return None

    with (
        registered_section("zz-first", first, order=5),
        registered_section("aa-middle", middle, order=15),
        registered_section("skipped", skipped, order=16),
    ):
        ours = {"zz-first", "training", "aa-middle", "skipped", "per-position", "config"}
        names = [n for n, _ in section_builders() if n in ours]  # plugin sections may sit between
        assert names[:5] == ["zz-first", "training", "aa-middle", "skipped", "per-position"]
        assert names[-1] == "config"
        html = build_report(run).read_text(encoding="utf-8")
        titles = H2.findall(html)
        assert titles == [s.title for s in expected_sections(run)]
    assert titles[0] == "Zeroth section" and titles[2] == "Between training and per-position"
    assert titles[-1] == "Configuration"
    assert "zz-first" not in [n for n, _ in section_builders()]


def test_ties_sorted_by_name() -> None:
    @register_section("tie-b", order=500)
    def b(_: RunView) -> None:
        return None

    @register_section("tie-a", order=500)
    def a(_: RunView) -> None:
        return None

    try:
        names = [n for n, _ in section_builders()]
        assert names.index("tie-a") + 1 == names.index("tie-b")
    finally:
        assert unregister_section("tie-a") is a
        assert unregister_section("tie-b") is b
    assert unregister_section("tie-a") is None


def test_failing_section_becomes_a_note(tmp_path: Path) -> None:
    run = make_run(tmp_path)

    def broken(_: RunView) -> Section:
        raise RuntimeError("boom <here>")

    def wrong_type(_: RunView) -> Any:
        return "not a section"

    with (
        registered_section("broken", broken, order=15),
        registered_section("wrong-type", wrong_type, order=16),
    ):
        html = build_report(run).read_text(encoding="utf-8")
    assert "This section failed to build: RuntimeError: boom &lt;here&gt;" in html
    assert "This section failed to build: TypeError" in html
    titles = H2.findall(html)
    assert titles[:4] == ["Training", "broken", "wrong-type", "Loss by position"]
    assert "Configuration" in titles
    assert len(parse_figures(html)) >= 3
    assert "broken" not in [n for n, _ in section_builders()]


def test_missing_config_is_load_error(tmp_path: Path) -> None:
    (tmp_path / "metrics.jsonl").write_text("")
    with pytest.raises(LoadError, match="not a run directory"):
        build_report(tmp_path)


def test_corrupt_config_is_corrupt_file_error(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    (run / "config.json").write_text('{"kind": "train", "seed":')
    with pytest.raises(CorruptFileError):
        load_run_view(run)
    with pytest.raises(CorruptFileError):
        build_report(run)
    (run / "config.json").write_text("[1, 2]")
    with pytest.raises(CorruptFileError):
        load_run_view(run)


def test_read_json_on_run_view(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    (run / "probe").mkdir()
    (run / "probe" / "results.json").write_text('{"acc": 0.9}')
    (run / "results.json").write_text("{not json")
    view = load_run_view(run)
    assert view.read_json("probe/results.json") == {"acc": 0.9}
    assert view.read_json("absent.json") is None
    with pytest.raises(CorruptFileError):
        view.read_json("results.json")
    assert len(view.rows("val")) == 3 and len(view.rows("train")) == 20


@pytest.mark.parametrize("metrics_file", ["absent", "empty"])
def test_empty_metrics_still_builds(tmp_path: Path, metrics_file: str) -> None:
    run = make_run(tmp_path, metrics=[])
    if metrics_file == "absent":
        (run / "metrics.jsonl").unlink()
    html = build_report(run).read_text(encoding="utf-8")
    assert "no data yet" in html
    assert html.count(BUNDLE_MARK) == 1
    assert H2.findall(html)[0] == "Training"


def test_text_is_escaped(tmp_path: Path) -> None:
    evil = "<script>alert(1)</script>"
    run = make_run(tmp_path, config=_config(corpus=evil))

    def custom(_: RunView) -> Section:
        fig = go.Figure(go.Scatter(x=[0, 1], y=[1, 2], name=evil))
        return Section(
            title="<b>bold?</b>",
            figures=(fig,),
            text="first & <i>one</i>\n\nsecond",
            table=({"a": evil},),
            notes=(evil,),
        )

    with registered_section("custom", custom, order=30):
        html = build_report(run).read_text(encoding="utf-8")
    assert evil not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<h2>&lt;b&gt;bold?&lt;/b&gt;</h2>" in html
    assert "<p>first &amp; &lt;i&gt;one&lt;/i&gt;</p><p>second</p>" in html
    names = [t["name"] for fig in parse_figures(html).values() for t in fig["data"]]
    assert evil in names  # survives the JSON round trip without breaking out of <script>


# --------------------------------------------------------------------------- html


def test_render_html_table_and_write(tmp_path: Path) -> None:
    rows = ({"a": 1, "b": 0.5}, {"b": None, "c": [1, 2]})
    html = render_html("T", [Section("S", table=rows)], meta={"seed": 3, "empty": None})
    assert "<th>a</th><th>b</th><th>c</th>" in html
    assert '<td class="num">0.5</td>' in html and "<td>—</td>" in html
    assert "<dt>seed</dt><dd>3</dd>" in html and "<dt>empty</dt>" not in html
    path = write_report(tmp_path / "sub" / "r.html", "T", [Section("S")])
    assert path.read_text(encoding="utf-8").count(BUNDLE_MARK) == 1


# --------------------------------------------------------------------------- figures


def _annotations(fig: go.Figure) -> list[str]:
    return [a.text for a in fig.layout.annotations]


@pytest.mark.parametrize(
    "fn",
    [
        F.loss_curves,
        F.per_position_loss,
        F.lr_schedule,
        F.grad_norm_curve,
        F.accuracy_curves,
    ],
)
def test_figures_on_empty_input(fn: Any) -> None:
    for metrics in ([], [{"split": "train"}], [{"step": 1, "split": "val", "loss": None}]):
        fig = fn(metrics)
        assert "no data yet" in _annotations(fig)
        assert len(fig.data) == 0


def test_loss_curves_traces_and_log_axis() -> None:
    fig = F.loss_curves(_metrics())
    names = [t.name for t in fig.data]
    assert names == ["train", "train (EMA)", "val"]
    assert fig.layout.yaxis.type == "log"  # 4.1 ... 0.1 spans more than a decade
    assert fig.layout.hovermode == "x unified"
    assert fig.data[2].mode == "lines+markers"
    flat = [{"step": s, "split": "train", "loss": 2.0 + s / 100} for s in range(10)]
    assert F.loss_curves(flat).layout.yaxis.type != "log"


def test_loss_curves_skip_non_finite() -> None:
    rows = [
        {"step": 1, "split": "train", "loss": 2.0},
        {"step": 2, "split": "train", "loss": None},
        {"step": 3, "split": "train", "loss": float("nan")},
        {"step": 4, "split": "train", "loss": 1.5},
    ]
    fig = F.loss_curves(rows)
    assert list(fig.data[0].x) == [1, 4]


def test_per_position_loss_last_bold_and_few_earlier() -> None:
    fig = F.per_position_loss(_metrics(n_val=12, n_ctx=8))
    assert len(fig.data) == 6  # 5 earlier (faded) + last (bold)
    last = fig.data[-1]
    assert "last" in last.name and last.line.width == 3
    assert all(t.line.width < 3 for t in fig.data[:-1])
    assert list(last.x) == list(range(8))
    assert fig.data[0].name == "step 16"  # the first evaluation is among the earlier ones
    assert len(F.per_position_loss(_metrics(n_val=1)).data) == 1


def test_ema_is_debiased() -> None:
    assert F.ema([]) == []
    out = F.ema([2.0, 2.0, 2.0, 2.0, 2.0, 2.0], smoothing=0.9)
    assert all(abs(v - 2.0) < 1e-12 for v in out)
    assert F.ema([1.0, 3.0], smoothing=0.0) == [1.0, 3.0]


def test_analysis_run_without_per_position_loss_has_no_empty_section(tmp_path: Path) -> None:
    run = tmp_path / "grok"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"kind": "grok", "seed": 0}))
    (run / "metrics.jsonl").write_text(
        "".join(json.dumps({"step": s, "split": "val", "loss": 1.0 / s}) + "\n" for s in (1, 2, 3))
    )
    html = build_report(run).read_text(encoding="utf-8")
    assert "Loss by position" not in html and "Training" in html
