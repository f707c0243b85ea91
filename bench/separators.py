"""Do separators delay collapse?  The reproduction's claim over many seeds, under both rules.

    python bench/separators.py [--seeds 20]

Not a speed target: a measurement behind ``interp reproduce collapse``'s separator claim
(#16 item 3), which is judged on its 5 seeds and fails on one.  For each seed, the paper's
synthetic model (``interp.reproductions.collapse.synthetic_model``: 1 layer, 1 head, d 64, no
PE, Gaussian weights std 0.125), prompt + n ones with and without a separator every 3 tokens,
both over the same range of sequence lengths, at the final layer:

* bf16's *first* length at resolution (what the reproduction's claim compares);
* bf16's collapse length under the collapse rule (``interp.analysis.collapse``: every length
  tried from n on at resolution, at least 3 of them);
* fp32's ∞-distance at the longest length.

"Later" treats "not within the range" as latest.  Prints one row per seed and the counts.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from interp.analysis.collapse import validate  # noqa: E402
from interp.reproductions.collapse import (  # noqa: E402
    EVERY,
    _collapse,
    _config,
    _later,
    _run,
    synthetic_model,
)


def measure(seed: int) -> dict[str, float | int | None]:
    model = synthetic_model(seed)
    sep_max = validate(model, _config(EVERY))["sep_lengths"][-1]
    both = _collapse(model, every=EVERY, max_length=sep_max)
    final = both["final_layer"]
    plain, sep = _run(both, "bfloat16"), _run(both, "bfloat16", "separator")
    return {
        "seed": seed,
        "first_plain": plain["first_collapsed"][final],
        "first_sep": sep["first_collapsed"][final],
        "rule_plain": plain["collapse_length"][final],
        "rule_sep": sep["collapse_length"][final],
        "fp32_plain": _run(both, "float32")["curves"][final]["linf"][-1],
        "fp32_sep": _run(both, "float32", "separator")["curves"][final]["linf"][-1],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = []
    print(f"{'seed':>4} {'bf16 first plain/sep':>21} {'bf16 rule plain/sep':>20} "
          f"{'fp32 dist plain/sep':>22}")  # fmt: skip
    for seed in range(args.seeds):
        r = measure(seed)
        rows.append(r)
        print(f"{seed:>4} {r['first_plain']!s:>10}/{r['first_sep']!s:<10} "
              f"{r['rule_plain']!s:>9}/{r['rule_sep']!s:<10} "
              f"{r['fp32_plain']:>10.2g}/{r['fp32_sep']:<10.2g}", flush=True)  # fmt: skip
    n = len(rows)
    first = [_later(r["first_sep"], r["first_plain"]) for r in rows]
    rule = [_later(r["rule_sep"], r["rule_plain"]) for r in rows]
    fp32 = [r["fp32_sep"] > r["fp32_plain"] for r in rows]
    ratio = statistics.median(r["fp32_sep"] / r["fp32_plain"] for r in rows)
    print(f"bf16 first at resolution later with separators: {sum(first)} of {n}")
    print(f"bf16 collapse (the rule) later with separators: {sum(rule)} of {n}")
    print(f"fp32 distance at the longest length larger with separators: {sum(fp32)} of {n} "
          f"(median ratio separated/plain {ratio:.1f}x)")  # fmt: skip
    print(
        "the reproduction's per-seed test (first at resolution and fp32): "
        f"{sum(a and b for a, b in zip(first, fp32, strict=True))} of {n}; "
        f"with the rule instead: {sum(a and b for a, b in zip(rule, fp32, strict=True))} of {n}"
    )


if __name__ == "__main__":
    main()
