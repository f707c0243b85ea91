"""Crash safety: runs and sweeps killed with SIGKILL at random moments resume to the same result.

The killed processes run the real CLI entry point.  Most are forked from the test process (a
separate process killed with SIGKILL: no ``finally``, no ``atexit``, files left exactly as the
kill found them) so that they do not pay torch's import again; one test launches
``python -m cli.main`` itself.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from killing import (
    assert_nothing_truncated,
    fork_cli,
    kill_when,
    n_rows,
    run_cli,
    same_weights,
    strip,
)
from safetensors.torch import load_file
from typer.testing import CliRunner

import interp.analysis.counting  # noqa: F401 - imported before forking, see warm_up
import interp.train.batched  # noqa: F401
import interp.train.job  # noqa: F401
from cli.main import app
from interp.io import read_jsonl

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")

ROOT = Path(__file__).resolve().parents[1]

TRAIN = [
    "train", "--task", "copy", "-o", "length=4", "-o", "vocab=6", "--layers", "1",
    "--d-model", "16", "--heads", "2", "--d-mlp", "32", "--steps", "24", "--batch-size", "8",
    "--eval-every", "4", "--checkpoint-every", "3", "--warmup", "5", "--seed", "3",
    "--no-report",
]  # fmt: skip

SWEEP = [
    "count", "sweep", "--task", "qc", "--d", "8,12", "--m", "2,3,4", "--n-factor", "3",
    "--layers", "1", "--heads", "2", "--mlp-ratio", "1", "--steps", "12", "--batch-size", "4",
    "--warmup", "2", "--eval-samples", "16",
]  # fmt: skip


@pytest.fixture(scope="module")
def train_reference(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ref") / "run"
    assert run_cli([*TRAIN, "--out", str(out)]) == 0
    return out


def _check_equal_to_reference(run: Path, ref: Path) -> None:
    same_weights(run / "model.safetensors", ref / "model.safetensors")
    assert strip(read_jsonl(run / "metrics.jsonl")) == strip(read_jsonl(ref / "metrics.jsonl"))
    assert strip(json.loads((run / "config.json").read_text())) == strip(
        json.loads((ref / "config.json").read_text())
    )


# ----------------------------------------------------------------------------- train
def test_train_killed_at_random_moments_resumes_bit_identical(tmp_path, train_reference):
    """SIGKILL at seeded random moments (before any file, mid-run, during checkpoint writes),
    then ``--resume`` until done: same weights and exactly the same metrics rows."""
    rng = random.Random(1234)
    run = tmp_path / "run"
    metrics = run / "metrics.jsonl"
    # (wait until metrics has >= rows more, then jitter): 9 rows in all, one every 2-4 steps,
    # a checkpoint every 3, so small jitters land inside checkpoint and metrics writes
    plan = [(0, 0.0)] + [(rng.randint(1, 3), rng.uniform(0.0, 0.03)) for _ in range(5)]
    kills = 0
    for rows, jitter in plan:
        args = [*TRAIN, "--out", str(run)] + (["--resume"] if run.exists() else [])
        pid = fork_cli(args)
        if rows == 0:
            ready = lambda: True  # noqa: E731
        else:
            floor = n_rows(metrics)
            ready = lambda floor=floor, rows=rows: n_rows(metrics) >= min(floor + rows, 9)  # noqa: E731
        kills += kill_when(pid, ready, jitter)
        if run.exists():
            assert_nothing_truncated(run)
    assert kills >= 3, "too few kills landed before the run finished"
    assert run_cli([*TRAIN, "--out", str(run), "--resume"]) == 0
    _check_equal_to_reference(run, train_reference)


def test_train_killed_before_its_first_checkpoint_starts_over(tmp_path, train_reference):
    # (a) killed before config.json: only a temporary file of an atomic write is left
    blank = tmp_path / "blank"
    blank.mkdir()
    (blank / ".config.json.x1y2.tmp").write_text('{"kind": "tr')
    assert run_cli([*TRAIN, "--out", str(blank), "--resume"]) == 0
    _check_equal_to_reference(blank, train_reference)
    # (b) killed after a few metrics rows but before the first checkpoint
    early = tmp_path / "early"
    early.mkdir()
    (early / "config.json").write_bytes((train_reference / "config.json").read_bytes())
    first = (train_reference / "metrics.jsonl").read_text().splitlines()[0]
    (early / "metrics.jsonl").write_text(first + "\n" + first[:17])  # and a torn row
    assert run_cli([*TRAIN, "--out", str(early), "--resume"]) == 0
    _check_equal_to_reference(early, train_reference)


def test_existing_run_dir_is_refused_without_resume(tmp_path, train_reference):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_bytes((train_reference / "config.json").read_bytes())
    (run / "notes.txt").write_text("mine")
    result = CliRunner().invoke(app, [*TRAIN, "--out", str(run)])
    assert result.exit_code == 2
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "already exists" in errors[0] and "--resume" in errors[0]
    assert "Traceback" not in result.output
    assert (run / "notes.txt").read_text() == "mine" and not (run / "metrics.jsonl").exists()
    # a directory that is not a run is not resumed (nor overwritten) either
    other = tmp_path / "other"
    other.mkdir()
    (other / "data.csv").write_text("1,2\n")
    result = CliRunner().invoke(app, [*TRAIN, "--out", str(other), "--resume"])
    assert result.exit_code == 2 and "no config.json" in result.output
    result = CliRunner().invoke(app, [*TRAIN, "--out", str(other), "--overwrite"])
    assert result.exit_code == 2 and "not a run directory" in result.output
    assert [p.name for p in other.iterdir()] == ["data.csv"]


def test_real_subprocess_sigkill_then_resume(tmp_path, train_reference):
    """``python -m cli.main train`` itself, SIGKILLed once a checkpoint exists."""
    run = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli.main", *TRAIN, "--out", str(run)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    t0 = time.monotonic()
    while not (run / "checkpoints" / "latest.json").exists():
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.monotonic() - t0 < 240, "the subprocess never wrote a checkpoint"
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    proc.stderr.close()
    assert_nothing_truncated(run)
    assert not (run / "model.safetensors").exists(), "killed too late to test anything"
    assert run_cli([*TRAIN, "--out", str(run), "--resume"]) == 0
    _check_equal_to_reference(run, train_reference)


# ----------------------------------------------------------------------------- count sweep
def test_count_sweep_killed_mid_sweep_resumes_to_the_same_results(tmp_path):
    ref = tmp_path / "ref"
    assert run_cli([*SWEEP, "--out", str(ref)]) == 0
    rng = random.Random(99)
    run = tmp_path / "run"
    cells = run / "cells"
    kills = 0
    for target in (1, 2, 4):
        args = [*SWEEP, "--out", str(run)] + (["--resume"] if run.exists() else [])
        pid = fork_cli(args)
        ready = lambda t=target: cells.is_dir() and len(list(cells.glob("d*.json"))) >= t  # noqa: E731
        kills += kill_when(pid, ready, rng.uniform(0.0, 0.02))
        if run.exists():
            assert_nothing_truncated(run)
    assert kills >= 2
    assert run_cli([*SWEEP, "--out", str(run), "--resume"]) == 0
    a = json.loads((ref / "results.json").read_text())
    b = json.loads((run / "results.json").read_text())
    assert strip(a) == strip(b)
    # the state a kill between two cell writes of one batched group leaves (deterministic)
    mid = tmp_path / "mid"
    shutil.copytree(ref, mid)
    (mid / "results.json").unlink()
    (mid / "cells" / "d0008_m0003.json").unlink()
    (mid / "cells" / ".pending.json").write_text("[[8, 2], [8, 3], [8, 4]]")
    assert run_cli([*SWEEP, "--out", str(mid), "--resume"]) == 0
    c = json.loads((mid / "results.json").read_text())
    assert strip(a) == strip(c)


# ----------------------------------------------------------------------------- numerical faults
class _PoisonGrad(torch.autograd.Function):
    """Identity forward; the backward multiplies the gradient by ``factor`` (nan or inf)."""

    @staticmethod
    def forward(ctx, x, factor):
        ctx.factor = factor
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return grad * ctx.factor, None


@pytest.mark.parametrize(
    "where, value, message",
    [
        ("loss", float("nan"), r"loss is nan at step 7"),
        ("grad", float("nan"), r"gradient norm is nan at step 7"),
        # inf * 0 inside the backward makes some entries nan: the norm is nan or inf
        ("grad", float("inf"), r"gradient norm is (inf|nan) at step 7"),
    ],
)
def test_non_finite_loss_or_gradient_stops_the_cli(tmp_path, monkeypatch, where, value, message):
    from interp.train import loop

    calls = {"n": 0}
    real = loop.masked_mean

    def poisoned(loss, mask):
        out = real(loss, mask)
        calls["n"] += 1
        if calls["n"] == 8:  # the 8th training step is step 7 (no evaluation runs this one)
            return out * value if where == "loss" else _PoisonGrad.apply(out, value)
        return out

    monkeypatch.setattr(loop, "masked_mean", poisoned)
    run = tmp_path / "run"
    args = [*TRAIN, "--steps", "12", "--eval-every", "100", "--out", str(run)]
    result = CliRunner().invoke(app, args)
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert result.exit_code == 2 and len(errors) == 1, result.output
    assert re.search(message, errors[0]) and "last checkpoint kept" in errors[0]
    assert "Traceback" not in result.output
    from interp.train.checkpoint import latest_checkpoint

    ckpt = latest_checkpoint(run)
    assert ckpt is not None and ckpt.step == 6  # checkpoints every 3 steps: 3, 6
    for tensor in load_file(str(ckpt.path / "model.safetensors")).values():
        assert torch.isfinite(tensor).all()
    assert not (run / "model.safetensors").exists()
    assert all(r["step"] <= 7 for r in read_jsonl(run / "metrics.jsonl"))
