"""Cost of myopic training: step time myopic / vanilla and naive reference / vanilla, one run.

Run by hand (not a test):

    python bench/myopic_overhead.py                      # 2 layers, d_model 128, ctx 64, batch 16
    python bench/myopic_overhead.py --positional alibi --d-model 64 --ctx 32

A step is forward + backward + AdamW step on one fixed token batch, on the same model.  Vanilla
and myopic steps are interleaved round by round (order alternating) after warm-up and medians
are reported, so machine load hits both alike.  The naive reference
(``interp.train.grad_modes.naive_myopic_backward``: one forward and backward per position) is
timed for a few rounds only; its ratio is about ``ctx``.  Target: myopic / vanilla <= 1.3.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch
import torch.nn.functional as F

from interp.config import ModelConfig, OptimConfig
from interp.models import HookedTransformer
from interp.train.grad_modes import grad_mode, naive_myopic_backward
from interp.train.optim import build_optimizer


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--d-model", type=int, default=128)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--ctx", type=int, default=64)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--vocab", type=int, default=1024)
    ap.add_argument("--positional", default="rope")
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--naive-rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = leave as is)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    cfg = ModelConfig(
        n_layers=args.layers,
        d_model=args.d_model,
        n_heads=args.heads,
        d_mlp=4 * args.d_model,
        n_ctx=args.ctx,
        d_vocab=args.vocab,
        positional=args.positional,
    )
    model = HookedTransformer(cfg, seed=0).train()
    opt = build_optimizer(model, OptimConfig())
    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, args.vocab, (args.batch, args.ctx + 1), generator=g)
    inputs, targets = tokens[:, :-1], tokens[:, 1:]

    def per_position(logits: torch.Tensor) -> torch.Tensor:
        loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="none")
        return loss.view(targets.shape).sum(0) / targets.numel()

    def step(mode: str) -> float:
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        if mode == "naive":
            naive_myopic_backward(model, inputs, per_position)
        else:
            with grad_mode(model, mode):
                per_position(model(inputs)).sum().backward()
        opt.step()
        return time.perf_counter() - t0

    times: dict[str, list[float]] = {"vanilla": [], "myopic": [], "naive": []}
    for mode in ("vanilla", "myopic", "vanilla", "myopic"):
        step(mode)  # warm-up
    for r in range(args.rounds):
        order = ("vanilla", "myopic") if r % 2 == 0 else ("myopic", "vanilla")
        for mode in order:
            times[mode].append(step(mode))
    for _ in range(max(1, args.naive_rounds)):
        times["naive"].append(step("naive"))
        times["vanilla"].append(step("vanilla"))

    med = {k: statistics.median(v) for k, v in times.items()}
    print(
        f"# myopic overhead: {args.layers} layers, d_model {args.d_model}, {args.heads} heads, "
        f"ctx {args.ctx}, batch {args.batch}, {args.positional}; torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, {platform.machine()}"
    )
    print("| mode | median step (ms) | / vanilla |")
    print("|---|---|---|")
    for mode in ("vanilla", "myopic", "naive"):
        print(f"| {mode} | {1e3 * med[mode]:.1f} | {med[mode] / med['vanilla']:.2f}x |")
    verdict = "meets" if med["myopic"] / med["vanilla"] <= 1.3 else "misses"
    print(f"myopic / vanilla = {med['myopic'] / med['vanilla']:.2f}x ({verdict} the 1.3x target)")


if __name__ == "__main__":
    main()
