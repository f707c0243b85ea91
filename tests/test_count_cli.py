"""``interp count``: construct and sweep end to end in a temp dir, resume, and one-line errors."""

from __future__ import annotations

import json

import pytest
import torch
from cli_helpers import assert_one_line_error, invoke


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_construct_prints_exact_cells_and_writes_a_report(tmp_path) -> None:
    out = tmp_path / "construct"
    result = invoke("count", "construct", "--d", "6", "--m", "3,6,12", "--n", "20", "--samples",
                    "100", "--out", out)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.output.count("yes") == 2 and "no" in result.output
    results = json.loads((out / "results.json").read_text())
    assert [c["exact"] for c in results["cells"]] == [True, True, False]
    assert "Counting: accuracy vs d and m" in (out / "report.html").read_text()


SWEEP = ["count", "sweep", "--d", "8", "--m", "2,3", "--heads", "2", "--n-factor", "2",
         "--steps", "4", "--eval-samples", "20"]  # fmt: skip


def test_sweep_end_to_end_and_resume(tmp_path) -> None:
    out = tmp_path / "sweep"
    result = invoke(*SWEEP, "--out", out)
    assert result.exit_code == 0, result.output
    assert "m_thr" in result.output and "report:" in result.output
    config = json.loads((out / "config.json").read_text())
    assert config["kind"] == "count-sweep" and config["sweep"]["m_values"] == [2, 3]
    results = json.loads((out / "results.json").read_text())
    assert {(c["d"], c["m"]) for c in results["cells"]} == {(8, 2), (8, 3)}
    assert "m_thr (accuracy falls to 80%) vs d" in (out / "report.html").read_text()
    # a stopped sweep: one cell missing; --resume redoes only that one
    (out / "cells" / "d0008_m0003.json").unlink()
    kept = (out / "cells" / "d0008_m0002.json").stat().st_mtime_ns
    assert invoke(*SWEEP, "--out", out, "--resume").exit_code == 0
    assert (out / "cells" / "d0008_m0003.json").is_file()
    assert (out / "cells" / "d0008_m0002.json").stat().st_mtime_ns == kept
    assert_one_line_error(invoke(*SWEEP, "--out", out), "already exists")
    assert_one_line_error(invoke(*SWEEP[:-1], "30", "--out", out, "--resume"), "eval_samples")


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--m", "1,4"], "m must be >= 2"),
        (["--n", "0"], "n must be >= 1"),
        (["--d", "6", "--heads", "4"], "not divisible"),
        (["--m", "8..4"], "empty"),
        (["--d", ","], "empty"),
        (["--task", "copy"], "counting task"),
        (["--heads", "0"], "heads and layers must be >= 1"),
        (["--m", "2..10:0"], "step"),
    ],
)
def test_sweep_bad_input_is_one_line_and_writes_nothing(tmp_path, args, fragment) -> None:
    out = tmp_path / "never"
    assert_one_line_error(invoke("count", "sweep", *args, "--out", out), fragment)
    assert not out.exists()


def test_construct_bad_input_is_one_line(tmp_path) -> None:
    assert_one_line_error(invoke("count", "construct", "--m", "1"), "m must be >= 2")
    assert_one_line_error(invoke("count", "construct", "--n", "0"), "n must be >= 1")
    assert_one_line_error(invoke("count", "construct", "--m", "8..4"), "empty")
    assert_one_line_error(invoke("count", "construct", "--d", ","), "empty")
    assert_one_line_error(invoke("count", "construct", "--d", "0"), "d must be >= 1")


def test_sweep_defaults_are_the_library_defaults_and_keep_the_stated_contract() -> None:
    """#19: ``interp count sweep`` with no option builds ``SweepConfig()`` (the one set of
    defaults), and those keep what the help promises without training: every d has cells at
    m <= d and at m > d, the heads divide every d, n = m, and the paper's setting is named."""
    import inspect

    from cli.commands_count import sweep as command
    from interp.analysis.counting import SweepConfig, parse_int_list
    from interp.reproductions.counting import CountingPaper

    cli = inspect.signature(command).parameters
    lib = SweepConfig()
    names = {"d_values": "d", "m_values": "m", "n_layers": "layers", "n_heads": "heads",
             "positional": "pe", "warmup_steps": "warmup"}  # fmt: skip
    checked = 0
    for field in ("task", "d_values", "m_values", "n", "n_factor", "sampling", "query",
                  "n_layers", "n_heads", "mlp_ratio", "positional", "steps", "batch_size", "lr",
                  "weight_decay", "warmup_steps", "eval_samples", "threshold", "seed", "batched",
                  "device"):  # fmt: skip
        default = cli[names.get(field, field)].default
        if field in ("d_values", "m_values"):
            default = parse_int_list(default, field)
        assert default == getattr(lib, field), field
        checked += 1
    assert checked == 21
    lib.validate()  # heads divide every d, the grid is legal
    assert all(d % lib.n_heads == 0 for d in lib.d_values)
    assert lib.n is None and lib.n_factor == 1
    assert [lib.task_for(m).n for m in lib.m_values] == list(lib.m_values)  # n = m
    for d in lib.d_values:  # the drop at m > d is testable for every width
        assert any(m <= d for m in lib.m_values) and any(m > d for m in lib.m_values), d
    text = " ".join(invoke("count", "sweep", "--help").stdout.split())
    grid = f"d {','.join(map(str, lib.d_values))} x m {','.join(map(str, lib.m_values))}"
    assert grid in text and f"{lib.steps:,} steps" in text
    assert "reproduce counting --scale paper" in text  # the paper's setting, one option away
    paper = CountingPaper().sweep
    assert (paper.n_factor, paper.n_heads, paper.batch_size, paper.lr) == (10, 4, 16, 1e-4)
    for flag in ("--n-factor 10", "--heads 4", "--batch-size 16", "--lr 1e-4", "--warmup 0",
                 "--steps 100000"):  # fmt: skip
        assert flag in text, flag
