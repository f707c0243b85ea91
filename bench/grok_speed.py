"""Grokking speed: steps/s of one MLP run, and runs/s of a 36-run sweep trained together
(stacked parameters, one AdamW: the hand-batched forward and the vmap one) versus one run at a
time, measured side by side in one process.

    python bench/grok_speed.py [--steps 300] [--threads 1] [--task sparse-parity]

All sides use the same threads, the same 36 configurations (modadd: 3 weight decays x 3 train
fractions x 4 seeds, p = 67, width 24; sparse-parity: 3 weight decays x 12 seeds, width 256,
1,200 training sequences) and the same number of steps; logging is at the end only.  The
hand-batched forward of a model (``PairMLP.stacked_forward``, ``ParityMLP.stacked_forward``) is
kept only while the ``hand / vmap`` line shows it faster.
"""

from __future__ import annotations

import argparse
import time

import torch

from interp.grok.job import SweepConfig, build_data, build_model
from interp.train.full_batch import train_full_batch, train_full_batch_many


def sweep(task: str, steps: int, log_every: int) -> SweepConfig:
    if task == "modadd":
        return SweepConfig(steps=steps, log_every=log_every)
    return SweepConfig(
        task=task, steps=steps, log_every=log_every, train_sizes=(1200,), seeds=tuple(range(12))
    )


def batched_cpu(cfg: SweepConfig, engine: str) -> tuple[float, float]:
    """(wall s, CPU s) to train every point of ``cfg`` together."""
    configs = [cfg.run_config(pt) for pt in cfg.points()]
    datas = [build_data(c) for c in configs]  # one train size: the same examples for every run
    models = [build_model(c) for c in configs]
    t0, c0 = time.perf_counter(), time.process_time()
    masks = torch.stack([d.train for d in datas])
    train_full_batch_many(
        models,
        datas[0].x,
        datas[0].y,
        masks,
        [c.weight_decay for c in configs],
        cfg.steps,
        log_every=10**9,
        threads=None,
        engine=engine,
    )
    return time.perf_counter() - t0, time.process_time() - c0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--sequential-sample", type=int, default=6, help="runs timed one at a time")
    ap.add_argument("--task", choices=("modadd", "sparse-parity"), default="modadd")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg = sweep(args.task, args.steps, 10**9)
    points = cfg.points()
    configs = [cfg.run_config(pt) for pt in points]
    datas = [build_data(c) for c in configs]
    print(f"{args.task}: {len(points)} runs, {args.steps} steps each, {args.threads} thread(s)")
    for engine in ("stacked", "vmap"):  # vmap tracing, first-call allocations
        batched_cpu(sweep(args.task, 3, 10**9), engine)

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
    print(f"single run: {sum(rates) / len(rates):.0f} steps/s")
    print(
        f"sequential: {seq_runs_per_s:.3f} runs/s ({seq_per_run:.2f} s wall, "
        f"{seq_cpu:.2f} s CPU per run)"
    )
    timed = {engine: batched_cpu(cfg, engine) for engine in ("stacked", "vmap")}
    for engine, (wall, cpu) in timed.items():
        print(
            f"batched ({engine}): {len(points) / wall:.3f} runs/s ({wall:.2f} s wall for all "
            f"{len(points)}, {cpu / len(points):.3f} s CPU per run)"
        )
    bat_runs_per_s, bat_cpu = len(points) / timed["stacked"][0], timed["stacked"][1] / len(points)
    print(
        f"speed-up batched / sequential: {bat_runs_per_s / seq_runs_per_s:.1f}x wall, "
        f"{seq_cpu / bat_cpu:.1f}x CPU (target >= 5x)"
    )
    (hw, hc), (vw, vc) = timed["stacked"], timed["vmap"]
    print(f"hand-batched / vmap forward: {vw / hw:.2f}x wall, {vc / hc:.2f}x CPU")
    if args.task == "modadd":
        cli_paths(args)


def cli_paths(args: argparse.Namespace) -> None:
    """What a user runs: ``interp grok`` once per point (run directory, metrics every
    log_every, Fourier analysis, checkpoints) versus ``interp grok sweep`` (batched, logged)."""
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
        user_bat = (time.process_time() - c0) / len(user.points())
    print(
        f"as run from the CLI (log every {log} steps): interp grok {user_seq:.2f} s CPU per run, "
        f"interp grok sweep {user_bat:.3f} s CPU per run: {user_seq / user_bat:.1f}x CPU"
    )


if __name__ == "__main__":
    main()
