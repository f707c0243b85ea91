"""Counting tasks (qc, mfc), the histogram construction, thresholds, and a tiny trained sweep."""

from __future__ import annotations

import pytest
import torch

from interp.analysis.counting import (
    SweepConfig,
    build_histogram_model,
    evaluate_count_model,
    fit_line,
    load_cells,
    m_threshold,
    parse_int_list,
    run_sweep,
    summarise,
)
from interp.errors import ConfigError
from interp.tasks import build_task


@pytest.fixture(autouse=True)
def _one_thread():
    # tiny models: one thread is faster, and far faster on a loaded machine
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("sampling", ["uniform", "dirichlet"])
@pytest.mark.parametrize("query", ["uniform", "present"])
def test_qc_labels_match_brute_force(sampling: str, query: str) -> None:
    task = build_task("qc", {"m": 5, "n": 12, "sampling": sampling, "query": query})
    batch = task.sample(64, torch.Generator().manual_seed(1))
    assert batch.inputs.shape == (64, 14) and bool(batch.mask[:, -1].all())
    assert int(batch.mask.sum()) == 64
    for row, target in zip(batch.inputs.tolist(), batch.targets[:, -1].tolist(), strict=True):
        assert row[0] == 5  # <bos>
        data, q = row[1:-1], row[-1]
        assert all(0 <= t < 5 for t in data) and 0 <= q < 5
        assert target == sum(1 for t in data if t == q)
        if query == "present":
            assert target >= 1


@pytest.mark.parametrize("sampling", ["uniform", "dirichlet"])
def test_mfc_labels_match_brute_force(sampling: str) -> None:
    task = build_task("mfc", {"m": 4, "sampling": sampling})
    assert task.n == 40 and task.model_overrides()["d_vocab"] == 41
    batch = task.sample(32, torch.Generator().manual_seed(2))
    for row, target in zip(batch.inputs.tolist(), batch.targets[:, -1].tolist(), strict=True):
        data = row[1:]
        assert len(data) == 40 and row[0] == 4
        assert target == max(data.count(t) for t in set(data))


@pytest.mark.parametrize(
    ("options", "fragment"),
    [({"m": 1}, "m must be"), ({"m": 4, "n": 0}, "n must be"), ({"sampling": "zipf"}, "sampling")],
)
def test_bad_task_options_are_config_errors(options, fragment) -> None:
    with pytest.raises(ConfigError, match=fragment):
        build_task("qc", options)


@pytest.mark.parametrize(("d", "m", "n"), [(8, 8, None), (16, 5, 30), (6, 2, 40), (12, 9, 25)])
def test_histogram_construction_is_exact_when_d_ge_m(d: int, m: int, n: int | None) -> None:
    model = build_histogram_model(d, m, n)
    task = build_task("qc", {"m": m, "n": n})
    result = evaluate_count_model(model, task, samples=300, seed=d + m)
    assert result["accuracy"] == 1.0
    # present queries too (counts >= 1, up to n)
    task = build_task("qc", {"m": m, "n": n, "query": "present", "sampling": "dirichlet"})
    assert evaluate_count_model(model, task, samples=300, seed=3)["accuracy"] == 1.0


def test_histogram_construction_degrades_when_m_gt_d() -> None:
    model = build_histogram_model(4, 12, 24)
    task = build_task("qc", {"m": 12, "n": 24})
    assert evaluate_count_model(model, task, samples=300, seed=0)["accuracy"] < 0.8


def test_histogram_construction_uses_hooks() -> None:
    model = build_histogram_model(6, 4, 10)
    tokens, answers = build_task("qc", {"m": 4, "n": 10}).labelled(
        8, torch.Generator().manual_seed(0)
    )
    _, cache = model.run_with_cache(tokens)
    pattern = cache["blocks.0.attn.hook_pattern"][:, 0, -1]  # [batch key_pos]
    # the query spreads its attention over <bos> and the c + 1 copies of itself
    assert torch.allclose(pattern[:, 0], 1.0 / (answers.double() + 2))


def test_parse_int_list() -> None:
    assert parse_int_list("8,16,32", "--d") == (8, 16, 32)
    assert parse_int_list("4..8", "--m") == (4, 5, 6, 7, 8)
    assert parse_int_list("4..16:4, 2", "--m") == (2, 4, 8, 12, 16)
    for bad, fragment in (
        ("8..4", "empty"),
        ("", "empty"),
        ("a,b", "cannot read"),
        ("4..8:0", "step"),
    ):
        with pytest.raises(ConfigError, match=fragment):
            parse_int_list(bad, "--m")


def test_threshold_interpolation_and_fit() -> None:
    assert m_threshold([2, 4, 8], [1.0, 0.9, 0.7]) == {
        "m_thr": pytest.approx(6.0),
        "censored": None,
    }
    assert m_threshold([2, 4], [0.5, 0.4])["censored"] == "below"
    assert m_threshold([2, 4], [0.95, 0.9])["censored"] == "above"
    fit = fit_line([8, 16, 32], [9, 17, 33])
    assert fit["slope"] == pytest.approx(1.0) and fit["intercept"] == pytest.approx(1.0)
    assert fit_line([8], [9]) is None
    cells = [{"d": 4, "m": m, "accuracy": a} for m, a in ((2, 1.0), (4, 0.9), (8, 0.5))]
    summary = summarise(cells)
    assert summary["thresholds"][0]["mean_acc_m_le_d"] == pytest.approx(0.95)
    assert summary["thresholds"][0]["mean_acc_m_gt_d"] == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"m_values": (1, 4)}, "m must be >= 2"),
        ({"n": 0}, "n must be"),
        ({"d_values": (6,), "n_heads": 4}, "not divisible"),
        ({"d_values": ()}, "empty"),
        ({"m_values": ()}, "empty"),
        ({"task": "copy"}, "counting task"),
        ({"n_heads": 0}, "heads and layers must be >= 1"),
        ({"mlp_ratio": -1}, "mlp_ratio must be >= 0"),
    ],
)
def test_sweep_config_validation(kwargs, fragment) -> None:
    with pytest.raises(ConfigError, match=fragment):
        SweepConfig(**kwargs).validate()  # configs are inert: checked when used (#14)


def test_trained_tiny_model_beats_chance(tmp_path) -> None:
    # d = 16, m = 2, n = 4 (chance: the most common count, 6/16 of sequences)
    cfg = SweepConfig(
        d_values=(16,), m_values=(2,), n_factor=2, n_heads=2, steps=400, batch_size=32,
        lr=1e-2, warmup_steps=30, eval_samples=500,
    )  # fmt: skip
    cell = run_sweep(tmp_path, cfg)["cells"][0]
    assert cell["accuracy"] > cell["chance"] + 0.15, cell


def test_sweep_resumes_cell_by_cell(tmp_path, monkeypatch) -> None:
    cfg = SweepConfig(
        d_values=(8,), m_values=(2, 3), n_heads=2, n_factor=2, steps=3, eval_samples=20
    )
    first = run_sweep(tmp_path, cfg)
    assert len(first["cells"]) == 2 and len(load_cells(tmp_path)) == 2
    (tmp_path / "cells" / "d0008_m0003.json").unlink()
    trained: list[int] = []
    import interp.train.batched as batched

    real = batched.train_models

    def spy(models, *args, **kwargs):
        trained.extend(m.cfg.d_vocab for m in models)
        return real(models, *args, **kwargs)

    monkeypatch.setattr(batched, "train_models", spy)
    second = run_sweep(tmp_path, cfg)
    assert len(trained) == 1  # only the missing cell was trained again
    again = {(c["d"], c["m"]): c["accuracy"] for c in second["cells"]}
    assert again == {(c["d"], c["m"]): c["accuracy"] for c in first["cells"]}


def test_reproduction_reports_the_trend_claims(tmp_path, monkeypatch) -> None:
    import interp.reproductions.counting as repro

    quick = repro.sweep_config(True)
    assert quick.d_values[0] < quick.d_values[-1] and max(quick.m_values) > min(quick.d_values)
    tiny = SweepConfig(d_values=(4, 8), m_values=(2, 6), n_factor=1, n_heads=2, steps=5,
                       eval_samples=40)  # fmt: skip
    monkeypatch.setattr(repro, "sweep_config", lambda quick: tiny)
    claims = repro.reproduce_counting(tmp_path, True, lambda message: None)
    assert len(claims) == 4
    assert claims[0].passed and claims[1].passed  # the construction: exact iff d >= m
    assert "d=4" in claims[3].ours and "d=8" in claims[3].ours
    assert (tmp_path / "sweep" / "results.json").is_file()
    cells = load_cells(tmp_path / "sweep")
    assert sorted((c["d"], c["m"]) for c in cells) == [(4, 2), (4, 6), (8, 2), (8, 6)]


def test_trend_helpers_judge_censored_thresholds() -> None:
    from interp.reproductions.counting import _drops, _rises

    def summary(rows):
        return {"thresholds": [{"d": d, "m_thr": v, "censored": c, "mean_acc_m_le_d": a,
                                "mean_acc_m_gt_d": b} for d, v, c, a, b in rows]}  # fmt: skip

    rising = summary([(4, 2.9, None, 0.8, 0.5), (16, None, "above", 0.9, None)])
    flat = summary([(4, 5.0, None, 0.8, 0.5), (16, 4.0, None, 0.9, 0.95)])
    assert _rises(rising, 24) and not _rises(flat, 24)
    assert _drops(rising)[0] and not _drops(flat)[0]
