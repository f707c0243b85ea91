"""Grokking: task generators, the hand-set 5-neuron model, Fourier analysis, full-batch
memorisation, progress measures, and batched sweeps against one-at-a-time training."""

from __future__ import annotations

import math

import pytest
import torch

from interp.analysis.fourier import (
    frequency_power,
    key_frequencies,
    planted_embedding,
    project_on_frequency,
)
from interp.errors import ConfigError, NumericalError
from interp.experiments.grok import build_data, build_model
from interp.grok.config import GrokConfig
from interp.grok.config import GrokSweepConfig as SweepConfig
from interp.grok.detect import LabelRule, label_run, summarise_run
from interp.grok.models import FixedFourierMLP, NandaTransformer, PairMLP, ParityMLP
from interp.grok.progress import restricted_excluded_loss
from interp.tasks import build_task
from interp.tasks.modadd import all_pairs, train_mask
from interp.train.full_batch import (
    FullBatchData,
    log_steps,
    train_full_batch,
    train_full_batch_many,
)
from interp.train.optim import Optim


@pytest.mark.parametrize("pairs, p", [("all", 7), ("ordered", 7), ("ordered", 67), ("all", 2)])
def test_modadd_every_pair_once_with_correct_labels(pairs, p) -> None:
    task = build_task("modadd", {"p": p, "pairs": pairs, "train_fraction": 0.4})
    data = task.dataset()
    seen = list(zip(data.a.tolist(), data.b.tolist(), strict=True))
    expected = {(a, b) for a in range(p) for b in range(p) if pairs == "all" or a <= b}
    assert len(seen) == len(set(seen)) == len(expected) and set(seen) == expected
    assert torch.equal(data.label, (data.a + data.b) % p)
    assert data.n_train == round(0.4 * len(seen)) or p == 2
    seq = task.sequences(data)
    assert seq.shape == (len(seen), 3) and bool((seq[:, 2] == p).all())


def test_modadd_sample_scores_the_last_position_from_its_split() -> None:
    task = build_task("modadd", {"p": 11, "train_fraction": 0.5})
    data = task.dataset()
    train_pairs = {
        (a, b)
        for a, b, t in zip(data.a.tolist(), data.b.tolist(), data.train.tolist(), strict=True)
        if t
    }
    for split in ("train", "test"):
        batch = task.sample(64, torch.Generator().manual_seed(0), split)
        assert batch.mask[:, -1].all() and not batch.mask[:, :-1].any()
        assert torch.equal(batch.targets[:, -1], (batch.inputs[:, 0] + batch.inputs[:, 1]) % 11)
        inside = [(a, b) in train_pairs for a, b in batch.inputs[:, :2].tolist()]
        assert all(inside) if split == "train" else not any(inside)


def test_sparse_parity_labels_and_fixed_training_set() -> None:
    task = build_task("sparse-parity", {"n_bits": 10, "k": 3, "n_train": 50, "n_test": 20})
    x, y, xt, yt = task.dataset()
    assert x.shape == (50, 10) and set(x.unique().tolist()) == {-1.0, 1.0}
    assert torch.equal(y, ((x[:, :3] > 0).sum(1) % 2))
    assert torch.equal(yt, ((xt[:, :3] > 0).sum(1) % 2))
    assert torch.equal(task.dataset()[0], x)  # fixed by split_seed
    smaller = build_task("sparse-parity", {"n_bits": 10, "k": 3, "n_train": 20, "n_test": 20})
    assert torch.equal(smaller.dataset()[0], x[:20]) and torch.equal(smaller.dataset()[2], xt)


@pytest.mark.parametrize(
    "options, fragment",
    [
        ({"p": 1}, "p must be"),
        ({"p": 7, "train_fraction": 0.0}, r"\(0, 1\)"),
        ({"p": 7, "train_fraction": 1.0}, r"\(0, 1\)"),
    ],
)
def test_modadd_bad_options_are_config_errors(options, fragment) -> None:
    with pytest.raises(ConfigError, match=fragment):
        build_task("modadd", options)


def test_sparse_parity_k_above_n_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="k"):
        build_task("sparse-parity", {"n_bits": 4, "k": 5})
    with pytest.raises(ConfigError, match="k"):
        GrokConfig(task="sparse-parity", n_bits=4, k=5).validate()  # configs are inert


@pytest.mark.parametrize("p", [5, 13, 67, 113])
@pytest.mark.parametrize("frequency", [1, 2])
def test_hand_set_five_neuron_fixed_embedding_model_solves_mod_p(p, frequency) -> None:
    model = FixedFourierMLP.hand_set(p, frequency=frequency)
    assert model.W_in.shape == (2, 5)
    a, b = all_pairs(p, ordered=False)
    with torch.no_grad():
        predicted = model(torch.stack([a, b], 1)).argmax(-1)
    assert torch.equal(predicted, (a + b) % p)


def test_dft_recovers_planted_frequencies() -> None:
    p, planted = 113, [14, 35, 41, 42, 52]  # Nanda et al.'s key frequencies
    emb = planted_embedding(p, planted, d=128, noise=0.05, seed=3)
    spec = frequency_power(emb)
    assert len(spec.power) == p // 2 + 1
    assert key_frequencies(spec, 5) == planted
    assert key_frequencies(spec, None, min_share=0.05) == planted
    assert spec.top_share(5) > 0.9
    # the embedding projected on a planted frequency is a circle in residue order x * f mod p
    emb = planted_embedding(p, [14], d=16, seed=1)
    xy = project_on_frequency(emb, 14)
    plane_share = float(xy.pow(2).sum() / (emb - emb.mean(0)).pow(2).sum())
    assert plane_share == pytest.approx(1.0, abs=1e-9)  # the plane holds the whole embedding
    # whitened, the points are a circle visited in steps of 2 pi f / p (an ellipse before)
    cov = xy.T @ xy / p
    evals, evecs = torch.linalg.eigh(cov)
    white = xy @ evecs @ torch.diag(evals.rsqrt())
    radius = white.norm(dim=1)
    assert float(radius.std() / radius.mean()) < 1e-6
    angle = torch.atan2(white[:, 1], white[:, 0])
    step = torch.remainder(angle[1:] - angle[:-1], 2 * torch.pi)
    expected = 2 * torch.pi * 14 / p
    assert torch.allclose(step, torch.full_like(step, expected), atol=1e-6) or torch.allclose(
        step, torch.full_like(step, 2 * torch.pi - expected), atol=1e-6
    )


def test_restricted_loss_of_a_pure_fourier_logit_is_low_and_excluded_high() -> None:
    p = 13
    a, b = all_pairs(p, ordered=False)
    c = torch.arange(p)
    # logits of the Fourier algorithm: cos(w (a + b - c)) for two frequencies
    w = 2 * torch.pi / p
    logits = sum(8 * torch.cos(w * f * ((a + b)[:, None] - c[None])) for f in (3, 5))
    labels = (a + b) % p
    train = train_mask(len(a), 0.3, 0)
    out = restricted_excluded_loss(logits, labels, train, p, [3, 5])
    # removing both key frequencies leaves nothing (the all-at-once variant, by its name)
    assert out["restricted_loss"] < 0.05 and out["excluded_loss_all_keys"] > 2.0
    assert len(out["excluded_loss"]) == 2  # Nanda: one value per key frequency


def test_log_steps_and_labels() -> None:
    steps = log_steps(1000, 250)
    assert steps[0] == 0 and steps[-1] == 1000 and {250, 500, 750}.issubset(steps)
    assert len([s for s in steps if s <= 10]) >= 8  # dense early
    rule = LabelRule()
    assert label_run([1.0, 0.5], [1.0, 0.6], rule) == "no-learn"
    assert label_run([1.0, 1e-6], [5.0, 5.0], rule) == "memorise"
    assert label_run([1.0, 1e-7, 1e-7], [5.0, 5.0, 1e-6], rule) == "grok"
    assert label_run([1.0, 1e-6], [1.0, 1e-6], rule) == "generalise"
    s = summarise_run([0, 10, 20], [1, 0, 0], [1, 1, 0], [0.1, 1.0, 1.0], [0.0, 0.2, 0.97], rule)
    assert s["memorisation_step"] == 10 and s["grokking_step"] == 20 and s["grok_delay"] == 10


def test_short_full_batch_run_memorises_the_training_set() -> None:
    cfg = GrokConfig(p=23, train_fraction=0.5, width=32, d_embed=16, weight_decay=0.0, lr=1e-2)
    data = build_data(cfg)
    rows: list[dict] = []
    info = train_full_batch(
        build_model(cfg), data, 200, cfg.optim, log_every=50, on_metrics=rows.append
    )
    train = [r for r in rows if r["split"] == "train"]
    val = [r for r in rows if r["split"] == "val"]
    assert train[-1]["step"] == 200 and train[-1]["accuracy"] == 1.0
    assert train[-1]["loss"] < 0.05 < val[-1]["loss"]  # memorised, not generalised
    assert info["steps_per_second"] > 0


def test_nanda_transformer_is_our_hooked_model_without_layernorm() -> None:
    model = NandaTransformer(7, d_model=32, seed=0)
    cfg = model.model.config
    assert (cfg.n_layers, cfg.normalization, cfg.act_fn, cfg.tied_embeddings) == (
        1,
        "none",
        "relu",
        False,
    )
    assert cfg.d_vocab == 8 and cfg.n_ctx == 3
    tokens = build_task("modadd", {"p": 7}).sequences()
    _, cache = model.model.run_with_cache(tokens)
    assert "blocks.0.mlp.hook_post" in cache
    # Nanda's loss scores the p + 1 outputs ("=" included); the neurons read the p residues
    assert model(tokens).shape == (49, 8) and model.neuron_weights().shape == (7, 512)


def _one_at_a_time(model, data, steps, optim, dtype):
    model = model.to(dtype)
    data = FullBatchData(
        data.x.to(dtype) if data.x.is_floating_point() else data.x, data.y, data.train
    )
    rows: list[dict] = []
    train_full_batch(model, data, steps, optim, log_every=10, on_metrics=rows.append)
    return rows, model


@pytest.mark.parametrize("engine", ["auto", "vmap"])  # auto: the models' hand-batched forward
@pytest.mark.parametrize("family", ["pair-mlp", "parity-mlp"])
def test_batched_sweep_matches_one_at_a_time_training(family, engine) -> None:
    """Same seeds -> same curves and weights, for models with different weight decays and train
    sets (float64, so the comparison is not blurred by Adam amplifying float32 rounding)."""
    steps, dtype = 30, torch.float64
    if family == "pair-mlp":
        p = 17
        a, b = all_pairs(p, ordered=True)
        x, y = torch.stack([a, b], 1), (a + b) % p
        specs = [(0, 1.0, 0.4), (1, 0.0, 0.4), (2, 0.5, 0.6)]
        models = [PairMLP(p, 8, 6, seed=s) for s, _, _ in specs]
        masks = torch.stack([train_mask(len(y), f, s) for s, _, f in specs])
    else:
        task = build_task("sparse-parity", {"n_bits": 8, "k": 2, "n_train": 40, "n_test": 30})
        xtr, ytr, xte, yte = task.dataset()
        x, y = torch.cat([xtr, xte]).to(dtype), torch.cat([ytr, yte])
        specs = [(0, 1.0, 40), (1, 0.0, 20), (2, 0.3, 30)]
        models = [ParityMLP(8, 16, seed=s) for s, _, _ in specs]
        masks = torch.stack([torch.arange(len(y)) < n for _, _, n in specs])
    models = [m.to(dtype) for m in models]
    optim = Optim(lr=1e-2)
    hist = train_full_batch_many(
        models, x, y, masks, [wd for _, wd, _ in specs], steps, optim, log_every=10, engine=engine
    )  # the models are trained in place
    for i, (seed, wd, _) in enumerate(specs):
        fresh = (
            PairMLP(17, 8, 6, seed=seed) if family == "pair-mlp" else ParityMLP(8, 16, seed=seed)
        )
        rows, model = _one_at_a_time(
            fresh, FullBatchData(x, y, masks[i]), steps, Optim(lr=1e-2, weight_decay=wd), dtype
        )
        train = {r["step"]: r for r in rows if r["split"] == "train"}
        val = {r["step"]: r for r in rows if r["split"] == "val"}
        assert sorted(train) == hist.steps
        for j, step in enumerate(hist.steps):
            assert abs(train[step]["loss"] - hist.train_loss[i][j]) <= 1e-5
            assert abs(val[step]["loss"] - hist.test_loss[i][j]) <= 1e-5
            assert train[step]["accuracy"] == pytest.approx(hist.train_acc[i][j], abs=1e-6)
            assert abs(train[step]["weight_norm"] - hist.weight_norm[i][j]) <= 1e-5
        batched = dict(models[i].named_parameters())
        for name, value in model.named_parameters():
            assert float((value.detach() - batched[name].detach()).abs().max()) <= 1e-5, name


def test_a_non_finite_model_of_a_batched_sweep_is_named_by_its_label() -> None:
    p = 11
    a, b = all_pairs(p, ordered=True)
    x, y = torch.stack([a, b], 1), (a + b) % p
    models = [PairMLP(p, 8, 6, seed=s) for s in range(3)]
    masks = torch.stack([train_mask(len(y), f, 0) for f in (0.4, 0.6, 0.4)])
    with torch.no_grad():
        models[2].W_out.fill_(float("nan"))  # the second member of the 0.4 group
    labels = ["run a", "run b", "run c"]
    with pytest.raises(NumericalError) as info:
        train_full_batch_many(models, x, y, masks, [0.0] * 3, 5, labels=labels)
    assert (info.value.cell, info.value.step, info.value.quantity) == ("run c", 0, "loss")


def test_sweep_config_grid_and_validation() -> None:
    cfg = SweepConfig(
        weight_decays=(0.0, 1.0), train_fractions=(0.3, 0.5), widths=(8, 16), seeds=(0, 1, 2)
    )
    assert len(cfg.points()) == 24
    assert cfg.run_config(cfg.points()[0]).pairs == "ordered"
    with pytest.raises(ConfigError, match=r"\(0, 1\)"):
        SweepConfig(train_fractions=(0.5, 1.5)).validate()
    with pytest.raises(ConfigError, match="p must"):
        SweepConfig(p=1).validate()
    assert SweepConfig.from_dict(cfg.to_dict()) == cfg


def test_sparse_parity_defaults_are_the_grokking_recipe_and_modadd_keeps_the_papers() -> None:
    parity = GrokConfig(task="sparse-parity").resolved()
    assert (parity.width, parity.lr, parity.weight_decay, parity.steps) == (256, 1e-2, 0.3, 4000)
    assert parity.optim == Optim(1e-2, 0.3)
    modadd = GrokConfig().resolved()
    assert (modadd.width, modadd.lr, modadd.weight_decay, modadd.steps) == (24, 1e-3, 1.0, 50_000)
    assert GrokConfig(task="sparse-parity", lr=3e-3, weight_decay=0.0).optim == Optim(3e-3, 0.0)


def test_nanda_transformer_fast_forward_matches_the_hooked_model_and_takes_width() -> None:
    model = NandaTransformer(11, d_model=32, d_mlp=48, seed=1)
    tokens = build_task("modadd", {"p": 11}).sequences()
    torch.testing.assert_close(model(tokens), model.model(tokens)[:, -1])  # p + 1 outputs
    cfg = GrokConfig(model="transformer", p=11, d_model=32, width=48)
    assert build_model(cfg).model.cfg.d_mlp == 48
    assert build_model(GrokConfig(model="transformer", p=11)).model.cfg.d_mlp == 512


def test_nanda_reproduction_pipeline_and_claims_are_computed_from_the_run() -> None:
    from interp.reproductions.grokking import nanda_claims, nanda_transformer

    settings = {"p": 11, "train_fraction": 0.5, "lr": 3e-3, "weight_decay": 1.0, "steps": 30}
    t = nanda_transformer(settings, log=10)
    assert t["steps"][0] == 0 and t["steps"][-1] == 30
    n = len(t["steps"])
    assert len(t["restricted_loss"]) == len(t["excluded_loss"]) == len(t["test_loss"]) == n
    # Nanda's key frequencies: each neuron's dominant one, no fixed count (was: the top 5)
    assert t["key_frequencies"] and all(1 <= f < 11 // 2 for f in t["key_frequencies"])
    assert t["cpu_seconds"] > 0
    assert len(nanda_claims(t)) == 4
    # a run shaped like Nanda's: memorised at 5, restricted loss low at 20, test loss at 40
    fake = {
        **t,
        "steps": [0, 5, 20, 30, 40],
        "memorisation_step": 5,
        "grokking_step": 40,
        "final_test_accuracy": 1.0,
        "train_loss": [4.0, 0.01, 0.01, 0.01, 0.01],
        "test_loss": [4.0, 6.0, 2.0, 0.5, 0.05],
        "restricted_loss": [4.0, 2.0, 0.05, 0.01, 0.01],
        "excluded_loss": [4.0, 1.0, 3.0, 6.0, 5.0],
        "top5_share": 0.9,
    }
    assert [c.passed for c in nanda_claims(fake)] == [True, True, True, True]
    late = {**fake, "restricted_loss": [4.0, 3.0, 2.0, 1.0, 0.05], "excluded_loss": [1.0] * 5}
    assert [c.passed for c in nanda_claims(late)] == [True, True, False, False]
    # a model mid-cleanup: neurons on many frequencies is not "a handful", whatever the
    # embedding's top-5 share
    many = {**fake, "key_frequencies": list(range(1, 10))}
    assert [c.passed for c in nanda_claims(many)] == [True, False, True, True]
    # the excluded loss is judged while the train loss is low: at the memorisation step itself
    # the train loss can still be 0.3, and the excluded loss with it (it fell from there, then
    # rose 5x by grokking)
    early = {
        **fake,
        "train_loss": [4.0, 0.3, 0.01, 0.01, 0.01],
        "excluded_loss": [4.0, 0.3, 0.02, 0.05, 0.1],
    }
    claims = nanda_claims(early)
    assert (
        claims[3].passed is True
        and "0.020 at its lowest while memorised (step 20" in claims[3].ours
    )
    never_low = {**early, "train_loss": [4.0, 0.3, 0.2, 0.2, 0.2]}
    assert nanda_claims(never_low)[3].passed is False


# --------------------------------------------------------------------------- Nanda's definitions


def _slow_unit(values: list[float]) -> list[float] | None:
    norm = math.sqrt(sum(v * v for v in values))
    return [v / norm for v in values] if norm > 1e-9 else None


def _slow_dominant_frequency(grid: list[list[float]], p: int) -> int:
    """One neuron: the f in 1..p//2-1 whose {1, cos f, sin f}^2 block holds most of its norm."""
    total = sum(v * v for row in grid for v in row)
    best, best_share = -1, -1.0
    for f in range(1, p // 2):
        fns = [[1 / math.sqrt(p)] * p]
        for trig in (math.cos, math.sin):
            u = _slow_unit([trig(2 * math.pi * f * x / p) for x in range(p)])
            if u is not None:
                fns.append(u)
        block = sum(
            sum(u[a] * v[b] * grid[a][b] for a in range(p) for b in range(p)) ** 2
            for u in fns
            for v in fns
        )
        if block / total > best_share:
            best, best_share = f, block / total
    return best


@pytest.mark.parametrize("p", [7, 8, 11])
def test_neuron_key_frequencies_match_a_slow_formula(p) -> None:
    from interp.grok.progress import neuron_key_frequencies

    g = torch.Generator().manual_seed(p)
    a, b = torch.meshgrid(torch.arange(p), torch.arange(p), indexing="ij")
    planted = [torch.cos(2 * math.pi * f * (a + b) / p + 0.3).flatten() for f in (1, 2)]
    acts = torch.cat([torch.stack(planted, 1), torch.rand(p * p, 4, generator=g)], 1)
    slow = sorted(
        {
            _slow_dominant_frequency(acts[:, n].reshape(p, p).tolist(), p)
            for n in range(acts.shape[1])
        }
    )
    assert neuron_key_frequencies(acts, p) == slow
    assert {1, 2} <= set(slow) and all(f < p // 2 for f in slow)  # p // 2 is never a key


def test_excluded_loss_is_one_value_per_key_frequency_removed_alone() -> None:
    import torch.nn.functional as F

    p, keys = 7, [1, 3]
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(p * p, p, generator=g, dtype=torch.float64)
    a, b = torch.meshgrid(torch.arange(p), torch.arange(p), indexing="ij")
    labels = ((a + b) % p).flatten()
    train = torch.rand(p * p, generator=g) < 0.5
    got = restricted_excluded_loss(logits, labels, train, p, keys)
    s = (a + b).flatten().tolist()

    def without(freqs: list[int]) -> torch.Tensor:  # slow: column by column, direction by direction
        out = logits.clone()
        for f in freqs:
            for trig in (math.cos, math.sin):
                d = torch.tensor(
                    _slow_unit([trig(2 * math.pi * f * x / p) for x in s]), dtype=torch.float64
                )
                for c in range(p):
                    out[:, c] -= d * float(d @ logits[:, c])
        return out

    slow = [float(F.cross_entropy(without([f])[train], labels[train])) for f in keys]
    assert got["excluded_loss"] == pytest.approx(slow, abs=1e-9)
    all_keys = float(F.cross_entropy(without(keys)[train], labels[train]))
    assert got["excluded_loss_all_keys"] == pytest.approx(all_keys, abs=1e-9)


def test_the_verdict_never_claims_grokking_a_run_did_not_earn() -> None:
    """Runs made to fail: still rising at the end, flat, not fitted; and one that grokked."""
    from interp.grok.detect import verdict

    rule, steps = LabelRule(), list(range(0, 1001, 100))
    fitted = [0.2, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    rising = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.75, 0.8, 0.846]
    assert verdict(steps, fitted, rising, rule).startswith("still rising: test accuracy 0.846")
    flat = [0.0, 0.1, 0.14, 0.146, 0.146, 0.146, 0.146, 0.146, 0.146, 0.146, 0.146]
    assert verdict(steps, fitted, flat, rule).startswith("memorised, not generalised")
    assert verdict(steps, [0.1] * 11, flat, rule).startswith("inconclusive")
    grokked = [0.0, 0.1, 0.1, 0.1, 0.5, 0.9, 0.97, 1.0, 1.0, 1.0, 1.0]
    assert verdict(steps, fitted, grokked, rule).startswith("grokked: memorised at step 100")
    # PAIR's loss rule may say "grok" on a run still rising; the verdict sentence does not
    assert summarise_run(steps, [1.0] + [1e-7] * 10, [5.0] * 10 + [1e-4],
                         fitted, rising, rule)["label"] == "grok"  # fmt: skip


def test_a_memorise_run_still_gaining_test_accuracy_is_labelled_still_rising() -> None:
    """#19: the label agrees with the verdict's "still rising" (synthetic curves): PAIR's loss
    rule says memorise (test loss never below 0.1), test accuracy gains > 0.02 in the last
    tenth -> still-rising; the same losses with flat accuracy stay memorise."""
    from interp.grok.detect import LABELS, RISING, still_rising, verdict

    rule, steps = LabelRule(), list(range(0, 1001, 100))
    train_loss, test_loss = [1.0] + [1e-6] * 10, [5.0] * 11  # memorised, never generalised
    fitted = [0.2] + [1.0] * 10
    rising = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.75, 0.8, 0.846]
    flat = [0.0, 0.1, 0.14, 0.146, 0.146, 0.146, 0.146, 0.146, 0.146, 0.146, 0.146]
    barely = [*flat[:-1], 0.146 + RISING]  # a gain of exactly RISING is not "rising"
    assert "still-rising" in LABELS and label_run(train_loss, test_loss, rule) == "memorise"
    for curve, label, sentence in ((rising, "still-rising", "still rising"),
                                   (flat, "memorise", "memorised, not generalised"),
                                   (barely, "memorise", "memorised, not generalised")):  # fmt: skip
        s = summarise_run(steps, train_loss, test_loss, fitted, curve, rule)
        assert s["label"] == label and still_rising(steps, fitted, curve) == (label != "memorise")
        assert verdict(steps, fitted, curve, rule).startswith(sentence)
    # only memorise becomes still-rising: a rising no-learn or grok run keeps its label
    assert summarise_run(steps, [1.0] * 11, test_loss, fitted, rising, rule)["label"] == "no-learn"
    ok = [5.0] * 10 + [1e-4]
    assert summarise_run(steps, train_loss, ok, fitted, rising, rule)["label"] == "grok"


def test_every_label_has_a_colour_a_count_and_a_phase_diagram_cell() -> None:
    from interp.experiments.grok_sweep import label_counts, sweep_headline
    from interp.grok.detect import LABELS, PAIR_LABELS
    from interp.report.grok import LABEL_COLORS, phase_figure

    assert tuple(LABEL_COLORS) == LABELS
    runs = [{"width": 8, "weight_decay": float(i), "train_fraction": 0.4, "label": label}
            for i, label in enumerate(LABELS)]  # fmt: skip
    fig = phase_figure(runs, "train_fraction", 8)
    heat = fig.data[0]
    assert [row[0] for row in heat.z] == list(range(len(LABELS)))  # each its own colour band
    assert list(heat.colorbar.ticktext) == list(LABELS)
    counts = label_counts(runs)
    assert counts == dict.fromkeys(LABELS, 1)
    assert "still-rising 1" in sweep_headline({"n_runs": len(runs), "label_counts": counts})
    # a sweep without a still-rising run counts PAIR's four labels, as results.json always had
    assert list(label_counts(runs[:2])) == list(PAIR_LABELS)
