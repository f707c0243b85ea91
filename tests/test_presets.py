"""``interp reproduce NAME --scale paper``: each preset's numbers are the paper's (the source of
each number in a comment), each runs for 2 steps on a CPU, and its time estimate is printed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cli_helpers import assert_one_line_error, invoke

import interp.reproductions  # noqa: F401  (registers the presets)
from interp import presets
from interp.experiments.reproduce import ReproduceConfig
from interp.presets import Work, estimate, estimate_seconds, get_preset, preset_names


def test_every_paper_preset_is_registered() -> None:
    assert preset_names("paper") == ("counting", "grokking")


def test_grokking_preset_is_nandas_config() -> None:
    n = get_preset("grokking", "paper").nanda.resolved()
    # mechanistic-interpretability-grokking/progress-measures-paper transformers.py, Config:
    # lr 1e-3, weight_decay 1.0, p 113, d_model 128, frac_train 0.3, seed 0, d_mlp 4*d_model,
    # num_heads 4, use_ln False; Trainer: AdamW betas (0.9, 0.98), LambdaLR min(step/10, 1)
    assert (n.p, n.train_fraction, n.pairs, n.d_model, n.width) == (113, 0.3, "all", 128, 512)
    assert (n.lr, n.weight_decay, n.beta1, n.beta2, n.seed) == (1e-3, 1.0, 0.9, 0.98, 0)
    assert n.optim.warmup == 10 and n.variant == "nanda"
    assert n.steps == 40_000  # the paper's 40k epochs (the code's num_epochs default is 50k)


def test_grokking_preset_is_pairs_notebook_config() -> None:
    q = get_preset("grokking", "paper").pair.resolved()
    # PAIR-code/ai-explorables server-side/grokking/MLP_Modular_Addition.ipynb, `hyper`:
    # n_tokens 67, percent_train .4, embed_size 500, hidden_size 24, weight_decay 1,
    # learning_rate 1e-3, max_steps 50000 (range(max_steps + 1) updates), seed 165,
    # is_symmetric_input True, embed_config 'tied', b1 .9, b2 .98
    assert (q.p, q.train_fraction, q.pairs, q.d_embed, q.width) == (67, 0.4, "ordered", 500, 24)
    assert (q.lr, q.weight_decay, q.beta1, q.beta2, q.seed) == (1e-3, 1.0, 0.9, 0.98, 165)
    assert q.steps == 50_001 and q.variant == "pair" and q.log_every == 100
    assert q.definition.loss == "class_mean" and q.definition.split == "pair"


def test_counting_preset_is_the_papers_setup() -> None:
    s = get_preset("counting", "paper").sweep
    # Yehudai et al. 2024 (arXiv 2407.15160), training setup (no public code): 2 layers,
    # 4 heads, d 8..128, m 5..150, n = 10 m, Adam 1e-4, batch 16, 100k steps
    assert (s.n_layers, s.n_heads, s.n_factor, s.lr, s.batch_size, s.steps) == (
        2, 4, 10, 1e-4, 16, 100_000,
    )  # fmt: skip
    assert (min(s.d_values), max(s.d_values), min(s.m_values), max(s.m_values)) == (8, 128, 5, 150)


def test_estimate_follows_the_work_and_the_throughput() -> None:
    work = Work(steps=1000, flops=2e12)
    assert estimate_seconds(work, "cpu", 1e10) == pytest.approx(1000 * 2e-4 + 200)
    assert estimate_seconds(work, "cuda", 1e12) == pytest.approx(1000 * 1.5e-3 + 2)
    e = estimate(get_preset("grokking", "paper"), "cuda", measure=False)
    assert e["throughput"] == "assumed" and e["steps"] == 90_001
    assert "on cuda" in e["text"] and e["seconds"] > 0


def _small_grokking() -> Any:
    """The grokking preset's code path at small moduli (p 113 spends a minute in analyses)."""
    preset = get_preset("grokking", "paper")
    return type(preset)(nanda=preset.nanda.replace(p=13, d_model=32, width=64),
                        pair=preset.pair.replace(p=11, d_embed=40))  # fmt: skip


def test_grokking_paper_preset_runs_two_steps(tmp_path: Path) -> None:
    notes: list[str] = []
    claims = _small_grokking().run(tmp_path, notes.append, "cpu", 2)
    assert len(claims) == 3
    for part in ("nanda", "pair"):
        rows = (tmp_path / part / "metrics.jsonl").read_text().splitlines()
        assert rows and '"step": 2' in rows[-1] or any('"step": 2' in r for r in rows)
    assert any("no attention or unembedding biases" in n for n in notes)


def test_counting_paper_preset_runs_two_steps(tmp_path: Path) -> None:
    preset = get_preset("counting", "paper")
    small = type(preset)(preset.sweep.replace(d_values=(8,), m_values=(5,), eval_samples=16))
    claims = small.run(tmp_path, lambda text: None, "cpu", 2)
    assert len(claims) == 2
    assert (tmp_path / "sweep" / "results.json").is_file()


def test_cli_prints_the_estimate_and_runs(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setitem(presets._PRESETS, ("grokking", "paper"), _small_grokking())
    out = tmp_path / "run"
    result = invoke("reproduce", "grokking", "--scale", "paper", "--steps-override", "2",
                    "--out", str(out))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "grokking at paper scale: 90,001 optimizer steps" in result.output
    assert "GFLOP/s measured" in result.output
    assert (out / "claims.json").is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["collapse", "--scale", "paper"], "no paper preset"),
        (["grokking", "--scale", "huge"], "unknown --scale"),
        (["grokking", "--scale", "paper", "--quick"], "--quick is the cpu scale"),
        (["grokking", "--steps-override", "2"], "are for --scale paper"),
        (["grokking", "--scale", "paper", "--steps-override", "0"], "must be >= 1"),
    ],
)
def test_bad_scale_options_are_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    out = tmp_path / "never"
    result = invoke("reproduce", *args, "--out", str(out))
    assert_one_line_error(result, message)
    assert not out.exists()


def test_config_reads_back() -> None:
    c = ReproduceConfig(name="grokking", scale="paper", device="cpu", steps=2)
    assert ReproduceConfig.from_dict(c.to_dict()) == c
