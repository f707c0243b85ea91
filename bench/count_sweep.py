"""Models per second for a counting sweep: trained together vs one at a time, same grid, one run.

    python bench/count_sweep.py                 # d 8,16,32; m 2..24 (8 values); 60 steps
    python bench/count_sweep.py --steps 100 --threads 2

Two grids: A with one sequence length for every m (``--n``), where a d's models form one
group; B with n = 2 m, where lengths differ and groups are split so that padding stays under 2x.
For each d, every m's model is trained for the same steps on its own task stream, three ways,
back to back: ``interp.train.batched.train_models`` with the hand-batched forward of
``interp.models.stacked_forward`` (the default), the same with the ``torch.func`` vmap engine,
and the ordinary loop, model by model.  All three produce the same weights
(tests/test_batched.py); this script only times them (the hand-batched forward is kept only
while it is faster than vmap here).  Both wall-clock and process CPU time are reported: on a
shared machine the CPU time is the steadier measure.
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from interp.analysis.counting import SweepConfig, parse_int_list
from interp.models import HookedTransformer
from interp.train.batched import train_models
from interp.train.sources import TaskSource

WAYS = ("stacked", "vmap", "alone")


def timed(cfg: SweepConfig, d: int, way: str) -> tuple[float, float]:
    """(wall s, CPU s) to train every m's model at width d."""
    models = [HookedTransformer(cfg.model_config(d, m), seed=cfg.seed) for m in cfg.m_values]
    sources = [TaskSource(cfg.task_for(m), cfg.batch_size, cfg.seed, 1) for m in cfg.m_values]
    wall, cpu = time.perf_counter(), time.process_time()
    engine = "vmap" if way == "vmap" else "auto"
    train_models(models, sources, cfg.train_config(), batched=way != "alone", engine=engine)
    return time.perf_counter() - wall, time.process_time() - cpu


def bench_grid(cfg: SweepConfig, label: str) -> None:
    n = len(cfg.m_values)
    print(f"\n{label}: d {list(cfg.d_values)} x m {list(cfg.m_values)}, {cfg.n_layers} layers, "
          f"{cfg.n_heads} heads, d_mlp {cfg.mlp_ratio}d, {cfg.steps} steps, batch {cfg.batch_size}")  # fmt: skip
    print("models/s (wall | CPU); ratio = stacked or vmap over alone")
    print(f"{'d':>4} {'models':>6} " + " ".join(f"{w:>15}" for w in WAYS)
          + f" {'stacked x':>13} {'vmap x':>13}")  # fmt: skip
    totals = {w: [0.0, 0.0] for w in WAYS}
    rows = [(d, n) for d in cfg.d_values]
    for d, count in rows:
        got = {w: timed(cfg, d, w) for w in WAYS}
        for w in WAYS:
            totals[w][0] += got[w][0]
            totals[w][1] += got[w][1]
        _row(str(d), count, got)
    _row("all", n * len(cfg.d_values), {w: tuple(totals[w]) for w in WAYS})


def _row(label: str, count: int, got: dict) -> None:
    rate = " ".join(f"{count / got[w][0]:>7.2f}|{count / got[w][1]:<7.2f}" for w in WAYS)
    ratio = " ".join(
        f"{got['alone'][0] / got[w][0]:>6.1f}|{got['alone'][1] / got[w][1]:<6.1f}"
        for w in ("stacked", "vmap")
    )
    print(f"{label:>4} {count:>6} {rate} {ratio}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--d", default="8,16,32")
    parser.add_argument("--m", default="2,3,4,6,8,12,16,24")
    parser.add_argument("--n", type=int, default=24, help="fixed length of the first grid")
    parser.add_argument("--n-factor", type=int, default=2, help="n = factor * m, second grid")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--grids", default="A,B", help="A, B or A,B")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    common = dict(
        d_values=parse_int_list(args.d, "--d"),
        m_values=parse_int_list(args.m, "--m"),
        steps=args.steps,
        batch_size=args.batch_size,
        warmup_steps=min(10, args.steps),
        n_heads=4,  # the sweep's former defaults, which bench/RESULTS.md measured
        lr=1e-3,
    )
    fixed = SweepConfig(n=args.n, **common)
    scaled = SweepConfig(n_factor=args.n_factor, **common)
    print(f"torch {torch.__version__}, {args.threads} thread(s), load {os.getloadavg()}")
    warm = SweepConfig(**{**common, "steps": 3, "warmup_steps": 1}, n=args.n)
    for way in WAYS:  # imports, first-call allocations, vmap tracing: paid before timing
        timed(warm, warm.d_values[0], way)
    grids = args.grids.upper().split(",")
    if "A" in grids:
        bench_grid(fixed, f"grid A, equal lengths (n = {args.n} for every m): one group per d")
    if "B" in grids:
        bench_grid(scaled, f"grid B, n = {args.n_factor}m: lengths differ, split at 2x padding")
    print(f"load at end {os.getloadavg()}")


if __name__ == "__main__":
    main()
