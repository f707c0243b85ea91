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
    assert resources.free_disk(tmp_path / "a" / "b") == resources.free_disk(tmp_path)
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
    result = runner.invoke(app, ["count", "sweep", "--d", "8", "--m", "4", "--out", str(out)])
    _refused(result, r"the sweep of 1 models needs ~.* of memory, only 1.0 MiB available")
    assert not out.exists()


def test_grok_sweep_of_a_million_runs_is_refused(tmp_path) -> None:
    out = tmp_path / "grok"
    args = ["grok", "sweep", "--p", "997", "--seeds", "100000", "--out", str(out)]
    _refused(runner.invoke(app, args), r"the sweep of 900000 runs needs ~.* of memory")
    assert not out.exists()
