"""Killing a CLI run at a chosen moment, and checking what it left (shared by the
kill-and-resume tests).

Children are forked from the test process, so they start training at once (a fresh
``python -m cli.main`` pays seconds of imports), and ``_warm_up`` imports what the commands
import lazily before any fork.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import torch
from safetensors.torch import load_file

import interp.analysis.counting  # noqa: F401 - imported before forking, see _warm_up
import interp.train.batched  # noqa: F401
import interp.train.job  # noqa: F401

TIMING = {"elapsed", "train_seconds", "seconds", "created", "steps_per_second", "runs_per_second"}


def warm_up() -> None:
    """Import what the commands import lazily (torch._dynamo alone takes seconds on a loaded
    machine), so that forked children start training at once."""
    import torch._dynamo  # noqa: F401
    import torch.func  # noqa: F401

    torch.optim.AdamW([torch.zeros(1, requires_grad=True)])
    torch.set_num_threads(1)  # as the subprocess (OMP_NUM_THREADS=1): same float rounding


warm_up()


def fork_cli(args: list[str]) -> int:
    """Run ``interp ARGS`` in a forked child (stdout/stderr to /dev/null); return its pid."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 70
        try:
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, 1)
            os.dup2(null, 2)
            sys.argv = ["interp", *args]
            from cli.main import main

            main()
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
        except BaseException:
            code = 71
        finally:
            os._exit(code)
    return pid


def wait(pid: int) -> int:
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def run_cli(args: list[str]) -> int:
    return wait(fork_cli(args))


def kill_when(pid: int, ready, jitter: float, timeout: float = 60.0) -> bool:
    """SIGKILL ``pid`` ``jitter`` seconds after ``ready()`` holds; False if it exited first."""
    t0 = time.monotonic()
    while not ready():
        if os.waitpid(pid, os.WNOHANG)[0] != 0:
            return False  # finished (or died) by itself: already reaped
        if time.monotonic() - t0 > timeout:
            break
        time.sleep(0.001)
    time.sleep(jitter)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    code = wait(pid)
    return code == -signal.SIGKILL


def n_rows(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def strip(obj):
    """Drop wall-clock fields (they differ between any two runs)."""
    if isinstance(obj, dict):
        return {k: strip(v) for k, v in obj.items() if k not in TIMING}
    if isinstance(obj, list):
        return [strip(v) for v in obj]
    return obj


def assert_nothing_truncated(run: Path) -> None:
    """After a kill: every visible JSON parses, every checkpoint a resume could pick loads,
    and metrics.jsonl has at most a torn last line."""
    for p in run.rglob("*.json"):
        if not any(part.startswith(".") for part in p.relative_to(run).parts):
            json.loads(p.read_text())
    for p in run.glob("checkpoints/step_*/*.safetensors"):
        load_file(str(p))
    if (run / "model.safetensors").exists():
        load_file(str(run / "model.safetensors"))
    lines = (
        (run / "metrics.jsonl").read_bytes().split(b"\n")
        if (run / "metrics.jsonl").exists()
        else []
    )
    for line in lines[:-1]:
        json.loads(line)


def same_weights(a: Path, b: Path) -> None:
    wa, wb = load_file(str(a)), load_file(str(b))
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.equal(wa[k], wb[k]), f"{k} differs after kill-and-resume"
