"""``interp reproduce precache``: Wu, Morris & Levine (2024), scaled down to a CPU.

Two comparisons of vanilla/myopic twins (``interp.analysis.myopia``), each a precache run
directory inside the reproduction's output:

* ``synthetic/``: the pre-caching task.  The paper uses frequency 10 (sin(10 x)), 2 layers,
  d_model 128, 2 heads, and reports vanilla ≈ 0.01 against myopic ≈ 1.24 = the trivial
  baseline.  Within a CPU budget of a few hundred steps even the vanilla twin does not leave the
  baseline at frequency 10 (measured here), so we use frequency 3: sin(3x) is still useless for
  the current target and linearly uncorrelated with x (E[x sin 3x] = 3 e^-4.5 ≈ 0.03), but a
  small MLP learns it quickly.  Window 10 and p = 1 as in the paper.
* ``text/``: the built-in corpus (byte tokens), a small model on 64-token blocks; the paper
  trains GPT-2 124M (vanilla 3.28, myopic 3.40).  We report whatever gap we measure, and the
  future-lens probes (``probes/``, horizons 1..3, every layer) of both twins.  Documents go
  10% to validation (not the default 5%): at 1M characters 5% can be a single short document.

Quick mode (smoke test, < 2 min on 2 cores; about 20-50 s measured): small models, one seed,
few steps; its claims are reported but are not expected to reach the paper's separation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from interp.config import DataConfig, ModelConfig, OptimConfig, TrainConfig
from interp.progress import Callbacks
from interp.reproduce import Claim, ProgressFn, register_reproduction


def _compare(out: Path, job: Any, seeds: int, progress: ProgressFn) -> dict[str, Any]:
    """The ``precache`` experiment into ``out`` (a finished one is read back, an interrupted one
    resumed)."""
    from interp.analysis.myopia import MyopiaConfig
    from interp.experiments import execute
    from interp.experiments.precache import PrecacheConfig

    if (out / "results.json").is_file():
        from interp.io import read_json

        return read_json(out / "results.json", what="precache results")
    config = PrecacheConfig(
        job.model, job.train, job.data, MyopiaConfig(seeds=tuple(range(seeds)), probe_layer=1)
    )
    outcome = execute(
        "precache", config, out, resume=True, report=False, progress=Callbacks(on_note=progress)
    )
    return outcome.results.to_dict()


def _jobs(quick: bool) -> tuple[Any, Any, int]:
    from interp.train.job import TrainJob

    if quick:
        synth_model = ModelConfig(n_layers=2, d_model=64, n_heads=2, d_mlp=256)
        synth_train = dict(steps=300, batch_size=32, eval_every=100)
        text_model = ModelConfig(n_layers=2, d_model=32, n_heads=2, d_mlp=64, n_ctx=32)
        text_train = dict(steps=150, batch_size=16, eval_every=50)
        length, seeds, max_chars = 24, 1, 1_000_000
    else:
        synth_model = ModelConfig(n_layers=2, d_model=64, n_heads=2, d_mlp=256)
        synth_train = dict(steps=1000, batch_size=32, eval_every=250)  # 500: seed 0 R² 0.19
        text_model = ModelConfig(n_layers=2, d_model=64, n_heads=2, d_mlp=256, n_ctx=64)
        text_train = dict(steps=400, batch_size=16, eval_every=100)
        length, seeds, max_chars = 32, 2, 1_000_000

    def train(**kw: Any) -> TrainConfig:
        return TrainConfig(
            **kw,
            eval_batches=2 if quick else 4,
            checkpoint_every=kw["steps"],
            optim=OptimConfig(lr=3e-3, warmup_steps=kw["steps"] // 10, weight_decay=0.0),
        )

    synth = TrainJob(
        synth_model,
        train(**synth_train),
        DataConfig(
            source="task",
            task="precache",
            task_options={"length": length, "frequency": 3.0, "window": 10, "p": 1.0},
        ),
    )
    text = TrainJob(
        text_model,
        train(**text_train),
        DataConfig(
            source="corpus",
            corpus="builtin",
            tokenizer="byte",
            max_chars=max_chars,
            val_fraction=0.1,
        ),
    )
    return synth, text, seeds


def _token_probe_claim(tp: dict[str, Any] | None) -> Claim:
    """Future-lens top-1 of both text twins at k = 1..H (reported, not judged)."""
    name = "text: future-token probes (future lens), vanilla vs myopic"
    paper = "no number to compare (reported, not judged)"
    if not tp or tp.get("status") != "done":
        return Claim(name, paper, (tp or {}).get("note", "not computed"), None)
    i = max(0, len(tp["layers"]) - 2)  # the last layer before the final residual stream
    cells = ", ".join(
        f"k={k} {tp['vanilla']['top1'][i][j]:.3f}/{tp['myopic']['top1'][i][j]:.3f}"
        for j, k in enumerate(tp["horizons"])
    )
    widest = max((abs(d) for row in tp["diff"] for d in row), default=0.0)
    return Claim(
        name,
        paper,
        f"top-1 vanilla/myopic from layer {tp['layer_labels'][i]}: {cells}; largest "
        f"|vanilla - myopic| over all layers × horizons {widest:.3f} "
        f"({tp['tokens']['test']} test tokens)",
        None,
    )


@register_reproduction(
    "precache", "myopic vs vanilla twins: pre-caching on a synthetic task, breadcrumbs on text"
)
def reproduce_precache(out: Path, quick: bool, progress: ProgressFn) -> list[Claim]:
    synth_job, text_job, seeds = _jobs(quick)
    progress("synthetic pre-caching task: vanilla and myopic twins")
    synth = _compare(Path(out) / "synthetic", synth_job, seeds, progress)
    progress("built-in text corpus: vanilla and myopic twins")
    text = _compare(Path(out) / "text", text_job, seeds, progress)

    s, t = synth["summary"], text["summary"]
    base = s["zero_baseline"]
    probe = synth["probe"]
    tp = text["positions"]
    n = f"{seeds} seed{'s' if seeds > 1 else ''}"
    ci = t.get("gap_ci")
    ci_text = f", 95% CI [{ci[0]:+.3f}, {ci[1]:+.3f}]" if ci else ""
    return [
        Claim(
            "synthetic: vanilla far below the trivial baseline",
            "vanilla ≈ 0.01 vs baseline ≈ 1.24 (f=10)",
            f"vanilla {s['vanilla']:.3f} vs predict-0 baseline {base:.3f} (f=3, {n})",
            s["vanilla"] < 0.6 * base,
        ),
        Claim(
            "synthetic: myopic stuck near the trivial baseline",
            "myopic ≈ 1.24 ≈ baseline",
            f"myopic {s['myopic']:.3f} vs baseline {base:.3f}",
            s["myopic"] >= 0.85 * base,
        ),
        Claim(
            "synthetic: layer-1 state of vanilla encodes sin(f·x_t), myopic's does not",
            "vanilla R² ≈ 0.985",
            f"ridge probe R² vanilla {probe['vanilla_r2']:.3f}, myopic {probe['myopic_r2']:.3f}",
            probe["vanilla_r2"] >= 0.5 and probe["vanilla_r2"] - probe["myopic_r2"] >= 0.2,
        ),
        Claim(
            "synthetic: verdict is pre-caching",
            "pre-caching",
            synth["verdict"]["label"],
            synth["verdict"]["label"] == "pre-caching",
        ),
        Claim(
            "text: small myopia gap (< 10% of the vanilla loss)",
            "3.28 vs 3.40 (gap 0.12, 3.7%; GPT-2 124M)",
            f"{t['vanilla']:.3f} vs {t['myopic']:.3f} (gap {t['gap']:+.3f}, "
            f"{100 * t['rel_gap']:+.1f}%{ci_text}; tiny model, byte tokens, {n})",
            abs(t["rel_gap"]) < 0.10,
        ),
        Claim(
            "text: myopic better at the first positions, worse later",
            "yes (qualitative)",
            f"gap first quarter {tp['gap_first_quarter']:+.3f}, "
            f"last quarter {tp['gap_last_quarter']:+.3f}",
            tp["gap_first_quarter"] < 0 < tp["gap_last_quarter"],
        ),
        _token_probe_claim(text.get("token_probe")),
        Claim(
            "text: verdict is breadcrumbs",
            "breadcrumbs",
            text["verdict"]["label"],
            text["verdict"]["label"] == "breadcrumbs",
        ),
    ]
