"""Models per second for a counting sweep: trained together (vmap) vs one at a time, same grid.

    python bench/count_sweep.py                 # d 8,16,32; m 2..24 (8 values); 60 steps
    python bench/count_sweep.py --steps 100 --threads 2

Two grids: A with one sequence length for every m (``--n``), where a d's models form one
group; B with n = 2 m, where lengths differ and groups are split so that padding stays under 2x.
For each d, every m's model is trained for the same steps on its own task stream, once with
``interp.train.batched.train_models`` (all m of that d in one vmapped group) and once with
the ordinary loop, model by model.  Both produce the same weights (tests/test_batched.py);
this script only times them, side by side in one run, and prints the ratio.
"""

from __future__ import annotations

import argparse
import time

import torch

from interp.analysis.counting import SweepConfig, parse_int_list
from interp.models import HookedTransformer
from interp.train.batched import train_models
from interp.train.sources import TaskSource


def timed(cfg: SweepConfig, d: int, batched: bool) -> float:
    models = [HookedTransformer(cfg.model_config(d, m), seed=cfg.seed) for m in cfg.m_values]
    sources = [TaskSource(cfg.task_for(m), cfg.batch_size, cfg.seed, 1) for m in cfg.m_values]
    start = time.perf_counter()
    train_models(models, sources, cfg.train_config(), batched=batched)
    return time.perf_counter() - start


def bench_grid(cfg: SweepConfig, label: str) -> None:
    n = len(cfg.m_values)
    print(f"\n{label}: d {list(cfg.d_values)} x m {list(cfg.m_values)}, {cfg.n_layers} layers, "
          f"{cfg.n_heads} heads, {cfg.steps} steps, batch {cfg.batch_size}")  # fmt: skip
    print(f"{'d':>4} {'models':>6} {'together s':>11} {'alone s':>8} {'models/s together':>18} "
          f"{'models/s alone':>15} {'ratio':>6}")  # fmt: skip
    total_b = total_s = 0.0
    for d in cfg.d_values:
        together = timed(cfg, d, True)
        alone = timed(cfg, d, False)
        total_b, total_s = total_b + together, total_s + alone
        print(f"{d:>4} {n:>6} {together:>11.2f} {alone:>8.2f} {n / together:>18.2f} "
              f"{n / alone:>15.2f} {alone / together:>5.1f}x")  # fmt: skip
    models = n * len(cfg.d_values)
    print(f" all {models:>6} {total_b:>11.2f} {total_s:>8.2f} {models / total_b:>18.2f} "
          f"{models / total_s:>15.2f} {total_s / total_b:>5.1f}x")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--d", default="8,16,32")
    parser.add_argument("--m", default="2,3,4,6,8,12,16,24")
    parser.add_argument("--n", type=int, default=24, help="fixed length of the first grid")
    parser.add_argument("--n-factor", type=int, default=2, help="n = factor * m, second grid")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    common = dict(
        d_values=parse_int_list(args.d, "--d"),
        m_values=parse_int_list(args.m, "--m"),
        steps=args.steps,
        batch_size=args.batch_size,
        warmup_steps=min(10, args.steps),
    )
    fixed = SweepConfig(n=args.n, **common)
    scaled = SweepConfig(n_factor=args.n_factor, **common)
    print(f"torch {torch.__version__}, {args.threads} thread(s)")
    timed(fixed, fixed.d_values[0], True)  # warm-up (vmap tracing, allocator)
    bench_grid(fixed, f"grid A, equal lengths (n = {args.n} for every m): one group per d")
    bench_grid(
        scaled,
        f"grid B, n = {args.n_factor}m: lengths differ, groups split at 2x padding",
    )


if __name__ == "__main__":
    main()
