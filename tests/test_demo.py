"""The embedded-default job: trains offline on the built-in corpus, then reuses the cache; the
tour (``interp demo``) runs one small example of every finding into one report."""

from __future__ import annotations

import html
import json
import re

import pytest
from cli_helpers import invoke
from helpers import tiny_tour
from typer.testing import CliRunner

from cli.main import app
from interp.demo import DEMO_MODEL, demo_job, demo_run_dir, ensure_demo_model
from interp.experiments import demo as tour


@pytest.fixture
def tiny_default(monkeypatch):
    """A tiny default model and a tiny tour (the real ones take minutes)."""
    import interp.demo
    from interp.config import DataConfig, ModelConfig, OptimConfig, TrainConfig

    model = ModelConfig(n_layers=1, d_model=16, n_heads=2, d_mlp=32, n_ctx=64, positional="rope")
    train = TrainConfig(steps=2, batch_size=4, eval_every=2, eval_batches=1, checkpoint_every=2,
                        log_every=1, seed=0, optim=OptimConfig(lr=1e-3, warmup_steps=1))  # fmt: skip
    data = DataConfig(source="corpus", corpus="builtin:prose", max_chars=20_000, tokenizer="byte")
    monkeypatch.setattr(interp.demo, "DEMO_MODEL", model)
    monkeypatch.setattr(interp.demo, "DEMO_TRAIN", train)
    monkeypatch.setattr(interp.demo, "DEMO_DATA", data)
    monkeypatch.setattr(tour, "TOUR", tiny_tour())


def test_demo_trains_then_reuses_the_cache(monkeypatch) -> None:
    monkeypatch.setattr(tour, "TOUR", tiny_tour())  # the real model (2 steps), a tiny tour
    runner = CliRunner()
    first = runner.invoke(app, ["demo", "--steps", "2"], catch_exceptions=False)
    assert first.exit_code == 0, first.output
    path = demo_run_dir(demo_job(2))
    assert (path / "model.safetensors").is_file() and (path / "report.html").is_file()
    mtime = (path / "model.safetensors").stat().st_mtime_ns
    second = runner.invoke(app, ["demo", "--steps", "2"], catch_exceptions=False)
    assert second.exit_code == 0 and "reusing" in second.output
    assert (path / "model.safetensors").stat().st_mtime_ns == mtime
    run, reused = ensure_demo_model(steps=2)
    assert reused and run.path == path


def test_demo_model_positions_fade_with_distance() -> None:
    # collapse analyses need a relative encoding (MISSION.md §2): the default must not be learned absolute
    from interp.models.positional import build_positional

    assert build_positional(DEMO_MODEL).relative


def _findings(report: str) -> dict[str, str]:
    """The report's first screen: {section id: finding sentence}."""
    block = re.search(r'<section class="findings">(.*?)</section>', report, re.S)
    assert block, "the report has no findings screen"
    return {
        sid: html.unescape(re.sub(r"<[^>]+>", "", text))
        for sid, text in re.findall(r'<li><a href="#([^"]+)">[^<]*</a>: (.*?)</li>', block[1])
    }


def test_the_tour_shows_every_finding_on_its_first_screen(tiny_default, tmp_path) -> None:
    out = tmp_path / "tour"
    first = invoke("demo", "--out", out)
    assert first.exit_code == 0, first.output
    results = json.loads((out / "results.json").read_text())
    assert [s["name"] for s in results["steps"]] == list(tour.PART_NAMES)
    report = (out / "report.html").read_text()
    findings = _findings(report)
    for step in results["steps"]:
        sub = json.loads((out / step["name"] / "results.json").read_text())
        assert sub["kind"] == step["kind"] and step["headline"] == sub["headline"]
        assert re.search(r"\d", step["headline"]), step  # a sentence with its number
        # listed on the first screen, linked to a section of the report that shows it
        sid = next(s for s, text in findings.items() if text.endswith(step["headline"]))
        assert f'<section class="card" id="{sid}">' in report
        assert f"[{step['name']}]" in first.stderr or f" {step['name']}" in first.stderr
        assert not step["reused"] and step["seconds"] is not None
    assert len(findings) == len(tour.PART_NAMES)
    assert "The tour" in report and "one report" not in first.stderr
    # only one report: the parts write none of their own
    assert not any((out / name / "report.html").exists() for name in tour.PART_NAMES)

    # the same command again: every step reused, nothing recomputed
    stamp = {n: (out / n / "results.json").stat().st_mtime_ns for n in tour.PART_NAMES}
    again = invoke("demo", "--out", out)
    assert again.exit_code == 0, again.output
    redone = json.loads((out / "results.json").read_text())
    assert all(s["reused"] for s in redone["steps"]) and "reusing" in again.stdout
    assert stamp == {n: (out / n / "results.json").stat().st_mtime_ns for n in tour.PART_NAMES}
    assert [s["seconds"] for s in redone["steps"]] == [s["seconds"] for s in results["steps"]]

    # a tour stopped mid-way continues: only the missing step runs
    (out / "collapse" / "results.json").unlink()
    (out / "grok" / "results.json").unlink()
    third = invoke("demo", "--out", out)
    assert third.exit_code == 0, third.output
    steps = {s["name"]: s for s in json.loads((out / "results.json").read_text())["steps"]}
    assert {n for n, s in steps.items() if not s["reused"]} == {"collapse", "grok"}
    assert steps["collapse"]["headline"] == results["steps"][1]["headline"]


def test_the_tour_refuses_an_unknown_part_before_writing(tiny_default, tmp_path) -> None:
    from cli_helpers import assert_one_line_error

    tour.TOUR = tour.TOUR.replace(parts=("probe", "nope"))
    out = tmp_path / "tour"
    assert_one_line_error(invoke("demo", "--out", out), "unknown tour part 'nope'")
    assert not out.exists()
