"""Grokking speed: steps/s of one PAIR MLP run, and runs/s of a 36-run sweep trained batched
(stacked parameters, one AdamW) versus one run at a time, measured side by side in one process.

    python bench/grok_speed.py [--steps 300] [--threads 1]

Both sides use the same threads, the same 36 configurations (3 weight decays x 3 train
fractions x 4 seeds, p = 67, width 24) and the same number of steps; logging is at the end only.
"""

from __future__ import annotations

import argparse
import time

import torch

from interp.grok.batched import train_batched
from interp.grok.job import SweepConfig, build_data, build_model
from interp.grok.loop import train_full_batch


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--sequential-sample", type=int, default=6, help="runs timed one at a time")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg = SweepConfig(steps=args.steps, log_every=10**9)
    points = cfg.points()
    configs = [cfg.run_config(pt) for pt in points]
    datas = [build_data(c) for c in configs]
    print(f"{len(points)} runs, {args.steps} steps each, {args.threads} thread(s)")

    # sequential: a sample of runs one at a time (all 36 would take 36x as long).  CPU time
    # (process_time, 1 thread) is reported beside wall time: on a shared, loaded machine the
    # wall-clock ratio swings with other processes' load between the two measurements.
    t0, c0 = time.perf_counter(), time.process_time()
    rates = []
    for c, d in list(zip(configs, datas, strict=True))[: args.sequential_sample]:
        info = train_full_batch(
            build_model(c), d, args.steps, c.optim, log_every=10**9, threads=None
        )
        rates.append(info["steps_per_second"])
    seq_per_run = (time.perf_counter() - t0) / args.sequential_sample
    seq_cpu = (time.process_time() - c0) / args.sequential_sample
    seq_runs_per_s = 1.0 / seq_per_run
    print(f"single PAIR MLP run: {sum(rates) / len(rates):.0f} steps/s")
    print(
        f"sequential: {seq_runs_per_s:.3f} runs/s ({seq_per_run:.2f} s wall, "
        f"{seq_cpu:.2f} s CPU per run)"
    )

    t0, c0 = time.perf_counter(), time.process_time()
    masks = torch.stack([d.train for d in datas])
    train_batched(
        "pair-mlp",
        [build_model(c) for c in configs],
        datas[0].x,
        datas[0].y,
        masks,
        [c.weight_decay for c in configs],
        args.steps,
        log_every=10**9,
        threads=None,
    )
    batched = time.perf_counter() - t0
    bat_cpu = (time.process_time() - c0) / len(points)
    bat_runs_per_s = len(points) / batched
    print(
        f"batched: {bat_runs_per_s:.3f} runs/s ({batched:.2f} s wall for all {len(points)}, "
        f"{bat_cpu:.3f} s CPU per run)"
    )
    print(
        f"speed-up batched / sequential: {bat_runs_per_s / seq_runs_per_s:.1f}x wall, "
        f"{seq_cpu / bat_cpu:.1f}x CPU (target >= 5x)"
    )

    # what a user runs: ``interp grok`` once per point (run directory, metrics every log_every,
    # Fourier analysis, checkpoints) versus ``interp grok sweep`` (run_sweep: batched, logged)
    import tempfile
    from pathlib import Path

    from interp.grok.job import run_grok, run_sweep

    log = max(args.steps // 10, 1)
    user = SweepConfig(steps=args.steps, log_every=log, checkpoint_every=args.steps)
    with tempfile.TemporaryDirectory() as tmp:
        c0 = time.process_time()
        for i, pt in enumerate(user.points()[: args.sequential_sample]):
            c = user.run_config(pt).replace(checkpoint_every=args.steps)
            run_grok(Path(tmp) / f"run{i}", c, threads=None)
        user_seq = (time.process_time() - c0) / args.sequential_sample
        c0 = time.process_time()
        run_sweep(Path(tmp) / "sweep", user, threads=None)
        user_bat = (time.process_time() - c0) / len(points)
    print(
        f"as run from the CLI (log every {log} steps): interp grok {user_seq:.2f} s CPU per run, "
        f"interp grok sweep {user_bat:.3f} s CPU per run: {user_seq / user_bat:.1f}x CPU"
    )


if __name__ == "__main__":
    main()
