"""Myopic gradients: the efficient attention form against the slow, obvious reference."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from helpers import tiny_task_job
from typer.testing import CliRunner

from cli.main import app
from interp.config import ModelConfig, TrainConfig
from interp.errors import ConfigError
from interp.models import HookedTransformer
from interp.models.positional import positional_names
from interp.train.grad_modes import get_grad_mode, grad_mode, naive_myopic_backward, set_grad_mode

SHAPES = {
    "1L-d8-h2": dict(n_layers=1, d_model=8, n_heads=2, n_ctx=5),
    "2L-d12-h3-rms": dict(n_layers=2, d_model=12, n_heads=3, n_ctx=6, normalization="rmsnorm"),
    "3L-d16-h2-dh6": dict(n_layers=3, d_model=16, n_heads=2, d_head=6, n_ctx=7),
}
BATCH, VOCAB = 3, 11


def build(
    positional: str, shape: str, mlp: bool, dtype=torch.float64, positional_options=None
) -> HookedTransformer:
    cfg = ModelConfig(
        **SHAPES[shape],
        d_mlp=24 if mlp else 0,
        d_vocab=VOCAB,
        positional=positional,
        positional_options=positional_options or {},
        init_range=0.3,
    )
    model = HookedTransformer(cfg, seed=1).to(dtype)
    g = torch.Generator().manual_seed(2)
    with torch.no_grad():  # zero-initialised parts (biases, CoPE tables) would hide paths
        for p in model.parameters():
            if p.requires_grad and not p.any():
                p.copy_(torch.randn(p.shape, generator=g, dtype=dtype) * 0.3)
    return model


def attention_part(positional: str, **options):
    model = build(positional, "1L-d8-h2", False, positional_options=options)
    return model.blocks[0].attn.position


def data(model: HookedTransformer, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    shape = (BATCH, model.cfg.n_ctx)
    return torch.randint(0, VOCAB, shape, generator=g), torch.randint(0, VOCAB, shape, generator=g)


def loss_by_position(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    losses = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="none")
    return losses.view(targets.shape).sum(0)  # [pos]


def grads(model: HookedTransformer) -> dict[str, torch.Tensor]:
    out = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)
    return out


def efficient(model: HookedTransformer, mode: str, tokens, targets) -> dict[str, torch.Tensor]:
    with grad_mode(model, mode):
        loss_by_position(model(tokens), targets).sum().backward()
    return grads(model)


def reference(model: HookedTransformer, tokens, targets) -> dict[str, torch.Tensor]:
    naive_myopic_backward(model, tokens, lambda logits: loss_by_position(logits, targets))
    return grads(model)


def assert_close(got: dict, want: dict, rtol: float) -> None:
    assert got.keys() == want.keys()
    for name in want:
        err = float((got[name] - want[name]).norm())
        scale = float(want[name].norm())
        assert err <= rtol * scale + 1e-12, f"{name}: |diff| {err:.3g} vs |ref| {scale:.3g}"


@pytest.mark.parametrize("mlp", [True, False], ids=["mlp", "attn-only"])
@pytest.mark.parametrize("shape", sorted(SHAPES))
@pytest.mark.parametrize("positional", positional_names())
def test_myopic_gradients_equal_the_reference(positional: str, shape: str, mlp: bool) -> None:
    model = build(positional, shape, mlp)
    tokens, targets = data(model)
    ref = reference(model, tokens, targets)
    myo = efficient(model, "myopic", tokens, targets)
    van = efficient(model, "vanilla", tokens, targets)
    assert_close(myo, ref, rtol=1e-5)
    # the test is not vacuous: the myopic gradient differs from the vanilla one
    assert any(float((myo[n] - van[n]).norm()) > 1e-6 * float(van[n].norm()) for n in van)


def test_myopic_gradients_in_float32_within_1e_5() -> None:
    model = build("rope", "2L-d12-h3-rms", True, dtype=torch.float32)
    tokens, targets = data(model)
    assert_close(
        efficient(model, "myopic", tokens, targets), reference(model, tokens, targets), 1e-5
    )


@pytest.mark.parametrize("positional", positional_names())
def test_no_gradient_into_earlier_positions(positional: str) -> None:
    model = build(positional, "3L-d16-h2-dh6", True)
    tokens, targets = data(model)
    captured = {}
    model.hook_embed.register_forward_hook(lambda mod, args, out: captured.update(embed=out))
    for mode in ("vanilla", "myopic"):
        for t in (2, model.cfg.n_ctx - 1):
            with grad_mode(model, mode):
                loss_t = loss_by_position(model(tokens), targets)[t]
                (g,) = torch.autograd.grad(loss_t, captured["embed"])
            past, now = g[:, :t], g[:, t]
            assert now.abs().max() > 0
            if mode == "myopic":
                assert torch.equal(past, torch.zeros_like(past)), f"{mode} t={t}"
            else:
                assert (past.abs().amax(dim=(0, 2)) > 0).all(), f"{mode} t={t}"


@pytest.mark.parametrize("positional", positional_names())
def test_forward_is_identical(positional: str) -> None:
    model = build(positional, "2L-d12-h3-rms", True, dtype=torch.float32)
    tokens, _ = data(model)
    # like for like: a plain forward against a plain forward (CoPE fuses its bias when no hook
    # listens, and the fused and hooked paths may round differently on some CPUs, ~7e-7)
    vanilla = model(tokens)
    _, vanilla_cache = model.run_with_cache(tokens)
    with grad_mode(model, "myopic"), torch.enable_grad():
        assert torch.is_grad_enabled()
        myopic = model(tokens)
        _, myopic_cache = model.run_with_cache(tokens)
    assert torch.equal(vanilla, myopic)
    for name in ("blocks.1.attn.hook_pattern", "blocks.1.attn.hook_z", "blocks.1.hook_resid_post"):
        assert torch.equal(vanilla_cache[name], myopic_cache[name]), name


def test_grad_mode_switch_and_errors() -> None:
    model = build("rope", "1L-d8-h2", False)
    assert get_grad_mode(model) == "vanilla"
    with grad_mode(model, "myopic"):
        assert get_grad_mode(model) == "myopic"
    assert get_grad_mode(model) == "vanilla"
    with pytest.raises(ConfigError, match="gradient mode"):
        set_grad_mode(model, "sideways")
    with pytest.raises(ConfigError, match="hooked interp family"):
        set_grad_mode(torch.nn.Linear(2, 2), "myopic")
    assert TrainConfig(grad_mode="myopic").grad_mode == "myopic"
    with pytest.raises(ConfigError, match="vanilla or myopic"):
        TrainConfig(grad_mode="lazy").validate()  # configs are inert: checked when used (#14)


def test_myopic_training_same_start_different_path(tmp_path) -> None:
    from interp.train.job import run_training

    rows = {}
    for mode in ("vanilla", "myopic"):
        job = tiny_task_job(steps=10, grad_mode=mode, eval_every=10)
        run = run_training(tmp_path / mode, job)
        rows[mode] = [r for r in run.metrics() if r["split"] == "train"]
        assert json.loads((run.path / "config.json").read_text())["train"]["grad_mode"] == mode
    # same init and data: the first logged losses agree up to the first few updates' effect
    assert rows["vanilla"][-1]["loss"] != rows["myopic"][-1]["loss"]


def test_cli_grad_option(tmp_path) -> None:
    out = tmp_path / "run"
    args = ["train", "--task", "copy", "-o", "length=3", "-o", "vocab=5", "--steps", "4",
            "--eval-every", "2", "--layers", "1", "--d-model", "16", "--heads", "2", "--no-report"]  # fmt: skip
    result = CliRunner().invoke(app, [*args, "--grad", "myopic", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert json.loads((out / "config.json").read_text())["train"]["grad_mode"] == "myopic"
    bad = CliRunner().invoke(app, [*args, "--grad", "lazy", "--out", str(tmp_path / "bad")])
    assert bad.exit_code != 0 and "vanilla or myopic" in bad.output
    assert len(bad.output.strip().splitlines()) == 1 and not (tmp_path / "bad").exists()


@pytest.mark.skipif("cope" not in positional_names(), reason="CoPE not registered")
@pytest.mark.parametrize("mlp", [True, False], ids=["mlp", "attn-only"])
def test_cope_with_own_gate_keys_is_exact_through_its_score_bias_myopic(mlp) -> None:
    """CoPE with separate gate keys recomputes several keys per entry from ``k``: its
    ``score_bias_myopic`` (the live diagonal key, the recipe of attention.py) makes it exact."""
    assert hasattr(type(attention_part("cope", sep_gate_key=True)), "score_bias_myopic")
    model = build("cope", "2L-d12-h3-rms", mlp, positional_options={"sep_gate_key": True})
    tokens, targets = data(model)
    ref = reference(model, tokens, targets)
    assert_close(efficient(model, "myopic", tokens, targets), ref, rtol=1e-5)


# the public code's CoPE options (tests/test_cope_fidelity.py checks each against its formula)
COPE_VARIANTS = {
    "public-code": {},
    "per-head": {"per_head": True},
    "val-gates": {"val_gates": True},
    "nodiv": {"nodiv": True},
    "shared-every2-rel": {"every": 2, "shared": True},
    "sep-key-bias": {"sep_gate_key": True},
    "rel-short-extend": {"rel": True, "rel_npos": 3, "rel_extend": True},
    "every2-no-rel": {"every": 2, "rel": False},
}


@pytest.mark.parametrize("variant", sorted(COPE_VARIANTS))
def test_cope_options_myopic_gradients_equal_the_reference_forward_identical(variant) -> None:
    """Every CoPE option in myopic training: gradients equal the naive per-position reference
    (value gates keep the live diagonal value, as separate gate keys keep the live key), and
    the forward is bit-identical to vanilla."""
    options = COPE_VARIANTS[variant]
    model = build("cope", "3L-d16-h2-dh6", True, positional_options=options)
    tokens, targets = data(model)
    ref = reference(model, tokens, targets)
    myo = efficient(model, "myopic", tokens, targets)
    assert_close(myo, ref, rtol=1e-5)
    van = efficient(model, "vanilla", tokens, targets)
    assert any(float((myo[n] - van[n]).norm()) > 1e-6 * float(van[n].norm()) for n in van)
    with torch.no_grad():
        plain = model(tokens)
    with grad_mode(model, "myopic"), torch.enable_grad():
        assert torch.equal(model(tokens), plain)
