"""Throughput of `interp probe`: one pass + streamed ridge for all layers x horizons, against
fitting each (layer, horizon) separately with a plain full-batch gradient-trained softmax probe.

Ours: one forward pass over the fitting + validation blocks accumulating float64 XᵀX / XᵀY for
every layer and horizon at once, then one eigendecomposition per layer and λ chosen on the
validation blocks.  Timed: collection + fitting.  Its held-out top-1 per cell (decoded through
the model's own final norm + unembedding) sets the baseline's target.

Baseline, per (layer, horizon) cell: a forward pass over the fitting blocks collecting that
layer, then a linear softmax over the whole vocabulary trained full-batch with Adam (standardised
inputs, zero init) until its held-out top-1 reaches ours minus 1 point (checked every
--eval-every steps) or --max-steps.  Timed: collection + training (the test-block forward it
uses for the stopping check is excluded, in its favour).  Cells that never reach the target are
counted at their --max-steps time (so the ratio is then a lower bound).

With --sample N the baseline runs on N cells spread over the grid and its time is extrapolated
to all cells (mean time per cell x number of cells); the output says so.

    INTERP_CACHE=/tmp/democache python bench/probe_throughput.py [--model SPEC] [--tokens 12000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F

from interp.experiments.subject import load_subject
from probes.collect import horizon_targets, iter_activations, probe_inputs
from probes.run import ProbeConfig, collect_statistics, evaluate, prepare, solve_probes


def collect_layer(model, prep, idx, layer, k):
    h, d = prep.config.horizon, int(model.cfg.d_model)
    xs, ys = [], []
    for batch in iter_activations(model, prep.blocks[idx], [layer], prep.config.batch_size):
        xs.append(probe_inputs(batch.states[layer], h).reshape(-1, d))
        ys.append(horizon_targets(batch.tokens, k, h, 0).reshape(-1))
    return torch.cat(xs), torch.cat(ys)


def baseline_cell(model, prep, layer, k, target, max_steps, eval_every, lr):
    t0 = time.perf_counter()
    x, y = collect_layer(model, prep, prep.split.fit, layer, k)
    t_collect = time.perf_counter() - t0
    xt, yt = collect_layer(model, prep, prep.split.test, layer, k)  # not timed
    t1 = time.perf_counter()
    mean, std = x.mean(0), x.std(0).clamp_min(1e-6)
    x, xt = (x - mean) / std, (xt - mean) / std
    v = int(model.cfg.d_vocab)
    w = torch.zeros(x.shape[1], v, requires_grad=True)
    b = torch.zeros(v, requires_grad=True)
    opt = torch.optim.Adam([w, b], lr=lr)
    acc, steps, reached = 0.0, 0, False
    t_check = 0.0
    for steps in range(1, max_steps + 1):
        loss = F.cross_entropy(x @ w + b, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if steps % eval_every == 0 or steps == max_steps:
            tc = time.perf_counter()
            with torch.no_grad():
                acc = ((xt @ w + b).argmax(-1) == yt).float().mean().item()
            t_check += time.perf_counter() - tc
            if acc >= target - 0.01:
                reached = True
                break
    t_train = time.perf_counter() - t1 - t_check
    return t_collect, t_train, steps, acc, reached


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="model spec (default: the demo model)")
    ap.add_argument("--tokens", type=int, default=12_000)
    ap.add_argument("--horizon", type=int, default=4)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--max-steps", type=int, default=300)
    ap.add_argument("--eval-every", type=int, default=5)
    ap.add_argument("--lr", type=float, default=1e-2)
    ap.add_argument("--sample", type=int, default=0, help="baseline on N cells (0 = all)")
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    cfg = ProbeConfig(
        model=args.model,
        horizon=args.horizon,
        tokens=args.tokens,
        batch_size=args.batch_size,
        n_boot=10,
    )
    subject = load_subject(cfg.model)
    model = subject.model
    spec = str(subject.run_dir) if subject.default else str(cfg.model)
    prep = prepare(model, cfg.replace(model=spec), spec)
    fit_tokens = int(prep.split.fit.numel()) * prep.probe_positions
    print(
        f"model {spec}: {model.cfg.n_layers} layers, d_model {model.cfg.d_model}, "
        f"vocab {model.cfg.d_vocab}; {fit_tokens} fitting positions, {len(prep.layers)} layers x "
        f"{args.horizon} horizons; torch threads {torch.get_num_threads()}"
    )

    t0 = time.perf_counter()
    state = collect_statistics(model, prep)
    fits = solve_probes(state, args.horizon)
    t_ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    for idx in (prep.split.fit, prep.split.val):
        for _ in iter_activations(model, prep.blocks[idx], prep.layers, args.batch_size):
            pass
    t_forward = time.perf_counter() - t0  # the forward pass alone, to split ours into parts
    sums = evaluate(model, prep, fits, state)["future_lens"]
    ours_acc = sums[..., 0].sum(0) / (sums.shape[0] * prep.probe_positions)  # [layer, horizon]
    print(
        f"ours (one pass, streamed ridge, all cells): {t_ours:.2f} s, "
        f"{fit_tokens / t_ours:,.0f} tokens/s (forward pass alone {t_forward:.2f} s)"
    )

    cells = [(i, k) for i in range(len(prep.layers)) for k in range(1, args.horizon + 1)]
    if args.sample and args.sample < len(cells):
        pick = np.linspace(0, len(cells) - 1, args.sample).round().astype(int)
        chosen = [cells[j] for j in sorted(set(pick.tolist()))]
    else:
        chosen = cells
    times, train_times = [], []
    print("cell (layer, k)  ours top-1  softmax top-1  steps  reached  collect s  train s")
    for i, k in chosen:
        target = float(ours_acc[i, k - 1])
        t_col, t_train, steps, acc, reached = baseline_cell(
            model, prep, prep.layers[i], k, target, args.max_steps, args.eval_every, args.lr
        )
        times.append(t_col + t_train)
        train_times.append(t_train)
        print(
            f"  ({prep.layers[i]}, {k})        {target:.3f}       {acc:.3f}        "
            f"{steps:4d}   {'yes' if reached else 'NO '}    {t_col:7.2f}  {t_train:7.2f}",
            flush=True,
        )
    t_base = float(np.mean(times)) * len(cells)
    t_base_train = float(np.mean(train_times)) * len(cells)
    note = (
        f"measured on {len(chosen)} of {len(cells)} cells, extrapolated"
        if len(chosen) < len(cells)
        else "all cells"
    )
    print(
        f"baseline (separate full-batch softmax per cell, {note}): {t_base:.2f} s, "
        f"{fit_tokens / t_base:,.0f} tokens/s"
    )
    print(f"ratio (baseline time / ours): {t_base / t_ours:.1f}x  (target >= 10x)")
    t_fit = max(t_ours - t_forward, 1e-9)
    print(
        f"fitting alone (no forward passes): ours ~{t_fit:.2f} s, baseline {t_base_train:.2f} s, "
        f"ratio {t_base_train / t_fit:.1f}x"
    )


if __name__ == "__main__":
    main()
