"""``interp grok`` and ``interp grok sweep``: one-line errors before any output, and short runs
end to end (run directory, results, report with the grokking sections)."""

from __future__ import annotations

import json

import pytest
from cli_helpers import assert_one_line_error, invoke


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["grok", "--p", "1"], "p must be"),
        (["grok", "--train-fraction", "1.5"], r"\(0, 1\)"),
        (["grok", "--train-fraction", "0"], r"\(0, 1\)"),
        (["grok", "--task", "sparse-parity", "--n-bits", "4", "--k", "5"], r"k \(5\)"),
        (["grok", "--model", "cnn"], "unknown grok model"),
        (["grok", "sweep", "--train-fractions", "0.3,1.2"], r"\(0, 1\)"),
        (["grok", "sweep", "--p", "1"], "p must be"),
        (["grok", "sweep", "--weight-decays", "a,b"], "comma-separated"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, args, fragment) -> None:
    out = tmp_path / "run"
    assert_one_line_error(invoke(*args, "--out", out), fragment)
    assert not out.exists()


def test_grok_run_end_to_end(tmp_path) -> None:
    out = tmp_path / "grok"
    result = invoke(
        "grok",
        "--p",
        "11",
        "--steps",
        "60",
        "--log-every",
        "20",
        "--checkpoint-every",
        "30",
        "--out",
        out,
    )
    assert result.exit_code == 0, result.output
    assert "memorisation step" in result.output and "report:" in result.output
    cfg = json.loads((out / "config.json").read_text())
    assert (
        cfg["kind"] == "grok" and cfg["grok"]["pairs"] == "ordered" and cfg["grok"]["width"] == 24
    )
    results = json.loads((out / "results.json").read_text())
    assert {"memorisation_step", "grokking_step", "label", "key_frequencies", "circles"} <= set(
        results
    )
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert {r["split"] for r in rows} == {"train", "val", "fourier"}
    for name in ("model.safetensors", "optim.safetensors", "state.json"):  # for --resume
        assert (out / "checkpoints" / "step_0000030" / name).is_file()
    assert (out / "model.safetensors").is_file()
    html = (out / "report.html").read_text()
    assert "Grokking" in html and "failed to build" not in html


def test_grok_transformer_logs_restricted_and_excluded_loss(tmp_path) -> None:
    out = tmp_path / "nanda"
    result = invoke(
        "grok",
        "--model",
        "transformer",
        "--p",
        "7",
        "--steps",
        "4",
        "--log-every",
        "2",
        "--out",
        out,
    )
    assert result.exit_code == 0, result.output
    cfg = json.loads((out / "config.json").read_text())["grok"]
    assert cfg["pairs"] == "all" and cfg["train_fraction"] == 0.3
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    fourier = [r for r in rows if r["split"] == "fourier"]
    assert fourier and all("restricted_loss" in r and "excluded_loss" in r for r in fourier)


def test_grok_sweep_end_to_end(tmp_path) -> None:
    out = tmp_path / "sweep"
    result = invoke(
        "grok",
        "sweep",
        "--p",
        "11",
        "--weight-decays",
        "0,1",
        "--train-fractions",
        "0.4,0.6",
        "--widths",
        "8,12",
        "--seeds",
        "2",
        "--steps",
        "40",
        "--log-every",
        "20",
        "--out",
        out,
    )
    assert result.exit_code == 0, result.output
    assert "16 runs" in result.output
    results = json.loads((out / "results.json").read_text())
    assert results["n_runs"] == 16 and sum(results["label_counts"].values()) == 16
    assert {r["label"] for r in results["runs"]} <= {"no-learn", "memorise", "grok", "generalise"}
    html = (out / "report.html").read_text()
    assert "Phase diagram" in html and "failed to build" not in html
