"""Preflight: long commands state their needs and refuse, in one line, what cannot fit."""

from __future__ import annotations

import re

import pytest
from helpers import tiny_model
from typer.testing import CliRunner

from cli.main import app
from interp import resources
from interp.errors import InterpError

runner = CliRunner()


def _refused(result, fragment: str) -> str:
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert "Traceback" not in result.output
    assert re.search(fragment, lines[0]), lines[0]
    return lines[0]


def test_readings_are_real(tmp_path) -> None:
    assert resources.free_disk(tmp_path) > 0
    # a directory not made yet is measured on the file system that will hold it
    # (other processes write meanwhile: the two readings agree up to what they wrote)
    deeper, here = resources.free_disk(tmp_path / "a" / "b"), resources.free_disk(tmp_path)
    assert abs(deeper - here) < 256 * 2**20
    assert not (tmp_path / "a").exists()
    info = resources.memory_info()
    assert 0 < info["available_bytes"] <= info["total_bytes"]
    assert resources.human_bytes(3 * 2**30) == "3.0 GiB"
    assert resources.human_bytes(512) == "512 B"


def test_preflight_fits_and_refuses(tmp_path, monkeypatch) -> None:
    line = resources.preflight(5 * 2**20, 12 * 2**20, "training", tmp_path)
    assert line == "training needs ~12.0 MiB memory, ~5.0 MiB disk"
    with pytest.raises(
        InterpError, match=r"training needs ~1024.0 TiB of memory, only .* available"
    ):
        resources.preflight(0, 2**50, "training", tmp_path)
    monkeypatch.setattr(resources, "free_disk", lambda path: 2**30)
    with pytest.raises(InterpError) as e:
        resources.preflight(3 * 2**30, 0, "the sweep", tmp_path / "new")
    assert str(e.value) == f"the sweep needs ~3.0 GiB of disk at {tmp_path}, only 1.0 GiB free"
    # unreadable quantities are not checked
    monkeypatch.setattr(resources, "free_disk", lambda path: None)
    monkeypatch.setattr(resources, "available_memory", lambda: None)
    assert resources.preflight(2**60, 2**60, "x", tmp_path).startswith("x needs ~")


def test_train_estimate_counts_adamw_checkpoints() -> None:
    from interp.config import ModelConfig
    from interp.models import HookedTransformer

    cfg = ModelConfig(n_layers=2, d_model=16, n_heads=2, d_mlp=32, n_ctx=12, d_vocab=20)
    real = sum(p.numel() for p in HookedTransformer(cfg).parameters())
    est = resources.transformer_params(2, 16, 32, 20, 12)
    assert 0.8 * real <= est <= 1.3 * real, (est, real)
    disk, mem = resources.train_estimate(2, 16, 32, 2, 20, 12, batch_size=8, checkpoints_kept=2)
    assert disk >= est * 4 * 3 * 2  # weights + two AdamW moments, per checkpoint kept
    assert mem >= est * 4 * 4 + 4 * 8 * 12 * 16 * 2  # weights, grads, AdamW + activations
    # activations grow with the batch
    assert resources.train_estimate(2, 16, 32, 2, 20, 12, batch_size=800)[1] > 10 * mem


def test_collapse_estimate_on_a_model() -> None:
    model = tiny_model()
    disk, mem = resources.collapse_estimate(model, n_formats=5, passes_per_format=2, max_length=12)
    assert mem > 2 * resources.model_bytes(model) and disk > 0


def test_train_too_big_is_refused_before_any_output(tmp_path) -> None:
    out = tmp_path / "run"
    args = ["train", "--task", "copy", "--layers", "64", "--d-model", "65536", "--out", out]
    result = runner.invoke(app, [str(a) for a in args])
    _refused(result, r"^error: training needs ~[\d.]+ TiB of memory, only .* available")
    assert not out.exists()


def test_train_disk_refusal_and_estimate_line(tmp_path, monkeypatch) -> None:
    out = tmp_path / "run"
    small = ["train", "--task", "copy", "-o", "length=3", "-o", "vocab=5", "--layers", "1"]
    small += ["--d-model", "16", "--heads", "2", "--steps", "4", "--eval-every", "2"]
    small += ["--no-report", "--out", str(out)]
    monkeypatch.setattr(resources, "free_disk", lambda path: 1000)
    line = _refused(runner.invoke(app, small), r"of disk at .*, only 1000 B free$")
    assert str(tmp_path) in line and not out.exists()
    monkeypatch.undo()
    result = runner.invoke(app, small)
    assert result.exit_code == 0, result.output
    assert re.search(r"training needs ~[\d.]+ \w+ memory, ~[\d.]+ \w+ disk", result.output)


def test_count_sweep_beyond_memory_is_refused(tmp_path, monkeypatch) -> None:
    out = tmp_path / "sweep"
    monkeypatch.setattr(resources, "available_memory", lambda: 2**20)
    args = ["count", "sweep", "--d", "8", "--m", "4", "--heads", "4", "--n-factor", "10",
            "--batch-size", "16", "--out", str(out)]  # fmt: skip
    result = runner.invoke(app, args)  # the former defaults' model and batch, given
    _refused(result, r"the sweep of 1 models needs ~.* of memory, only 1.0 MiB available")
    assert not out.exists()


def test_grok_sweep_of_a_million_runs_is_refused(tmp_path) -> None:
    out = tmp_path / "grok"
    args = ["grok", "sweep", "--p", "997", "--seeds", "0..999", "--out", str(out)]
    _refused(runner.invoke(app, args), r"the sweep of 9000 runs needs ~.* of memory")
    assert not out.exists()


# --------------------------------------------------------------------------- hostile sizes
# Each of these allocated or ran before anything checked it (a MemoryError, a RuntimeError from
# the allocator, or hours of work); now each is one line and nothing is written.

HUGE_REQUESTS = {
    "pe-bench model": (
        ["pe-bench", "--d-model", "1000000"],
        r"the benchmark of 15 models needs ~.* TiB of memory",
    ),
    "pe-bench evaluation": (
        ["pe-bench", "--eval-sequences", "1000000000"],
        r"--eval-sequences 1000000000 is above the limit of 10,000,000",
    ),
    "pe-bench seed list": (
        ["pe-bench", "--seeds", ",".join(["1"] * 1001)],
        r"--seeds: 1001 values, more than the limit of 1,000",  # every list option's words
    ),
    "precache model": (
        ["precache", "--d-model", "1000000"],
        r"training 4 twins needs ~.* TiB of memory",
    ),
    "precache seeds": (
        ["precache", "--seeds", "1000000"],
        r"--seeds 1000000: the comparison of 2000000 is above the limit of 10,000 models",
    ),
    "count sweep evaluation": (
        ["count", "sweep", "--d", "4", "--m", "4", "--eval-samples", "1000000000"],
        r"--eval-samples 1000000000 is above the limit",
    ),
    "count sweep range": (
        ["count", "sweep", "--d", "1..1000000000", "--m", "4"],
        r"--d: 1000000000 values, more than the limit of 1,000",
    ),
    "count sweep grid": (
        ["count", "sweep", "--d", "4..4000:4", "--heads", "1", "--m", "2..101"],
        r"the --d x --m grid of 100000 is above the limit of 10,000 models",
    ),
    "count construct samples": (
        ["count", "construct", "--samples", "1000000000"],
        r"--samples 1000000000 is above the limit",
    ),
    "train steps": (
        ["train", "--task", "copy", "--steps", "1000000000"],
        r"--steps 1000000000 is above the limit of 100,000,000 steps",
    ),
    "demo steps": (["demo", "--steps", str(2**40)], r"--steps \d+ is above the limit"),
    "grok modulus": (["grok", "--p", "100003"], r"the run needs ~.* TiB of memory"),
    "grok width": (["grok", "--width", "100000000"], r"the run needs ~.* of memory"),
    "grok sweep seeds": (
        ["grok", "sweep", "--seeds", str(2**40)],
        r"--seeds 1099511627776 is above the limit of 10,000 runs",
    ),
    "grok sweep widths": (
        ["grok", "sweep", "--widths", ",".join(["4"] * 1001)],
        r"--widths with 1001 is above the limit",
    ),
    "probe tokens": (["probe", "--tokens", "100000000000"], r"--tokens \d+ is above the limit"),
    "probe layer range": (
        ["probe", "--layers", "0-100000000000"],
        r"--layers with 100000000001 is above the limit of 1,000 values",
    ),
}


@pytest.mark.parametrize("name", list(HUGE_REQUESTS))
def test_huge_requests_are_refused_in_one_line(tmp_path, monkeypatch, name) -> None:
    args, fragment = HUGE_REQUESTS[name]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(resources, "available_memory", lambda: 8 * 2**30)
    out = tmp_path / "out"
    takes_out = args[0] not in ("demo",) and args[:2] != ["count", "construct"]
    result = runner.invoke(app, [*args, *(["--out", str(out)] if takes_out else [])])
    _refused(result, fragment)
    assert not out.exists() and not (tmp_path / "runs").exists()


def test_squash_length_beyond_the_context_is_refused_before_building_prompts() -> None:
    from interp.analysis.sensitivity import SquashConfig, run_squash

    with pytest.raises(InterpError, match="--length 1000000000 is beyond the model context"):
        run_squash(tiny_model(), SquashConfig(prompts=("copy-first",), length=10**9))


def test_ranges_are_counted_before_they_are_built() -> None:
    from interp.analysis.counting import parse_int_list
    from probes.run import parse_layers

    assert resources.range_size(4, 64, 4) == 16 and resources.range_size(5, 4) == 0
    assert parse_int_list("4..12:4,2", "--d") == (2, 4, 8, 12)
    with pytest.raises(InterpError, match="more than the limit of 1,000"):
        parse_int_list(f"1..{2**70}", "--d")
    with pytest.raises(InterpError, match="above the limit of 1,000 values"):
        parse_layers(f"0-{2**70}")
    assert parse_layers("1-3") == (1, 2, 3)


def test_new_estimates_grow_with_what_they_hold() -> None:
    base = resources.pe_bench_estimate(2, 64, 256, 4, 10, 64, 32, 256, 15)
    assert resources.pe_bench_estimate(2, 64, 256, 4, 10, 64, 32, 10**6, 15)[1] > 100 * base[1]
    assert (
        resources.squash_estimate(2, 64, 256, 4, 1024)[1]
        > resources.squash_estimate(2, 64, 256, 4, 32)[1] * 100
    )
    # future-lens statistics: fit + val X^T X and X^T Y (d x h d) in float64, per layer
    assert resources.probe_stats_estimate(768, 13, 4) >= 2 * 13 * 8 * 768 * 768 * 5
