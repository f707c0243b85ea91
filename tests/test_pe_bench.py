"""interp pe-bench: the library call, the CLI end to end, one-line errors, the report section."""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from cli.main import app
from interp.analysis.pe_bench import PEBenchConfig, format_table, interval, run_pe_bench
from interp.errors import ConfigError

runner = CliRunner()
TINY = dict(steps=4, batch_size=8, n_layers=1, d_model=16, n_heads=2, d_mlp=32, eval_sequences=8)


def test_interval_over_seeds() -> None:
    one = interval([3.0])
    assert one["mean"] == one["lo"] == one["hi"] == 3.0
    three = interval([1.0, 2.0, 3.0], 0, 100)
    assert three["mean"] == 2.0
    assert three["hi"] - 2.0 == pytest.approx(4.303 * 1.0 / 3**0.5, rel=1e-3)
    assert three["lo"] == 0.0  # clipped


def test_run_pe_bench_same_data_for_every_encoding() -> None:
    cfg = PEBenchConfig(
        task="selective-copy",
        task_options={"n_copy": 2, "length": 4, "vocab": 3},
        encodings=("rope", "cope"),
        seeds=(0,),
        **TINY,
    )
    results = run_pe_bench(cfg)["task"]
    assert results["splits"] == ["val", "ood_sparse", "ood_long"]
    assert [r["pe"] for r in results["table"]] == ["rope", "cope"]
    for run in results["runs"]:
        assert run["errors"]["val"]["scored"] == 8 * 2  # same evaluation set for each model
        assert 0 <= run["errors"]["ood_long"]["token_error"] <= 1
    maps = results["cope_maps"]
    assert {m["layer"] for m in maps} == {0} and len(maps) == 4  # 2 examples x 2 heads
    assert {m["example"] for m in maps} == {0, 1}
    pattern = maps[0]["pattern"]
    assert len(pattern) == 7 and all(abs(sum(row) - 1) < 1e-5 for row in pattern)
    assert all(v == 0 for v in pattern[0][1:])  # causal
    assert maps[0]["tokens"][-3] == "<sep>"
    assert len(format_table(results)) == 2


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"encodings": ("rope", "cop")}, "unknown positional encoding 'cop'"),
        ({"task": "flip-flop"}, "unknown task 'flip-flop'"),
        ({"positional_options": {"cope": {"p_max": 0}}}, "p_max must be >= 1"),
        ({"task": None}, "needs a task, text, or both"),
    ],
)
def test_bad_config_is_one_line(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)) as e:
        PEBenchConfig(**kwargs)
    assert "\n" not in str(e.value)


def invoke(*args: str):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--pe", "rope,bogus"], "unknown positional encoding 'bogus'"),
        (["--task", "nope"], "unknown task 'nope'"),
        (["--cope-option", "p_max=0"], "p_max must be >= 1"),
        (["--seeds", "a,b"], "--seeds must be comma-separated integers"),
    ],
)
def test_cli_bad_input_is_one_line_and_writes_nothing(tmp_path, args, message) -> None:
    out = tmp_path / "bench"
    result = invoke("pe-bench", *args, "--out", out)
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines
    assert not out.exists()


def test_cli_end_to_end_with_report(tmp_path) -> None:
    out = tmp_path / "bench"
    result = invoke(
        "pe-bench", "--task", "flipflop", "-o", "length=4", "--pe", "absolute,cope",
        "--seeds", "0,1", "--steps", "3", "--batch-size", "4", "--layers", "1", "--d-model", "16",
        "--heads", "2", "--d-mlp", "16", "--eval-sequences", "4", "--out", out,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "ood_sparse" in result.output and "report:" in result.output
    results = json.loads((out / "results.json").read_text())
    assert results["kind"] == "pe-bench" and results["task"]["splits"][0] == "val"
    assert (out / "models" / "cope-seed1.safetensors").is_file()
    html = (out / "report.html").read_text()
    assert "Positional encodings compared" in html and "CoPE position-only attention" in html
