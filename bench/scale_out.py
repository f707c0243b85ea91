"""Ray vs local executor for a 16-run grok sweep (4 groups of 4), side by side in one process;
then 2 vs 1 torchrun processes (gloo, one thread each) for training and probe statistics.

    python bench/scale_out.py [--steps 1000] [--widths 8,10,12,14] [--no-ray] [--no-torchrun]

Both sides train the same grid through ``execute`` (the CLI's path) with one thread each (the
local executor trains one group after another here; the Ray executor sends each group to a task
of one CPU on a local cluster of ``os.cpu_count()`` CPUs, whose start is timed apart).  Prints
the wall time of each, the ratio, the Ray overhead per cell (Ray wall minus the ideal split of
the local wall over the CPUs, per cell) and whether the cells are bit-identical.  Needs the ray
extra (``pip install -e '.[ray]'``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from interp.experiments.execute import execute
from interp.experiments.grok_sweep import GrokSweepRun
from interp.grok.config import GrokSweepConfig


def cells(run: Path) -> dict[str, object]:
    return {p.name: json.loads(p.read_text()) for p in sorted((run / "cells").glob("*.json"))}


ROOT = Path(__file__).resolve().parents[1]


def _torchrun(nproc: int, *args: object) -> float:
    """Wall seconds of ``interp ARGS`` under torchrun with ``nproc`` processes (1 thread each)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={nproc}",
           "--master-addr=127.0.0.1", f"--master-port={port}", "-m", "cli.main", *map(str, args)]  # fmt: skip
    t0 = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(done.stdout + done.stderr)
    return time.perf_counter() - t0


def data_parallel(steps: int) -> None:
    """2 vs 1 processes: a training run (global batch 32) and the probe statistics of its model
    (both include each launch's start: imports, process group, the run directory)."""
    print(f"torchrun (gloo, 1 thread per process), {os.cpu_count()} CPUs")
    train = ["train", "--corpus", "builtin:prose", "--max-chars", "200000", "--tokenizer", "byte",
             "--layers", "2", "--d-model", "64", "--heads", "4", "--ctx", "64", "--steps",
             steps, "--batch-size", "32", "--eval-every", steps, "--checkpoint-every", steps,
             "--no-report"]  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        times = {n: _torchrun(n, *train, "--out", Path(tmp) / f"t{n}") for n in (1, 2)}
        print(f"  train {steps} steps: 1 process {times[1]:.1f} s, 2 processes {times[2]:.1f} s: "
              f"{times[1] / times[2]:.2f}x")  # fmt: skip
        probe = ["probe", "--model", Path(tmp) / "t1", "--horizon", "2", "--tokens", "60000",
                 "--probe", "future-lens", "--no-report"]  # fmt: skip
        times = {n: _torchrun(n, *probe, "--out", Path(tmp) / f"p{n}") for n in (1, 2)}
        print(f"  probe statistics, 60,000 tokens: 1 process {times[1]:.1f} s, 2 processes "
              f"{times[2]:.1f} s: {times[1] / times[2]:.2f}x")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--widths", default="8,10,12,14")
    parser.add_argument("--p", type=int, default=23)
    parser.add_argument("--train-steps", type=int, default=200)
    parser.add_argument("--no-ray", action="store_true")
    parser.add_argument("--no-torchrun", action="store_true")
    args = parser.parse_args()
    if not args.no_torchrun:
        data_parallel(args.train_steps)
    if args.no_ray:
        return
    import ray

    torch.set_num_threads(1)
    widths = tuple(int(w) for w in args.widths.split(","))
    cfg = GrokSweepConfig(p=args.p, weight_decays=(0.0, 1.0), train_fractions=(0.4,),
                          widths=widths, seeds=(0, 1), steps=args.steps,
                          log_every=max(1, args.steps // 10), checkpoint_every=args.steps)  # fmt: skip
    n_cells, n_groups = len(cfg.points()), len(cfg.groups())
    cpus = os.cpu_count() or 1
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"torch {torch.__version__}, ray {ray.__version__}, {cpus} CPUs, load {load}")
    print(f"grok sweep: {n_cells} runs in {n_groups} groups, p={args.p}, {args.steps} steps")
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        execute("grok-sweep", GrokSweepRun(cfg), Path(tmp) / "local", report=False)
        local = time.perf_counter() - t0
        t0 = time.perf_counter()
        ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False,
                 logging_level=logging.WARNING)  # fmt: skip
        start = time.perf_counter() - t0
        try:
            t0 = time.perf_counter()
            execute("grok-sweep", GrokSweepRun(cfg), Path(tmp) / "ray", report=False,
                    options={"executor": "ray"})  # fmt: skip
            on_ray = time.perf_counter() - t0
        finally:
            ray.shutdown()
        same = cells(Path(tmp) / "local") == cells(Path(tmp) / "ray")
    ideal = local / min(cpus, n_groups)
    print(f"  local executor   {local:7.2f} s  ({n_cells / local:.2f} runs/s)")
    print(f"  ray executor     {on_ray:7.2f} s  ({n_cells / on_ray:.2f} runs/s; cluster start "
          f"{start:.1f} s apart)")  # fmt: skip
    print(f"  ray / local: {on_ray / local:.2f}x wall; overhead per cell vs an ideal "
          f"{min(cpus, n_groups)}-way split: {(on_ray - ideal) / n_cells * 1000:.0f} ms")  # fmt: skip
    print(f"  cells bit-identical: {same}")


if __name__ == "__main__":
    main()
