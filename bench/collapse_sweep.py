"""Collapse sweep speed: one pass vs per-length passes, emulated vs native bfloat16.

    python bench/collapse_sweep.py [--n 256] [--repeats 3] [--d-model 128,512]

Same model (the demo's shape, random weights, n_ctx = N + 8; by default at the demo's width
d_model 128, where per-op overhead dominates, and at 512, where matmuls do), same family (4
prompt tokens + n ones), measured side by side in one run:

1. the full length sweep n = 1..N in float32 by the one-pass method (the whole curve from one
   forward pass) vs per-length passes (one forward pass per distinct sequence); target >= N/4 x;
2. the same one-pass sweep in bfloat16, emulated (float32 compute rounded at every hook) vs
   native (``model.to(torch.bfloat16)``); target: emulated >= 20x faster on this CPU.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from interp.analysis.collapse import (  # noqa: E402
    CollapseConfig,
    build_family,
    layer_names,
    measure_pairs,
)
from interp.analysis.precision import FORMATS  # noqa: E402
from interp.demo import DEMO_MODEL  # noqa: E402
from interp.models import HookedTransformer  # noqa: E402


def timed(fn, repeats: int) -> tuple[float, dict]:
    best, out = float("inf"), {}
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--d-model", default=f"{DEMO_MODEL.d_model},512", help="widths, e.g. 128,512")
    args = ap.parse_args()
    print(f"load average before: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    for d in (int(w) for w in args.d_model.split(",")):
        bench(args.n, d, args.repeats)
    print(f"load average after: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


def bench(n: int, d: int, repeats: int) -> None:
    cfg = DEMO_MODEL.replace(n_ctx=n + 8, d_vocab=2048, d_model=d, d_mlp=4 * d)
    model = HookedTransformer(cfg, seed=0).eval()
    family = build_family(model, CollapseConfig(prompt_tokens=(11, 12, 13, 14)))
    lengths = list(range(1, n + 1))
    fp32, bf16 = FORMATS["float32"], FORMATS["bfloat16"]
    print(
        f"model: {cfg.n_layers} layers, d_model {cfg.d_model}, {cfg.positional}; N = {n}; "
        f"torch {torch.__version__}, {torch.get_num_threads()} thread(s)"
    )

    t_one, r_one = timed(lambda: measure_pairs(model, family, lengths, fp32, "native"), repeats)
    t_per, r_per = timed(
        lambda: measure_pairs(model, family, lengths, fp32, "native", method="per-length"), 1
    )
    final = layer_names(model)[-1]
    a = torch.tensor(r_one["curves"][final]["linf"])
    b = torch.tensor(r_per["curves"][final]["linf"])
    print(
        f"float32 sweep 1..{n}: one-pass {t_one * 1e3:.1f} ms ({r_one['passes']} pass), "
        f"per-length {t_per * 1e3:.0f} ms ({r_per['passes']} passes): "
        f"{t_per / t_one:.0f}x (target >= {n / 4:.0f}x); max |curve difference| "
        f"{(a - b).abs().max():.1e}"
    )

    t_emu, r_emu = timed(lambda: measure_pairs(model, family, lengths, bf16, "emulated"), repeats)
    t_nat, r_nat = timed(lambda: measure_pairs(model, family, lengths, bf16, "native"), 1)
    print(
        f"bfloat16 one-pass sweep: emulated {t_emu * 1e3:.1f} ms, native {t_nat * 1e3:.0f} ms: "
        f"emulated {t_nat / t_emu:.0f}x faster (target >= 20x); collapse n at {final}: "
        f"emulated {r_emu['collapse_length'][final]}, native {r_nat['collapse_length'][final]}"
    )


if __name__ == "__main__":
    main()
