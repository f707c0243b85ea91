"""Ray vs local executor for a 16-run grok sweep (4 groups of 4), side by side in one process.

    python bench/scale_out.py [--steps 1000] [--widths 8,10,12,14]

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
import tempfile
import time
from pathlib import Path

import torch

from interp.experiments.execute import execute
from interp.experiments.grok_sweep import GrokSweepRun
from interp.grok.config import GrokSweepConfig


def cells(run: Path) -> dict[str, object]:
    return {p.name: json.loads(p.read_text()) for p in sorted((run / "cells").glob("*.json"))}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--widths", default="8,10,12,14")
    parser.add_argument("--p", type=int, default=23)
    args = parser.parse_args()
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
