"""Training and comparing the vanilla / myopic twins of ``interp precache``
(:func:`run_precache`); the statistics, probes and verdict it uses are
:mod:`interp.analysis.myopia`'s."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from interp.analysis.myopia import (
    KIND,
    MODES,
    MyopiaConfig,
    ProgressFn,
    future_feature_probe,
    gap_summary,
    position_gap,
    token_probe_summary,
    twin_token_probe,
    verdict,
    zero_baseline,
)
from interp.errors import ConfigError, InterpError
from interp.models.loading import load_run_model


def twin_dir(out: Path, seed: int, mode: str) -> Path:
    return Path(out) / "twins" / f"seed{seed}-{mode}"


def run_precache(
    out: Path,
    job: Any,
    config: MyopiaConfig,
    progress: ProgressFn | None = None,
    on_step: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Train the vanilla/myopic twins of ``job`` for every seed under ``out/twins`` and compare.

    A twin whose run directory already exists is resumed (a finished one costs nothing).
    Returns the results dict (the caller writes it).
    """
    say = progress or (lambda msg: None)
    per_seed = []
    for seed in config.seeds:
        row: dict[str, Any] = {"seed": seed}
        for mode in MODES:
            row[mode], baseline = _twin(out, job, config, seed, mode, say, on_step)
            if mode == "vanilla":
                row["zero_baseline"] = baseline
        per_seed.append(row)
    return _compare(job, config, per_seed)


def _twin(
    out: Path,
    job: Any,
    config: MyopiaConfig,
    seed: int,
    mode: str,
    say: ProgressFn,
    on_step: Callable[[int], None] | None,
) -> tuple[dict[str, Any], float | None]:
    """Train (or resume) one twin, then its scores: validation loss by position, the
    future-feature probe (tasks that define one), the future-token probes (text); and the
    predict-zero baseline of its validation data."""
    from interp.train.job import resolve, run_training
    from interp.train.loop import evaluate

    twin = job.__class__(job.model, job.train.replace(seed=seed, grad_mode=mode), job.data)
    path = twin_dir(out, seed, mode)
    say(f"seed {seed}: training the {mode} twin in {path}")
    resume = (path / "config.json").is_file()
    run_training(path, twin, resume=resume, on_step=on_step)
    resolved, source, reader = resolve(twin, path)
    model = load_run_model(path)
    model.eval()
    scores = evaluate(model, source.val_batches(), "cpu")
    scored = {"loss": scores["loss"], "loss_by_pos": scores.get("loss_by_pos")}
    if job.data.source == "task" and hasattr(reader, "future_feature"):
        if config.probe_layer > model.cfg.n_layers:
            raise ConfigError(
                f"probe layer {config.probe_layer} exceeds the model's {model.cfg.n_layers} layers"
            )
        by_layer = future_feature_probe(model, reader, config.probe_sequences, seed, config.ridge)
        scored["probe_r2_by_layer"] = by_layer
        scored["probe_r2"] = by_layer[config.probe_layer - 1]
    if job.data.source == "corpus":
        say(f"seed {seed}: future-token probes on the {mode} twin")
        try:
            scored["token_probe"] = twin_token_probe(
                path, config.token_horizons, config.token_probe_tokens, seed
            )
        except InterpError as e:  # e.g. too few held-out tokens: keep the comparison
            scored["token_probe_error"] = str(e)
    return scored, zero_baseline(source.val_batches()) if mode == "vanilla" else None


def _compare(job: Any, config: MyopiaConfig, per_seed: list[dict[str, Any]]) -> dict[str, Any]:
    """The results of the twins of every seed: gap, positions, probes, verdict."""
    summary = gap_summary(
        [r["vanilla"]["loss"] for r in per_seed], [r["myopic"]["loss"] for r in per_seed]
    )
    baselines = [r["zero_baseline"] for r in per_seed if r.get("zero_baseline") is not None]
    summary["zero_baseline"] = sum(baselines) / len(baselines) if baselines else None
    positions = position_gap(
        [r["vanilla"]["loss_by_pos"] or [] for r in per_seed],
        [r["myopic"]["loss_by_pos"] or [] for r in per_seed],
    )
    probe = None
    if all("probe_r2" in r["vanilla"] for r in per_seed):
        n = len(per_seed)
        probe = {
            "target": "sin(frequency * x_t)",
            "layer": config.probe_layer,
            "vanilla_r2": sum(r["vanilla"]["probe_r2"] for r in per_seed) / n,
            "myopic_r2": sum(r["myopic"]["probe_r2"] for r in per_seed) / n,
            "by_layer": {
                mode: [
                    sum(r[mode]["probe_r2_by_layer"][i] for r in per_seed) / n
                    for i in range(len(per_seed[0][mode]["probe_r2_by_layer"]))
                ]
                for mode in MODES
            },
        }
    token_probe = None
    if job.data.source == "corpus":
        errors = [
            r[m]["token_probe_error"]
            for r in per_seed
            for m in MODES
            if "token_probe_error" in r[m]
        ]
        token_probe = (
            {"status": "not computed", "note": f"future-token probes failed: {errors[0]}"}
            if errors
            else token_probe_summary(per_seed)
        )
    return {
        "kind": KIND,
        "source": job.data.source,
        "per_seed": per_seed,
        "summary": summary,
        "positions": positions,
        "probe": probe,
        "token_probe": token_probe,
        "verdict": verdict(summary, probe, config.precaching_rel_gap, token_probe),
    }
