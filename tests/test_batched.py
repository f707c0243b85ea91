"""Batched training (hand-stacked or vmapped models) gives what the ordinary loop gives each model alone."""

from __future__ import annotations

import pytest
import torch

from interp.config import ModelConfig, OptimConfig, TrainConfig
from interp.errors import ConfigError, NumericalError
from interp.models import HookedTransformer
from interp.models.stacked_forward import stacked_supported
from interp.tasks import build_task
from interp.train.batched import group_key, train_batched, train_models
from interp.train.loop import evaluate, train
from interp.train.sources import TaskSource


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


CFG = TrainConfig(
    steps=12, batch_size=8, eval_every=100, eval_batches=2, log_every=4, seed=3,
    optim=OptimConfig(lr=3e-3, warmup_steps=4, weight_decay=0.1),
)  # fmt: skip


def make(m: int, d: int = 16, task: str = "qc", **model):
    options = {"length": m, "vocab": 5} if task == "copy" else {"m": m, "n": 2 * m}
    t = build_task(task, options)
    base = {"n_layers": 2, "d_model": d, "n_heads": 4, "d_mlp": 32, "positional": "none"}
    cfg = ModelConfig(**{**base, **t.model_overrides(), **model})
    return HookedTransformer(cfg, seed=m), TaskSource(t, CFG.batch_size, CFG.seed, CFG.eval_batches)


def assert_same(batched_model, solo_model, source) -> None:
    for (name, a), b in zip(batched_model.named_parameters(), solo_model.parameters(), strict=True):
        assert (a - b).abs().max() <= 1e-5, name
    got = evaluate(batched_model, source.val_batches())
    want = evaluate(solo_model, source.val_batches())
    assert abs(got["loss"] - want["loss"]) <= 1e-5
    assert abs(got["accuracy"] - want["accuracy"]) <= 1e-5


@pytest.mark.parametrize(
    ("ms", "task", "model", "engine"),
    [
        ((3, 5, 8), "qc", {}, "stacked"),  # different vocabularies and lengths: padded
        ((3, 5, 8), "qc", {}, "vmap"),
        ((4, 4), "mfc", {}, "stacked"),  # equal shapes: stack_module_state
        ((4, 4), "mfc", {}, "vmap"),
        ((3, 6), "qc", {"positional": "absolute"}, "stacked"),  # a position table, padded rows
        ((3, 6), "qc", {"positional": "absolute"}, "vmap"),
        # tables read by several layers (CoPE's shared table, the relative table of cope+rel
        # and rel) through hidden references: functional_call swaps them for every reader
        (
            (3, 5),
            "qc",
            {
                "positional": "cope",
                "positional_options": {"every": 2, "shared": True},
                "n_layers": 4,
            },
            "vmap",
        ),
        ((3, 5), "qc", {"positional": "rel"}, "vmap"),
        # copy scores several positions per sequence (a causal mask on the scored queries);
        # RMSNorm + attention only + 3 layers; no norm + relu + no biases
        ((2, 4), "copy", {"normalization": "rmsnorm", "d_mlp": 0, "n_layers": 3}, "stacked"),
        ((3, 4), "copy", {"normalization": "none", "act_fn": "relu", "use_bias": False}, "stacked"),
        # the rest of the stacked engine's allow-list: every activation, an explicit d_head, eps
        ((2, 3), "copy", {"act_fn": "silu", "d_head": 2, "positional": "absolute"}, "stacked"),
        ((2, 3), "copy", {"act_fn": "gelu_new", "eps": 1e-3, "d_mlp": 8}, "stacked"),
    ],
)
@pytest.mark.filterwarnings("ignore:There is a performance drop")  # CoPE's ops under vmap
def test_batched_equals_training_each_model_alone(ms, task, model, engine) -> None:
    pairs = [make(m, task=task, **model) for m in ms]
    records = train_batched([p for p, _ in pairs], [s for _, s in pairs], CFG, engine=engine)
    assert [r.losses[-1][0] for r in records] == [CFG.steps] * len(ms)
    for (batched_model, source), m in zip(pairs, ms, strict=True):
        solo, solo_source = make(m, task=task, **model)
        train(solo, solo_source, CFG)
        assert_same(batched_model, solo, source)
        assert (batched_model.embed.W_E - make(m, task=task, **model)[0].embed.W_E).abs().max() > 0


def test_stacked_engine_is_refused_where_it_does_not_apply() -> None:
    (a, sa), (b, sb) = make(3, positional="rope"), make(4, positional="rope")
    assert not stacked_supported(a.config)
    with pytest.raises(ConfigError, match="stacked engine"):
        train_batched([a, b], [sa, sb], CFG, engine="stacked")
    train_batched([a, b], [sa, sb], CFG)  # auto: falls back to vmap
    solo, solo_source = make(3, positional="rope")
    train(solo, solo_source, CFG)
    assert_same(a, solo, sa)


def test_the_stacked_engine_states_every_config_field_it_supports(monkeypatch) -> None:
    """The allow-list covers every ModelConfig field, so a new field is a decision, not a
    silent different model; a field it does not know is refused."""
    import dataclasses

    from interp.models import stacked_forward

    assert set(stacked_forward.SUPPORTED) == {f.name for f in dataclasses.fields(ModelConfig)}
    (a, sa), (b, sb) = make(3), make(4)
    assert stacked_supported(a.config)
    monkeypatch.delitem(stacked_forward.SUPPORTED, "eps")
    assert not stacked_supported(a.config)
    with pytest.raises(ConfigError, match="stacked engine does not implement eps"):
        train_batched([a, b], [sa, sb], CFG, engine="stacked")


def test_train_models_groups_by_shape_and_falls_back_for_lone_models() -> None:
    specs = [(3, 16), (5, 16), (3, 8)]  # (m, d): the d = 8 model trains alone
    pairs = [make(m, d) for m, d in specs]
    assert (
        group_key(pairs[0][0].config)
        == group_key(pairs[1][0].config)
        != group_key(pairs[2][0].config)
    )
    done: list[list[int]] = []
    train_models([p for p, _ in pairs], [s for _, s in pairs], CFG, on_model_done=done.append)
    assert sorted(map(sorted, done)) == [[0, 1], [2]]
    for (model, source), (m, d) in zip(pairs, specs, strict=True):
        solo, solo_source = make(m, d)
        train(solo, solo_source, CFG)
        assert_same(model, solo, source)


def test_models_of_different_width_are_refused() -> None:
    (a, sa), (b, sb) = make(3, 16), make(3, 8)
    with pytest.raises(ConfigError, match="share every config field"):
        train_batched([a, b], [sa, sb], CFG)


@pytest.mark.parametrize("specs", [[(3, 16), (5, 16)], [(3, 8)]], ids=["together", "alone"])
def test_a_non_finite_model_is_named_by_its_label(specs) -> None:
    """The error names the model's own label, not its slot in the group trained together."""
    pairs = [make(m, d) for m, d in specs]
    bad = len(pairs) - 1
    with torch.no_grad():
        pairs[bad][0].unembed.W_U.fill_(float("nan"))
    labels = [f"cell d={d} m={m}" for m, d in specs]
    with pytest.raises(NumericalError) as info:
        train_models([p for p, _ in pairs], [s for _, s in pairs], CFG, labels=labels)
    assert labels[bad] in str(info.value)
    assert all(label not in str(info.value) for label in labels[:bad])
    # structured fields, not message text
    e = info.value
    assert (e.quantity, e.step, e.cell, e.model) == ("loss", 0, labels[bad], None)
    assert str(e) == f"loss of {labels[bad]} is nan at step 0; stopping"
