"""Data parallelism on torch.distributed (#18): ``torchrun --nproc-per-node 2`` (gloo, CPU)
against one process, for training (DDP, vanilla and myopic, resume) and probe statistics.

Both sides run as subprocesses with one thread each (``OMP_NUM_THREADS=1``), so that the only
difference is the split over processes; the launcher listens on 127.0.0.1 only.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from interp import distributed

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 300

TASK_TRAIN = (
    "train --task copy -o length=3 -o vocab=5 --steps 6 --eval-every 3 --checkpoint-every 3 "
    "--layers 1 --d-model 16 --heads 2 --batch-size 8 --no-report"
).split()
TEXT_TRAIN = (
    "train --corpus builtin:prose --max-chars 30000 --tokenizer byte --ctx 16 --grad myopic "
    "--steps 6 --eval-every 3 --checkpoint-every 3 --layers 1 --d-model 16 --heads 2 "
    "--d-mlp 32 --batch-size 4 --no-report"
).split()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS="1", MASTER_ADDR="127.0.0.1", HF_HUB_OFFLINE="1")
    env.pop("WORLD_SIZE", None)
    return env


def _run(nproc: int, *args: object, module: str = "cli.main") -> subprocess.CompletedProcess:
    """``interp ARGS`` (or a script) under torchrun with ``nproc`` processes, or alone (0)."""
    target = ["-m", module] if module else []
    if nproc:
        port = _free_port()
        cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={nproc}",
               "--master-addr=127.0.0.1", f"--master-port={port}", *target]  # fmt: skip
    else:
        cmd = [sys.executable, *target]
    result = subprocess.run(
        [*cmd, *map(str, args)], cwd=ROOT, env=_env(), capture_output=True, text=True,
        timeout=TIMEOUT,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def _max_diff(a: Path, b: Path) -> float:
    wa, wb = load_file(a), load_file(b)
    assert wa.keys() == wb.keys()
    return max(float((wa[k] - wb[k]).abs().max()) for k in wa)


def _losses(run: Path) -> list[tuple[int, str, float]]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [(r["step"], r["split"], r["loss"]) for r in rows]


def test_one_process_helpers_are_no_ops(monkeypatch) -> None:
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert not distributed.is_distributed()
    assert (distributed.rank(), distributed.world_size(), distributed.is_main()) == (0, 1, True)
    t = torch.arange(3.0)
    distributed.all_reduce_sum([t])
    assert t.tolist() == [0.0, 1.0, 2.0]
    assert distributed.broadcast_object({"a": 1}) == {"a": 1}
    assert distributed.shard(10, 4) == [0, 1, 2]
    distributed.barrier()


def test_two_process_training_equals_one_process(tmp_path) -> None:
    """The same global batch of 8 split 4 + 4 over two ranks: weights and every logged loss."""
    _run(0, *TASK_TRAIN, "--out", tmp_path / "one")
    out = _run(2, *TASK_TRAIN, "--out", tmp_path / "two")
    assert out.stdout.count("validation loss") == 1  # rank 0 alone reports
    assert _max_diff(tmp_path / "one/model.safetensors", tmp_path / "two/model.safetensors") < 1e-5
    one, two = _losses(tmp_path / "one"), _losses(tmp_path / "two")
    assert [r[:2] for r in one] == [r[:2] for r in two]
    assert all(abs(a[2] - b[2]) < 1e-5 for a, b in zip(one, two, strict=True))
    ckpts = sorted(p.name for p in (tmp_path / "two/checkpoints").glob("step_*"))
    assert ckpts == ["step_0000003", "step_0000006"]


def test_two_process_myopic_training_resumes_bit_identically(tmp_path) -> None:
    """Myopic gradients under DDP equal one process; a resume from step 3 on the same world
    size ends bit-identical to the uninterrupted two-process run, on one process within 1e-5."""
    _run(0, *TEXT_TRAIN, "--out", tmp_path / "one")
    _run(2, *TEXT_TRAIN, "--out", tmp_path / "two")
    assert _max_diff(tmp_path / "one/model.safetensors", tmp_path / "two/model.safetensors") < 1e-5
    shutil.copytree(tmp_path / "two", tmp_path / "cut")
    shutil.rmtree(tmp_path / "cut/checkpoints/step_0000006")  # as if killed after step 3
    (tmp_path / "cut/checkpoints/latest.json").unlink(missing_ok=True)
    (tmp_path / "cut/model.safetensors").unlink()
    _run(2, *TEXT_TRAIN, "--resume", "--out", tmp_path / "cut")
    cut, two = tmp_path / "cut/model.safetensors", tmp_path / "two/model.safetensors"
    assert _max_diff(cut, two) == 0.0
    assert _losses(tmp_path / "cut") == _losses(tmp_path / "two")
    assert json.loads((tmp_path / "cut/results.json").read_text())["resumed_from"] == 3
    # the same checkpoint resumed on one process: the same global batches, not bit-identical
    shutil.copytree(tmp_path / "two", tmp_path / "alone")
    shutil.rmtree(tmp_path / "alone/checkpoints/step_0000006")
    (tmp_path / "alone/checkpoints/latest.json").unlink(missing_ok=True)
    _run(0, *TEXT_TRAIN, "--resume", "--out", tmp_path / "alone")
    assert _max_diff(tmp_path / "alone/model.safetensors", two) < 1e-5


@pytest.fixture(scope="module")
def probe_model(tmp_path_factory) -> Path:
    from cli_helpers import invoke

    run = tmp_path_factory.mktemp("model") / "run"
    args = [a for a in TEXT_TRAIN if a not in ("--grad", "myopic")]
    result = invoke(*args, "--out", run)
    assert result.exit_code == 0, result.output
    return run


def _relative(a: torch.Tensor, b: torch.Tensor) -> float:
    scale = max(float(a.abs().max()), float(b.abs().max()), 1e-300)
    return float((a - b).abs().max()) / scale


def test_two_process_probe_statistics_equal_one_process(tmp_path, probe_model) -> None:
    """XᵀX, XᵀY, sums, counts (and the n-gram counts) of 2 ranks summed equal one process's
    within 1e-9 relative (float64 sums in another order), with float64 products and with
    float32 ones (shifted by the means of the phase's first batch on every rank)."""
    script = ROOT / "tests/distributed_probe_stats.py"
    one, two = tmp_path / "one.safetensors", tmp_path / "two.safetensors"
    _run(0, script, probe_model, one, module="")
    _run(2, script, probe_model, two, module="")
    a, b = load_file(one), load_file(two)
    assert a.keys() == b.keys()
    assert not bool(a["float64.products_float32"]) and bool(a["float32.products_float32"])
    assert float(a["float32.train.0.shift_x"].abs().max()) > 0  # the float32 path shifts
    for key in a:
        if key.endswith((".n", "unigram", "products_float32")) or "shift" in key:
            assert torch.equal(a[key], b[key]), key
        else:
            assert _relative(a[key], b[key]) < 1e-9, key


def test_two_process_probe_run_equals_one_process(tmp_path, probe_model) -> None:
    """``interp probe`` under torchrun: rank 0 writes the run, its numbers equal one process's
    within 1e-9 relative (timings aside); stdout holds one JSON document."""
    args = ["probe", "--model", probe_model, "--horizon", "2", "--tokens", "3000", "--seq-len",
            "16", "--batch-size", "4", "--no-report", "--json"]  # fmt: skip
    _run(0, *args, "--out", tmp_path / "one")
    out = _run(2, *args, "--out", tmp_path / "two")
    assert json.loads(out.stdout)["kind"] == "probe"
    a = json.loads((tmp_path / "one/results.json").read_text())
    b = json.loads((tmp_path / "two/results.json").read_text())
    worst = _compare(a, b, "")
    assert worst < 1e-9


def _compare(x: object, y: object, path: str) -> float:
    """Largest relative difference of the numbers of two results (timings skipped)."""
    if any(word in path for word in ("timing", "per_s", "seconds")):
        return 0.0
    if isinstance(x, dict):
        assert isinstance(y, dict) and x.keys() == y.keys(), path
        return max((_compare(x[k], y[k], f"{path}/{k}") for k in x), default=0.0)
    if isinstance(x, list):
        assert isinstance(y, list) and len(x) == len(y), path
        return max(
            (_compare(u, v, f"{path}[{i}]") for i, (u, v) in enumerate(zip(x, y, strict=True))),
            default=0.0,
        )
    if isinstance(x, float) and isinstance(y, float):
        return abs(x - y) / max(abs(x), abs(y), 1e-300)
    assert x == y, path
    return 0.0


PRECACHE = ["precache", "--task", "precache", "-o", "length=8", "-o", "window=3", "--layers",
            "1", "--d-model", "16", "--heads", "2", "--d-mlp", "32", "--steps", "20",
            "--batch-size", "8", "--eval-every", "10", "--seeds", "0,", "--warmup", "2"]  # fmt: skip


def _floats(value, path=""):
    """Every float of a results document, by path (timings left out)."""
    if isinstance(value, dict):
        for k, v in value.items():
            if "second" not in k:
                yield from _floats(v, f"{path}/{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _floats(v, f"{path}/{i}")
    elif isinstance(value, float):
        yield path, value


def test_two_process_precache_twins_equal_one_process(tmp_path) -> None:
    """precache under torchrun: each twin trains data-parallel (rank 0 writes), every rank
    evaluates the same twins; the results equal one process's within 1e-5 (4e-8 measured)."""
    _run(0, *PRECACHE, "--out", tmp_path / "one")
    out = _run(2, *PRECACHE, "--out", tmp_path / "two")
    assert out.stdout.count("Myopic vs vanilla") == 1  # rank 0 alone reports
    one = json.loads((tmp_path / "one/results.json").read_text())
    two = json.loads((tmp_path / "two/results.json").read_text())
    assert one["verdict"]["label"] == two["verdict"]["label"]
    a, b = dict(_floats(one)), dict(_floats(two))
    assert a.keys() == b.keys() and max(abs(a[k] - b[k]) for k in a) < 1e-5


def test_experiments_without_data_parallelism_refuse_under_torchrun(tmp_path) -> None:
    # (torchrun reads abbreviations of its own options: "--d" would be its "--duplicate-...")
    args = "count sweep --task qc".split()
    port = _free_port()
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node=2",
           "--master-addr=127.0.0.1", f"--master-port={port}", "-m", "cli.main", *args,
           "--out", str(tmp_path / "sweep")]  # fmt: skip
    result = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True,
                            timeout=TIMEOUT)  # fmt: skip
    assert result.returncode != 0
    assert "count-sweep runs in one process; launch it without torchrun" in result.stderr
    assert not (tmp_path / "sweep").exists()
