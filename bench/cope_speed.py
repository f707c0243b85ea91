"""Training-step time of CoPE vs RoPE at contexts 256 and 512, same model otherwise, one run.

    python bench/cope_speed.py [--device cpu] [--steps 5] [--batch 8] [--threads N] [--unfused]
                               [--per-head]

Prints one line per context with the median step time (forward + backward + AdamW step) of
each encoding, measured alternately in the same process, and the ratio CoPE / RoPE (target
<= 1.5x).  CoPE is the public code's definition (one table per layer shared by the heads) with
p_max the context (the defaults).  ``--unfused`` also times CoPE without its fused,
query-chunked form (``cope_kernels.FUSED = False``: the three separate autograd functions);
``--per-head`` also times interp's earlier variant (one table per head, ``per_head=true``);
all alternate in the same process.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from interp.config import ModelConfig, OptimConfig
from interp.models import HookedTransformer
from interp.models.positional import cope_kernels
from interp.train.optim import build_optimizer


def step_time(model: HookedTransformer, opt: torch.optim.Optimizer, tokens: torch.Tensor) -> float:
    if tokens.is_cuda:
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    loss = model(tokens, return_type="loss")
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    if tokens.is_cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def timed(models: dict, name: str, tokens: torch.Tensor) -> float:
    cope_kernels.FUSED = name != "unfused"
    try:
        return step_time(*models[name], tokens)
    finally:
        cope_kernels.FUSED = True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    parser.add_argument("--contexts", default="256,512")
    parser.add_argument("--d-model", type=int, default=128)
    parser.add_argument("--unfused", action="store_true", help="also time unfused CoPE")
    parser.add_argument(
        "--per-head", action="store_true", help="also time CoPE with one table per head"
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(
        f"# device {args.device}, torch {torch.__version__}, threads {torch.get_num_threads()}, "
        f"batch {args.batch}, {args.steps} timed steps (median), 2 layers, d_model {args.d_model}, "
        f"{args.d_model // 32} heads of 32"
    )
    for ctx in (int(c) for c in args.contexts.split(",")):
        models = {}
        for pe in ("rope", "cope"):
            cfg = ModelConfig(
                n_layers=2,
                d_model=args.d_model,
                n_heads=args.d_model // 32,
                d_mlp=4 * args.d_model,
                n_ctx=ctx,
                d_vocab=512,
                positional=pe,
            )
            model = HookedTransformer(cfg, seed=0).to(args.device).train()
            models[pe] = (model, build_optimizer(model, OptimConfig()))
        g = torch.Generator().manual_seed(0)
        tokens = torch.randint(0, 512, (args.batch, ctx), generator=g).to(args.device)
        runs = ["rope", "cope"] + ["unfused"] * args.unfused + ["per-head"] * args.per_head
        if args.unfused:  # the same weights as "cope", timed without the fused form
            model = HookedTransformer(models["cope"][0].config, seed=0).to(args.device).train()
            models["unfused"] = (model, build_optimizer(model, OptimConfig()))
        if args.per_head:
            config = models["cope"][0].config.replace(positional_options={"per_head": True})
            model = HookedTransformer(config, seed=0).to(args.device).train()
            models["per-head"] = (model, build_optimizer(model, OptimConfig()))
        times: dict[str, list[float]] = {name: [] for name in runs}
        for name in runs:  # warm-up
            timed(models, name, tokens)
        for i in range(args.steps):  # alternate, so drifting machine load hits all alike,
            for name in runs[i % len(runs) :] + runs[: i % len(runs)]:  # in rotating order
                times[name].append(timed(models, name, tokens))
        med = {name: statistics.median(t) for name, t in times.items()}
        rope, fused = med["rope"], med["cope"]
        line = (
            f"context {ctx}: rope {1000 * rope:.1f} ms/step, cope {1000 * fused:.1f} ms/step, "
            f"cope/rope {fused / rope:.2f}x (target <= 1.5x)"
        )
        if args.unfused:
            unfused = med["unfused"]
            line += f"; unfused cope {1000 * unfused:.1f} ms/step, {unfused / rope:.2f}x"
        if args.per_head:
            per_head = med["per-head"]
            line += f"; per-head cope {1000 * per_head:.1f} ms/step, {per_head / rope:.2f}x"
        print(line)


if __name__ == "__main__":
    main()
