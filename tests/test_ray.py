"""``--executor ray`` (#18 item 2): a Ray local cluster trains a sweep's groups as tasks and this
process writes their cells; the cells equal the local executor's bit for bit (both train with
one thread: the local sweeps here run under ``torch.set_num_threads(1)``, as ``tests/killing.py``
sets, and a Ray task runs one thread, so the float sums are the same ones); a Ray sweep killed
mid-way resumes on Ray or locally to the same cells, and a local one resumes on Ray.

The tests that need Ray skip, with their reason, without the extra (``pip install -e
'.[ray]'``); they share one Ray session (``ray.init(num_cpus=2)``, ~10 s to start).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import assert_one_line_error, invoke
from killing import fork_cli, kill_when, strip

from interp.executors import RAY_EXTRA

ROOT = Path(__file__).resolve().parents[1]
GROK = ["grok", "sweep", "--p", "11", "--weight-decays", "0,1", "--train-fractions", "0.4",
        "--widths", "8,10,12,14", "--seeds", "0..1", "--steps", "100", "--log-every", "25",
        "--checkpoint-every", "25", "--no-report"]  # fmt: skip
COUNT = ["count", "sweep", "--d", "8,16", "--m", "2,3", "--heads", "2", "--n-factor", "2",
         "--steps", "4", "--eval-samples", "20"]  # fmt: skip


@pytest.fixture(scope="module")
def ray_cluster():
    """One local Ray cluster of 2 CPUs for the module; its address (for a CLI subprocess)."""
    ray = pytest.importorskip(
        "ray", reason="the ray extra is not installed: pip install -e '.[ray]'"
    )
    import logging

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             logging_level=logging.WARNING)  # fmt: skip
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


def cells(run: Path) -> dict[str, object]:
    """Every saved cell, wall-clock fields dropped."""
    return {
        p.name: strip(json.loads(p.read_text())) for p in sorted((run / "cells").glob("*.json"))
    }


def test_ray_sweeps_equal_local(ray_cluster, tmp_path) -> None:
    for args, n in ((GROK, 4), (COUNT, 4)):
        local, on_ray = tmp_path / f"{args[0]}-local", tmp_path / f"{args[0]}-ray"
        assert invoke(*args, "--out", local).exit_code == 0
        result = invoke(*args, "--out", on_ray, "--executor", "ray")
        assert result.exit_code == 0, result.output
        assert len(cells(local)) == n and cells(on_ray) == cells(local)  # bit for bit
        body = lambda run: strip(json.loads((run / "results.json").read_text()))  # noqa: E731
        assert body(on_ray) == body(local)
        env = json.loads((on_ray / "env.json").read_text())
        assert env["world_size"] == 1 and env["executor"]["name"] == "ray"
        assert json.loads((local / "env.json").read_text())["executor"] == {"name": "local"}
        # the executor is no part of the config: a run started on one resumes on the other
        assert (
            json.loads((on_ray / "config.json").read_text()).keys()
            == json.loads((local / "config.json").read_text()).keys()
        )


def _killed_mid_way(pid: int, run: Path) -> None:
    """SIGKILL ``pid`` once the sweep has saved its first group, before its last."""
    ready = lambda: len(list((run / "cells").glob("group_*.json"))) >= 1  # noqa: E731
    assert kill_when(pid, ready, 0.0, timeout=120), "the sweep finished before it was killed"
    assert 1 <= len(cells(run)) < 4, "not killed mid-way"


def _ray_child(out: Path, address: str) -> subprocess.Popen:
    """``interp grok sweep --executor ray`` in a fresh process joining the test's cluster (a
    forked child would share this process's Ray connection)."""
    cmd = [sys.executable, "-m", "cli.main", *GROK, "--out", str(out), "--executor", "ray",
           "--ray-address", address]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip


def test_killed_sweeps_resume_on_either_executor(ray_cluster, tmp_path) -> None:
    reference = tmp_path / "reference"
    assert invoke(*GROK, "--out", reference).exit_code == 0
    # a Ray sweep killed mid-way (SIGKILL of the driver); what it left, copied, resumed locally
    # and on Ray
    killed = tmp_path / "killed-ray"
    child = _ray_child(killed, ray_cluster)
    _killed_mid_way(child.pid, killed)
    child.wait()
    for resume_on in ("local", "ray"):
        run = tmp_path / f"killed-ray-resumed-{resume_on}"
        shutil.copytree(killed, run)
        result = invoke(*GROK, "--out", run, "--resume", "--executor", resume_on)
        assert result.exit_code == 0, result.output
        assert cells(run) == cells(reference)
    # a local sweep killed mid-way (a forked CLI run, killed mid-group: its checkpoint is
    # there), resumed on Ray: the group restarts in its task, to the same cells
    local = tmp_path / "killed-local"
    _killed_mid_way(fork_cli([*GROK, "--out", str(local)]), local)
    result = invoke(*GROK, "--out", local, "--resume", "--executor", "ray")
    assert result.exit_code == 0, result.output
    assert cells(local) == cells(reference)


def test_ray_errors_are_one_line(tmp_path, monkeypatch) -> None:
    out = tmp_path / "run"
    assert_one_line_error(invoke(*COUNT, "--out", out, "--ray-address", "x:1"),
                          "--ray-address needs --executor ray")  # fmt: skip
    assert_one_line_error(invoke(*GROK, "--out", out, "--executor", "dask"),
                          "--executor 'dask' is not one of local, ray")  # fmt: skip
    monkeypatch.setitem(sys.modules, "ray", None)  # the extra not installed
    for args in (GROK, COUNT, ["pe-bench", "--pe", "rope", "--seeds", "0", "--steps", "2"]):
        result = invoke(*args, "--out", out, "--executor", "ray")
        assert_one_line_error(result, re.escape(RAY_EXTRA))
    assert not out.exists()


def test_reproduce_passes_its_executor_to_the_sweeps_inside(tmp_path, monkeypatch) -> None:
    """``interp reproduce --executor ray``: the sweeps it runs (no executor of their own) get
    the ray executor; outside the block they are local again; bad choices are one line before
    anything is written."""
    from interp.executors import LocalExecutor, RayExecutor, default_executor, get_executor

    with default_executor("ray"):
        assert isinstance(get_executor(), RayExecutor)
        assert isinstance(get_executor("local"), LocalExecutor)  # a sweep's own choice wins
    assert isinstance(get_executor(), LocalExecutor)
    out = tmp_path / "r"
    assert_one_line_error(invoke("reproduce", "counting", "--quick", "--executor", "dask",
                                 "--out", out), "--executor 'dask' is not one of")  # fmt: skip
    monkeypatch.setitem(sys.modules, "ray", None)
    assert_one_line_error(invoke("reproduce", "counting", "--quick", "--executor", "ray",
                                 "--out", out), re.escape(RAY_EXTRA))  # fmt: skip
    assert not out.exists()


def test_pe_bench_text_cells_on_ray_equal_local(ray_cluster, tmp_path) -> None:
    """pe-bench's text models are Ray tasks too (one per encoding, the byte data rebuilt in
    the task): the same cells as the local executor's."""
    args = ["pe-bench", "--task", "none", "--text", "--text-pe", "rope,alibi", "--seeds", "0",
            "--text-steps", "3", "--batch-size", "4", "--layers", "1", "--d-model", "16",
            "--heads", "2", "--d-mlp", "16", "--text-ctx", "16", "--text-eval-ctx", "16,32",
            "--text-max-chars", "20000", "--no-report"]  # fmt: skip
    local, on_ray = tmp_path / "local", tmp_path / "ray"
    assert invoke(*args, "--out", local).exit_code == 0
    result = invoke(*args, "--out", on_ray, "--executor", "ray")
    assert result.exit_code == 0, result.output
    assert "2 models as ray tasks" in result.output
    assert len(cells(local)) == 2 and cells(on_ray) == cells(local)


def test_an_address_where_no_cluster_listens_is_one_line_at_once(tmp_path) -> None:
    """Ray retries an unreachable --ray-address for minutes; interp looks first (3 s at most)
    and refuses in one line before anything is written, for a sweep and for reproduce."""
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for args in (GROK, ["reproduce", "counting", "--quick"]):
        out = tmp_path / args[0]
        for address in (f"127.0.0.1:{port}", f"ray://127.0.0.1:{port}"):
            result = invoke(*args, "--out", out, "--executor", "ray", "--ray-address", address)
            assert_one_line_error(result, re.escape(f"--ray-address {address}: no Ray cluster"))
        assert not out.exists()
