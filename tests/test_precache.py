"""The pre-caching task, the twin comparison, its verdict, report section, CLI and reproduction."""

from __future__ import annotations

import json
import math

import pytest
import torch
from cli_helpers import assert_one_line_error, invoke

from interp.analysis.myopia import (
    MyopiaConfig,
    gap_summary,
    position_gap,
    ridge_r2,
    t_interval,
    verdict,
)
from interp.errors import ConfigError
from interp.tasks import build_task

# --------------------------------------------------------------------------- task


def test_precache_targets_match_the_definition() -> None:
    task = build_task("precache", {"length": 12, "window": 3, "frequency": 10.0, "p": 0.5})
    assert task.model_overrides() == {
        "input_kind": "vector",
        "d_input": 2,
        "d_vocab": 1,
        "n_ctx": 12,
    }
    batch = task.sample(4, torch.Generator().manual_seed(0))
    assert batch.inputs.shape == (4, 12, 2) and batch.targets.shape == (4, 12, 1)
    assert batch.loss == "huber" and batch.mask.all()
    x, z = batch.inputs[..., 0], batch.inputs[..., 1]
    assert set(z.unique().tolist()) <= {0.0, 1.0}
    for b in range(4):
        for n in range(12):
            past = sum(math.sin(10 * float(x[b, n - i])) for i in range(1, 4) if n - i >= 0)
            want = past if z[b, n] == 1 else float(x[b, n])
            assert abs(float(batch.targets[b, n, 0]) - want) < 1e-5
    assert torch.allclose(task.future_feature(batch.inputs), torch.sin(10 * x))


def test_precache_p_extremes_and_bad_options() -> None:
    g = torch.Generator().manual_seed(1)
    b0 = build_task("precache", {"p": 0.0, "length": 8}).sample(2, g)
    assert torch.equal(b0.targets[..., 0], b0.inputs[..., 0])
    b1 = build_task("precache", {"length": 8}).sample(2, g)
    assert float(b1.targets[:, 0].abs().max()) == 0.0  # nothing before the start
    for opts, frag in (
        ({"p": 1.5}, "p must"),
        ({"window": 0}, "window"),
        ({"lenght": 3}, "no option"),
    ):
        with pytest.raises(ConfigError, match=frag):
            build_task("precache", opts)


# --------------------------------------------------------------------------- statistics


def test_interval_gap_and_positions() -> None:
    assert t_interval([1.0]) is None
    lo, hi = t_interval([1.0, 3.0])
    assert math.isclose(lo, 2 - 12.706, rel_tol=1e-6) and math.isclose(hi, 2 + 12.706, rel_tol=1e-6)
    s = gap_summary([1.0, 1.2], [1.5, 1.5])
    assert s["gaps"] == pytest.approx([0.5, 0.3]) and s["rel_gap"] == pytest.approx(0.4 / 1.1)
    p = position_gap([[2.0, 1.0, 1.0, 1.0]], [[1.5, 1.0, 1.0, 1.5]])
    assert p["gap_first_quarter"] == pytest.approx(-0.5) and p["gap_last_quarter"] == pytest.approx(
        0.5
    )
    with pytest.raises(ConfigError, match="seeds"):
        MyopiaConfig(seeds=()).validate()  # configs are inert: checked when used (#14)


def test_verdict_labels() -> None:
    precache = gap_summary([0.05, 0.06], [1.2, 1.25])
    good_probe = {"target": "f", "layer": 1, "vanilla_r2": 0.95, "myopic_r2": 0.05}
    assert verdict(precache, good_probe)["label"] == "pre-caching"
    bad_probe = {**good_probe, "vanilla_r2": 0.1}
    assert verdict(precache, bad_probe)["label"] == "inconclusive"
    text = gap_summary([3.28, 3.30], [3.40, 3.41])
    v = verdict(text, None)
    assert v["label"] == "breadcrumbs" and any("95% CI" in e for e in v["evidence"])
    assert verdict(gap_summary([1.0], [0.9]), None)["label"] == "breadcrumbs"


def test_ridge_probe_recovers_a_linear_feature() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(400, 8, generator=g)
    y = x @ torch.randn(8, generator=g) + 0.5
    assert ridge_r2(x[:200], y[:200], x[200:], y[200:], 1e-6) > 0.999
    noise = torch.randn(400, generator=g)
    assert ridge_r2(x[:200], noise[:200], x[200:], noise[200:], 1e-3) < 0.1


# --------------------------------------------------------------------------- CLI, report


TINY = ["precache", "-o", "length=8", "-o", "window=3", "--steps", "6", "--eval-every", "3",
        "--layers", "2", "--d-model", "16", "--heads", "2", "--d-mlp", "32", "--warmup", "1"]  # fmt: skip


def test_cli_end_to_end_resume_and_report(tmp_path) -> None:
    out = tmp_path / "pc"
    result = invoke(*TINY, "--seeds", "0..1", "--out", out)
    assert result.exit_code == 0, result.output
    assert "verdict:" in result.output and "report:" in result.output
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["kind"] == "precache" and cfg["myopia"]["seeds"] == [0, 1]
    results = json.loads((out / "results.json").read_text())
    assert results["verdict"]["label"] in ("pre-caching", "breadcrumbs", "inconclusive")
    assert results["summary"]["gap_ci"] is not None and len(results["positions"]["gap"]) == 8
    assert 0 <= results["probe"]["layer"] <= 2 and len(results["probe"]["by_layer"]["vanilla"]) == 2
    for seed in (0, 1):
        v = json.loads((out / "twins" / f"seed{seed}-vanilla" / "config.json").read_text())
        m = json.loads((out / "twins" / f"seed{seed}-myopic" / "config.json").read_text())
        assert v["train"]["grad_mode"] == "vanilla" and m["train"]["grad_mode"] == "myopic"
        assert v["train"]["seed"] == m["train"]["seed"] == seed
    html = (out / "report.html").read_text()
    assert "Pre-caching or breadcrumbs" in html
    # resume of a finished comparison retrains nothing and gives the same numbers
    again = invoke(*TINY, "--seeds", "0..1", "--out", out, "--resume")
    assert again.exit_code == 0, again.output
    assert json.loads((out / "results.json").read_text())["summary"] == results["summary"]
    assert_one_line_error(invoke(*TINY, "--seeds", "0..2", "--out", out, "--resume"), "differs")


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--task", "nope"], "unknown task"),
        (["-o", "p=2"], "p must"),
        (["--seeds", "0"], "seeds"),
        (["--corpus", "builtin"], "either --task or --corpus"),
        (["--probe-layer", "3"], "probe-layer"),
        (["--pe", "sideways"], "positional"),
        (["--probe-horizons", "0"], "token_horizons"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, args, fragment) -> None:
    out = tmp_path / "never"
    extra = ["--task", "precache"] if "--corpus" in args else []
    assert_one_line_error(invoke(*TINY, *extra, *args, "--out", out), fragment)
    assert not out.exists()


def test_report_section_for_a_reproduction_layout(tmp_path) -> None:
    from interp.io import atomic_write_json
    from interp.report import build_report
    from interp.runs import RunDir

    run = RunDir.create(tmp_path / "r", {"kind": "reproduce", "name": "precache"})
    for sub, probe in (("synthetic", True), ("text", False)):
        results = {
            "kind": "precache",  # as run_precache writes it
            "summary": gap_summary([0.1], [1.2]) | {"zero_baseline": 1.25},
            "positions": position_gap([[0.3, 0.1]], [[1.0, 1.3]]),
            "per_seed": [{"seed": 0, "vanilla": {"loss": 0.1}, "myopic": {"loss": 1.2}}],
            "probe": {"vanilla_r2": 0.9, "myopic_r2": 0.1, "target": "f", "layer": 1}
            if probe
            else None,
            "token_probe": None if probe else {"status": "not computed", "note": "TODO"},
            "verdict": {"label": "pre-caching", "evidence": ["big gap"]},
        }
        atomic_write_json(run.path / sub / "results.json", results)
    html = build_report(run.path).read_text()
    assert "synthetic task: verdict: pre-caching" in html and "text: future-token probes" in html


def test_reproduction_is_registered_with_valid_quick_jobs() -> None:
    import interp.reproductions  # noqa: F401
    from interp.reproduce import reproduction_names
    from interp.reproductions.precache import _jobs

    assert "precache" in reproduction_names()
    synth, text, seeds = _jobs(quick=True)
    assert synth.data.task == "precache" and text.data.source == "corpus" and seeds == 1
    assert text.data.val_fraction == 0.1  # 5% of the builtin corpus can be one short document


def test_reproduction_reports_token_probes_unjudged() -> None:
    from interp.reproductions.precache import _token_probe_claim

    assert _token_probe_claim(None).passed is None
    assert "failed" in _token_probe_claim({"status": "not computed", "note": "failed: x"}).ours
    tp = {
        "status": "done",
        "layers": [0, 1, 2],
        "layer_labels": ["0 (embed)", "1", "2 (final)"],
        "horizons": [1, 2],
        "vanilla": {"top1": [[0.2, 0.1], [0.3, 0.2], [0.4, 0.2]]},
        "myopic": {"top1": [[0.2, 0.1], [0.25, 0.2], [0.4, 0.2]]},
        "diff": [[0.0, 0.0], [0.05, 0.0], [0.0, 0.0]],
        "tokens": {"test": 50},
    }
    claim = _token_probe_claim(tp)
    assert claim.passed is None and "from layer 1: k=1 0.300/0.250" in claim.ours
    assert "0.050" in claim.ours


# --------------------------------------------------------------------------- future-token probes


TINY_TEXT = ["precache", "--corpus", "builtin", "--tokenizer", "byte", "--max-chars", "60000",
             "--ctx", "16", "--steps", "4", "--eval-every", "2", "--warmup", "1", "--layers", "2",
             "--d-model", "16", "--heads", "2", "--d-mlp", "32", "--seeds", "0,"]  # fmt: skip


def test_text_twins_get_future_token_probes(tmp_path) -> None:
    out = tmp_path / "text"
    result = invoke(*TINY_TEXT, "--out", out)
    assert result.exit_code == 0, result.output
    results = json.loads((out / "results.json").read_text())
    tp = results["token_probe"]
    assert tp["status"] == "done" and results["probe"] is None
    assert tp["layers"] == [0, 1, 2] and tp["horizons"] == [1, 2, 3]
    assert tp["tokens"]["test"] > 0 and tp["seeds"] == 1 and isinstance(tp["notes"], list)
    for mode in ("vanilla", "myopic"):
        grid = tp[mode]["top1"]
        assert len(grid) == 3 and all(len(row) == 3 for row in grid)
        assert all(0.0 <= v <= 1.0 for row in grid for v in row)
        assert results["per_seed"][0][mode]["token_probe"]["top1"] == grid  # one seed: the mean
    for i in range(3):
        for k in range(3):
            want = tp["vanilla"]["top1"][i][k] - tp["myopic"]["top1"][i][k]
            assert tp["diff"][i][k] == pytest.approx(want)
    assert any("future-lens probes" in line for line in results["verdict"]["evidence"])
    html = (out / "report.html").read_text()
    assert "future-token probes (future lens" in html and "layer 0 (embed): k=1" in html


def test_token_probe_summary_averages_seeds() -> None:
    from interp.analysis.myopia import token_probe_sentence, token_probe_summary

    def twin(top1: list[list[float]]) -> dict:
        return {
            "layers": [0, 1],
            "layer_labels": ["0 (embed)", "1 (final)"],
            "horizons": [1, 2],
            "top1": top1,
            "top1_lo": top1,
            "top1_hi": top1,
            "baselines": {"unigram": [0.1, 0.1], "bigram": [0.2, 0.15]},
            "model_top1": top1[-1][0],
            "tokens": {"test": 100},
            "data": "d",
            "notes": ["few tokens"],
        }

    per_seed = [
        {"vanilla": {"token_probe": twin([[0.2, 0.1], [0.5, 0.3]])},
         "myopic": {"token_probe": twin([[0.2, 0.1], [0.4, 0.2]])}},
        {"vanilla": {"token_probe": twin([[0.4, 0.1], [0.7, 0.3]])},
         "myopic": {"token_probe": twin([[0.2, 0.1], [0.6, 0.2]])}},
    ]  # fmt: skip
    tp = token_probe_summary(per_seed)
    flat = lambda grid: [v for row in grid for v in row]  # noqa: E731
    assert flat(tp["vanilla"]["top1"]) == pytest.approx([0.3, 0.1, 0.6, 0.3])
    assert flat(tp["myopic"]["top1"]) == pytest.approx([0.2, 0.1, 0.5, 0.2])
    assert flat(tp["diff"]) == pytest.approx([0.1, 0.0, 0.1, 0.1])
    assert "top1_lo" not in tp["vanilla"]  # per-seed intervals are not averaged
    assert tp["vanilla"]["model_top1"] == pytest.approx(0.6)
    assert tp["notes"] == ["few tokens"]
    assert "k=2: vanilla 0.100, myopic 0.100" in token_probe_sentence(tp)  # layer 0, not final
    v = verdict(gap_summary([3.0, 3.0], [3.1, 3.1]), None, 0.10, tp)
    assert v["label"] == "breadcrumbs" and any("future-lens" in e for e in v["evidence"])


def test_a_vanilla_twin_that_did_not_learn_is_inconclusive() -> None:
    """#19: neither twin left the trivial baseline (issue: vanilla 1.2575, myopic 1.2575,
    predict-zero 1.2602): no breadcrumbs verdict, an inconclusive one naming what to try."""
    flat = gap_summary([1.2575], [1.2575]) | {"zero_baseline": 1.2602}
    v = verdict(flat, None)
    assert v["label"] == "inconclusive"
    assert "did not learn" in v["evidence"][-1] and "--steps" in v["evidence"][-1]
    learned = gap_summary([0.5], [0.52]) | {"zero_baseline": 1.26}
    assert verdict(learned, None)["label"] == "breadcrumbs"  # learned, small gap: a finding


def test_an_inconclusive_headline_says_why_and_what_to_try() -> None:
    """#19: the tour printed "Myopic vs vanilla: inconclusive (myopia gap +0.5156, ...)" with no
    reason; a large gap the probe does not back, or one with an interval reaching zero, says so
    in the headline with the option that helps."""
    from interp.experiments.precache import precache_headline

    big = gap_summary([0.55], [1.07]) | {"zero_baseline": 1.07}
    weak = {"target": "sin(3x_t)", "layer": 1, "vanilla_r2": 0.074, "myopic_r2": 0.182}
    v = verdict(big, weak)
    assert v["label"] == "inconclusive"
    line = precache_headline({"summary": big, "verdict": v})
    assert line.startswith("Myopic vs vanilla: inconclusive: the gap is large but the probe")
    assert "vanilla R² 0.074" in line and "--steps" in line and "+0.5200" in line
    noisy = gap_summary([0.5, 0.5], [1.0, 0.4]) | {"zero_baseline": 1.07}
    v = verdict(noisy, None)
    assert v["label"] == "inconclusive" and "--seeds" in v["evidence"][-1]
    assert "--seeds" in precache_headline({"summary": noisy, "verdict": v})
    backed = {**weak, "vanilla_r2": 0.9, "myopic_r2": 0.1}
    v = verdict(big, backed)
    assert v["label"] == "pre-caching"
    assert precache_headline({"summary": big, "verdict": v}).startswith(
        "Myopic vs vanilla: pre-caching (myopia gap"
    )


def test_default_task_is_the_reproductions_frequency_and_length() -> None:
    """#19: the command's precache task is sin(3x) over 32 positions (what ``interp reproduce
    precache`` learns on a CPU) unless -o says otherwise; other tasks and text get nothing."""
    from interp.experiments.precache import PrecacheConfig, precache_config

    assert PrecacheConfig.default().data.task_options == {"frequency": 3.0, "length": 32}
    paper = precache_config(task_options={"frequency": 10.0, "length": 64})
    assert paper.data.task_options == {"frequency": 10.0, "length": 64}
    assert precache_config(task_options={"window": 3}).data.task_options == {
        "frequency": 3.0, "length": 32, "window": 3
    }  # fmt: skip
    assert precache_config(task="copy").data.task_options == {}
    assert precache_config(corpus="builtin").data.task_options == {}
