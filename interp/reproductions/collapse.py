"""``interp reproduce collapse``: Barbero et al. (2024), "Transformers need glasses!", at CPU scale.

The paper has no public code; its claims are checked on

* the paper's synthetic model: 1 layer, 1 head, d_model 64, no positional encoding, no MLP,
  Gaussian weights (std 0.125), 6 prompt tokens then n ones, n up to 249 (context 256);
  ``quick`` uses seed 0, the full run seeds 0..4 (each claim must hold for every seed);
* over-squashing on random 4-layer models without positional encoding (the theorem's
  setting), copy-first / copy-last / counting prompts of 32 digits;
* the demo model (``interp demo``) when it is already cached (full run only; reported, not
  judged: a 4-layer text model with a 128-token context).

Claims (paper vs ours): the distance between the last-token states of v and v* falls with n
(Thm 4.2); it reaches bf16 resolution sooner than float32's (paper: Gemma-7B at ≈ 50 ones in
bf16); a separator every 3 tokens keeps the states apart longer (paper: commas every third
digit); the last token's state is more sensitive to early positions than to late ones (Thm
5.1).  Each run's full results go to ``analyses/collapse/results.json`` and
``analyses/squash/results.json`` (seed 0), so the reproduction's report shows their figures.

The separator claim fails on seed 3 of 0..4.  Over 40 seeds (``bench/separators.py``,
bench/RESULTS.md) separators keep the fp32 states further apart in 37 (median 8x) and delay
bf16's first length at resolution in 33; the claim's per-seed test holds in 33 of 40, so a
5-seed claim that needs every seed is not earned at this scale.  Under the collapse rule
instead of the first length at resolution it would hold in 20 of 40: over n <= 187 both
variants meet the rule late and close together.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from interp import load_model
from interp.config import ModelConfig
from interp.reproduce import Claim, ProgressFn, register_reproduction

PROMPT = (2, 3, 4, 5, 6, 7)
SEPARATOR, EVERY = 10, 3


def synthetic_model(seed: int, n_ctx: int = 256) -> Any:
    from interp.models import HookedTransformer

    cfg = ModelConfig(
        n_layers=1, n_heads=1, d_model=64, d_mlp=0, n_ctx=n_ctx, d_vocab=32,
        positional="none", init_range=0.125,
    )  # fmt: skip
    return HookedTransformer(cfg, seed=seed).eval()


def squash_model(seed: int) -> Any:
    from interp.models import HookedTransformer

    cfg = ModelConfig(
        n_layers=4, n_heads=2, d_model=32, d_mlp=64, n_ctx=64, d_vocab=32, positional="none"
    )
    return HookedTransformer(cfg, seed=seed).eval()


def _config(every: int, max_length: int | None = None) -> Any:
    from interp.analysis.collapse import CollapseConfig

    return CollapseConfig(
        formats=("float32", "bfloat16"), prompt_tokens=PROMPT, separator=SEPARATOR,
        every=every, max_length=max_length,
    )  # fmt: skip


def _collapse(model: Any, every: int, max_length: int | None = None) -> dict[str, Any]:
    from interp.analysis.collapse import run_collapse

    return run_collapse(model, _config(every, max_length))


def _run(results: dict[str, Any], fmt: str, variant: str = "plain") -> dict[str, Any]:
    return next(r for r in results["runs"] if r["format"] == fmt and r["variant"] == variant)


def measure_seed(seed: int) -> dict[str, Any]:
    """The numbers behind the claims for one synthetic model (and its full results)."""
    from interp.analysis.sensitivity import SquashConfig, run_squash

    model = synthetic_model(seed)
    full = _collapse(model, every=0)
    final = full["final_layer"]
    f32, b16 = _run(full, "float32"), _run(full, "bfloat16")
    curve = f32["curves"][final]["linf"]
    n = f32["lengths"]
    tenths = [curve[i] for i in range(0, len(curve), max(1, len(curve) // 10))]
    # separators: the same range for both (separated sequences are longer: they set the range)
    from interp.analysis.collapse import validate

    sep_max = validate(model, _config(EVERY))["sep_lengths"][-1]
    both = _collapse(model, every=EVERY, max_length=sep_max)
    squash = run_squash(squash_model(seed), SquashConfig(length=32))
    sq_final = squash["final_layer"]
    shares = {p: r["shares"][sq_final] for p, r in squash["prompts"].items()}
    return {
        "seed": seed,
        "n_max": n[-1],
        "linf_first": curve[0],
        "linf_last": curve[-1],
        "falls_tenths": sum(b < a for a, b in zip(tenths, tenths[1:], strict=False)),
        "tenths": len(tenths) - 1,
        "collapse_fp32": f32["collapse_length"][final],
        "collapse_bf16": b16["collapse_length"][final],
        "sep_n_max": sep_max,
        "first_bf16_plain": _run(both, "bfloat16")["first_collapsed"][final],
        "first_bf16_sep": _run(both, "bfloat16", "separator")["first_collapsed"][final],
        "linf_fp32_plain_at_sep_max": _run(both, "float32")["curves"][final]["linf"][-1],
        "linf_fp32_sep_at_sep_max": _run(both, "float32", "separator")["curves"][final]["linf"][-1],
        "shares": shares,
        "results": {"collapse": full, "collapse_separator": both, "squash": squash},
    }


def _later(a: int | None, b: int | None) -> bool:
    """Is ``a`` later than ``b`` (None = not within the range = latest)?"""
    if a is None:
        return b is not None
    return b is not None and a > b


def _demo_claims(progress: ProgressFn) -> list[Claim]:
    from interp.demo import demo_job, demo_run_dir

    path = demo_run_dir(demo_job())
    name = "demo model (RoPE, 4 layers, context 128): BOS + n ones, final layer"
    if not (path / "model.safetensors").is_file():
        return [Claim(name, "≈ 50 ones in bf16 (Gemma-7B)", "not cached: run `interp demo`", None)]
    from interp.analysis.collapse import CollapseConfig, run_collapse

    progress("demo model: collapse sweep in float32 and bfloat16")
    res = run_collapse(
        load_model(path), CollapseConfig(formats=("float32", "bfloat16"), prompt="", every=0)
    )
    final = res["final_layer"]
    parts = []
    for fmt in ("float32", "bfloat16"):
        r = _run(res, fmt)
        curve = r["curves"][final]["linf"]
        parts.append(
            f"{fmt}: ∞-distance {curve[0]:.2g} at n=1 → {curve[-1]:.2g} at n={r['lengths'][-1]}, "
            f"first at resolution n={r['first_collapsed'][final]}, "
            f"collapsed from n={r['collapse_length'][final]}"
        )
    return [Claim(name, "≈ 50 ones in bf16 (Gemma-7B)", "; ".join(parts), None)]


@register_reproduction(
    "collapse", "representational collapse and over-squashing (Barbero et al. 2024) at CPU scale"
)
def reproduce_collapse(out: Path, quick: bool, progress: ProgressFn) -> list[Claim]:
    from interp.safefs import Tree
    from interp.seed import torch_threads

    seeds = [0] if quick else [0, 1, 2, 3, 4]
    rows = []
    with torch_threads(1):
        for seed in seeds:
            progress(f"synthetic model, seed {seed}: collapse sweeps and sensitivities")
            rows.append(measure_seed(seed))
    first = rows[0]["results"]
    tree = Tree(Path(out))  # the safe-write layer: nothing through a planted link
    tree.write_json("analyses/collapse/results.json", first["collapse"])
    tree.write_json("analyses/squash/results.json", first["squash"])
    table = [{k: v for k, v in r.items() if k != "results"} for r in rows]
    tree.write_json("measurements.json", table)

    claims = _synthetic_claims(table, seeds)
    if not quick:
        claims += _demo_claims(progress)
    return claims


def _synthetic_claims(table: list[dict[str, Any]], seeds: list[int]) -> list[Claim]:
    """The four claims on the synthetic models, judged on every seed's measurements."""

    def each(fmt: str) -> str:
        return (
            "; ".join(fmt.format(**r) for r in table) if len(table) > 1 else fmt.format(**table[0])
        )

    falls, sooner, delayed, delayed_per_seed, early = _judged(table)
    seeds_text = f"seed{'s' if len(seeds) > 1 else ''} {','.join(map(str, seeds))}"
    claims = [
        Claim(
            "the ∞-distance between last-token states of v and v* falls with n (synthetic, fp32; "
            "judged: a 10x drop from n=1, falling in 8 of 10 tenths)",
            "decays with n (Thm 4.2; synthetic 1 layer, 1 head, d=64)",
            f"{seeds_text}: "
            + each(
                "{linf_first:.2g} at n=1 → {linf_last:.2g} at n={n_max}, "
                "falling in {falls_tenths}/{tenths} tenths"
            ),
            falls,
        ),
        Claim(
            "collapse sooner in bf16 than in fp32 (synthetic)",
            "bf16 reaches its resolution at ≈ 50 ones (Gemma-7B); fp32 later",
            f"{seeds_text}: collapse n "
            + each("bf16 {collapse_bf16} vs fp32 {collapse_fp32}")
            + " (None: not within the range)",
            sooner,
        ),
        Claim(
            f"a separator every {EVERY} tokens delays collapse (synthetic)",
            "commas every third digit keep the states apart",
            f"{seeds_text}, n ≤ {table[0]['sep_n_max']}: bf16 first at resolution "
            + each("plain n={first_bf16_plain} vs separated n={first_bf16_sep}")
            + "; fp32 ∞-distance at the largest n "
            + each(
                "plain {linf_fp32_plain_at_sep_max:.2g} vs separated {linf_fp32_sep_at_sep_max:.2g}"
            )
            + f" (holds for {sum(delayed_per_seed)} of {len(table)} seeds; judged on all)",
            delayed,
        ),
        Claim(
            "the last token is more sensitive to early positions than to late ones",
            "sensitivity bounded by causal paths, favouring early tokens (Thm 5.1)",
            f"{seeds_text}, 4 layers, no PE, 32 digits: share of the first quarter vs the last "
            "quarter (excl. the last token) at the final state: "
            + "; ".join(
                f"{p} {s['first_quarter']:.3f} vs {s['last_quarter_excl_last']:.3f}"
                for p, s in table[0]["shares"].items()
            ),
            early,
        ),
    ]
    return claims


def _judged(table: list[dict[str, Any]]) -> tuple[bool, bool, bool, list[bool], bool]:
    """Each synthetic claim judged on every seed: falls, sooner in bf16, delayed by separators
    (and per seed), early positions more sensitive."""
    # "falls": at least a 10x drop from n=1 to the largest n, falling in >= 8 of 10 tenths
    falls = all(
        r["linf_last"] < 0.1 * r["linf_first"] and r["falls_tenths"] >= 0.8 * r["tenths"]
        for r in table
    )
    sooner = all(_later(r["collapse_fp32"], r["collapse_bf16"]) for r in table)
    delayed_per_seed = [
        _later(r["first_bf16_sep"], r["first_bf16_plain"])
        and r["linf_fp32_sep_at_sep_max"] > r["linf_fp32_plain_at_sep_max"]
        for r in table
    ]
    delayed = all(delayed_per_seed)
    early = all(
        s["first_quarter"] > s["last_quarter_excl_last"]
        for r in table
        for s in r["shares"].values()
    )
    return falls, sooner, delayed, delayed_per_seed, early
