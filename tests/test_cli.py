"""CLI: parsed calls, one-line errors, and one end-to-end train -> report in a temp dir."""

from __future__ import annotations

import json

import pytest
from cli_helpers import assert_one_line_error, invoke


def test_end_to_end_task_train_then_report(tmp_path) -> None:
    out = tmp_path / "run"
    result = invoke(
        "train",
        "--task",
        "copy",
        "-o",
        "length=3",
        "-o",
        "vocab=5",
        "--steps",
        "20",
        "--eval-every",
        "10",
        "--layers",
        "1",
        "--d-model",
        "16",
        "--heads",
        "2",
        "--out",
        out,
    )
    assert result.exit_code == 0, result.output
    assert "validation loss" in result.output and "report:" in result.output
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["data"]["task_options"] == {"length": 3, "vocab": 5}
    assert cfg["model"]["n_layers"] == 1 and cfg["train"]["steps"] == 20
    html = (out / "report.html").read_text()
    assert "Plotly" in html and 'src="http' not in html
    (out / "report.html").unlink()
    result = invoke("report", out)
    assert result.exit_code == 0 and (out / "report.html").is_file()


def test_end_to_end_text_train_resume_and_report(tmp_path) -> None:
    out = tmp_path / "text"
    common = [
        "train",
        "--corpus",
        "builtin:prose",
        "--max-chars",
        "60000",
        "--tokenizer",
        "byte",
        "--ctx",
        "32",
        "--layers",
        "1",
        "--d-model",
        "16",
        "--heads",
        "2",
        "--d-mlp",
        "32",
        "--eval-every",
        "5",
        "--checkpoint-every",
        "5",
        "--out",
        out,
    ]
    assert invoke(*common, "--steps", "10", "--no-report").exit_code == 0
    assert not (out / "report.html").exists()
    # more steps on resume are allowed; other changes are refused
    result = invoke(*common, "--steps", "15", "--resume")
    assert result.exit_code == 0, result.output
    assert (
        max(r["step"] for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines()))
        == 15
    )
    assert_one_line_error(invoke(*common, "--steps", "15", "--resume", "--lr", "0.5"), "lr")
    assert (out / "tokenizer" / "tokenizer_meta.json").is_file()


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["train", "--layers", "abc"], "invalid value for '--layers'"),
        (["train", "--layers", "0"], "n_layers"),
        (["train", "--pe", "nope"], "unknown positional encoding"),
        (["train", "--d-model", "10", "--heads", "4"], "not divisible"),
        (["train", "--task", "nope"], "unknown task"),
        (["train", "--task", "copy", "-o", "length=0"], "length"),
        (["train", "--task", "copy", "-o", "bogus"], "key=value"),
        (["train", "--task", "copy", "-o", "zzz=1"], "no option"),
        (["train", "--corpus", "/definitely/missing/path"], "not found|no such|does not exist"),
        (["train", "--resume"], "--resume needs --out"),
        (["train", "--bogus-flag"], "no such option"),
        (["report", "/definitely/missing/run"], "not a run directory"),
    ],
)
def test_bad_input_is_one_line(tmp_path, monkeypatch, args, fragment) -> None:
    monkeypatch.chdir(tmp_path)
    assert_one_line_error(invoke(*args), fragment)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir()), (
        "half-written run"
    )


def test_existing_run_is_refused_and_corrupt_config_reported(tmp_path) -> None:
    out = tmp_path / "r"
    args = [
        "train",
        "--task",
        "copy",
        "--steps",
        "2",
        "--layers",
        "1",
        "--d-model",
        "16",
        "--heads",
        "2",
        "--no-report",
        "--out",
        out,
    ]
    assert invoke(*args).exit_code == 0
    assert_one_line_error(invoke(*args), "already exists")
    (out / "config.json").write_text("{not json")
    assert_one_line_error(invoke("report", out), "not valid JSON|corrupt")
    assert_one_line_error(invoke(*args, "--resume"), "not valid JSON|corrupt")


def test_resume_of_corrupt_checkpoint_is_one_line(tmp_path) -> None:
    out = tmp_path / "r"
    args = [
        "train",
        "--task",
        "copy",
        "--steps",
        "4",
        "--checkpoint-every",
        "2",
        "--layers",
        "1",
        "--d-model",
        "16",
        "--heads",
        "2",
        "--no-report",
        "--out",
        out,
    ]
    assert invoke(*args).exit_code == 0
    ckpt = json.loads((out / "checkpoints" / "latest.json").read_text())["dir"]
    (out / "checkpoints" / ckpt / "model.safetensors").write_bytes(b"truncated")
    assert_one_line_error(
        invoke(*args[:-2], "--steps", "6", "--out", out, "--resume"), "safetensors"
    )


def test_help_lists_commands() -> None:
    result = invoke("--help")
    assert result.exit_code == 0
    for cmd in ("train", "report", "demo"):
        assert cmd in result.output


def test_list_options_parse_or_fail_in_one_line() -> None:
    from cli.parsing import float_list, int_list
    from interp.errors import ConfigError, InterpError
    from interp.resources import MAX_LIST_VALUES

    assert int_list("0, 1,2,", "--seeds") == (0, 1, 2)
    assert float_list("0.5,1e-3", "--weight-decays") == (0.5, 1e-3)
    for bad, parse in [("1,x", int_list), ("1.5", int_list), ("a", float_list)]:
        with pytest.raises(ConfigError, match="--opt must be comma-separated"):
            parse(bad, "--opt")
    with pytest.raises(ConfigError, match="finite"):
        float_list("0.1,nan", "--opt")
    with pytest.raises(InterpError, match="--opt"):
        int_list(",".join(["1"] * (MAX_LIST_VALUES + 1)), "--opt")
