"""The hooked transformer family: hook names and shapes, invariants, configs."""

from __future__ import annotations

import pytest
import torch
from einops import einsum
from helpers import tiny_config, tiny_model

from interp.config import ModelConfig
from interp.errors import ConfigError
from interp.models import HookedTransformer
from interp.models.positional import positional_names

B, T = 3, 10


def expected_hooks(cfg: ModelConfig, additive: bool, rotary: bool) -> dict[str, tuple[int, ...]]:
    d, h, dh = cfg.d_model, cfg.n_heads, cfg.head_dim
    hooks: dict[str, tuple[int, ...]] = {
        "hook_embed": (B, T, d),
        "ln_final.hook_normalized": (B, T, d),
    }
    if additive:
        hooks["hook_pos_embed"] = (B, T, d)
    for layer in range(cfg.n_layers):
        p = f"blocks.{layer}."
        hooks.update(
            {
                p + "hook_resid_pre": (B, T, d),
                p + "hook_resid_post": (B, T, d),
                p + "hook_attn_out": (B, T, d),
                p + "attn.hook_q": (B, T, h, dh),
                p + "attn.hook_k": (B, T, h, dh),
                p + "attn.hook_v": (B, T, h, dh),
                p + "attn.hook_z": (B, T, h, dh),
                p + "attn.hook_attn_scores": (B, h, T, T),
                p + "attn.hook_pattern": (B, h, T, T),
            }
        )
        if rotary:
            hooks[p + "attn.hook_rot_q"] = (B, T, h, dh)
            hooks[p + "attn.hook_rot_k"] = (B, T, h, dh)
        if cfg.d_mlp:
            hooks.update(
                {
                    p + "hook_resid_mid": (B, T, d),
                    p + "hook_mlp_out": (B, T, d),
                    p + "mlp.hook_pre": (B, T, cfg.d_mlp),
                    p + "mlp.hook_post": (B, T, cfg.d_mlp),
                }
            )
    return hooks


@pytest.mark.parametrize("pe", ["absolute", "sinusoidal", "rope", "alibi", "none"])
@pytest.mark.parametrize("d_mlp", [0, 32])
def test_hook_names_and_shapes(pe: str, d_mlp: int) -> None:
    cfg = tiny_config(positional=pe, d_mlp=d_mlp)
    model = HookedTransformer(cfg)
    tokens = torch.randint(0, cfg.d_vocab, (B, T))
    logits, cache = model.run_with_cache(tokens)
    assert logits.shape == (B, T, cfg.d_vocab)
    want = expected_hooks(cfg, additive=pe in ("absolute", "sinusoidal"), rotary=pe == "rope")
    for name, shape in want.items():
        assert name in cache, f"{pe}: missing {name}"
        assert tuple(cache[name].shape) == shape, f"{pe}: {name} has {tuple(cache[name].shape)}"
    assert not any("position" in k for k in cache.keys()), "hooks must carry TransformerLens names"


def test_every_registered_encoding_is_covered() -> None:
    assert set(positional_names()) >= {"absolute", "sinusoidal", "rope", "alibi", "none"}


@pytest.mark.parametrize("pe", ["absolute", "rope", "alibi", "none"])
def test_attention_is_causal_and_normalised(pe: str) -> None:
    model = tiny_model(positional=pe)
    tokens = torch.randint(0, 20, (2, T))
    _, cache = model.run_with_cache(tokens)
    pattern = cache["blocks.0.attn.hook_pattern"]
    torch.testing.assert_close(pattern.sum(-1), torch.ones_like(pattern.sum(-1)))
    assert pattern.triu(1).abs().max() == 0
    # changing a later token never changes earlier outputs
    changed = tokens.clone()
    changed[:, -1] = (changed[:, -1] + 1) % 20
    torch.testing.assert_close(model(tokens)[:, :-1], model(changed)[:, :-1])


def test_attention_output_is_sum_over_heads() -> None:
    model = tiny_model()
    _, cache = model.run_with_cache(torch.randint(0, 20, (2, T)))
    attn = model.blocks[0].attn
    per_head = einsum(cache["blocks.0.attn.hook_z"], attn.W_O, "b p h dh, h dh d -> b p h d")
    torch.testing.assert_close(per_head.sum(2) + attn.b_O, cache["blocks.0.hook_attn_out"])


def test_residual_stream_decomposes() -> None:
    model = tiny_model(positional="absolute")
    _, cache = model.run_with_cache(torch.randint(0, 20, (2, T)))
    torch.testing.assert_close(
        cache["hook_embed"] + cache["hook_pos_embed"], cache["blocks.0.hook_resid_pre"]
    )
    b = "blocks.0."
    torch.testing.assert_close(
        cache[b + "hook_resid_pre"] + cache[b + "hook_attn_out"], cache[b + "hook_resid_mid"]
    )
    torch.testing.assert_close(
        cache[b + "hook_resid_mid"] + cache[b + "hook_mlp_out"], cache[b + "hook_resid_post"]
    )


def test_rope_scores_depend_on_relative_position_only() -> None:
    from interp.models.positional.rope import RopeOptions, RotaryAttention

    rot = RotaryAttention(8, RopeOptions())
    rot.hooks = {"hook_rot_q": torch.nn.Identity(), "hook_rot_k": torch.nn.Identity()}
    q = torch.randn(1, 1, 1, 8).expand(1, 6, 1, 8)
    k = torch.randn(1, 1, 1, 8).expand(1, 6, 1, 8)
    rq, rk = rot.rotate_qk(q, k)
    dots = rq[0, :, 0] @ rk[0, :, 0].T
    torch.testing.assert_close(dots[3, 1], dots[5, 3])
    torch.testing.assert_close(dots[2, 2], dots[4, 4])


def test_run_with_hooks_can_ablate() -> None:
    model = tiny_model()
    tokens = torch.randint(0, 20, (2, T))
    clean = model(tokens)
    ablated = model.run_with_hooks(
        tokens, fwd_hooks=[("blocks.0.hook_attn_out", lambda x, hook: x * 0)]
    )
    assert not torch.allclose(clean, ablated)
    torch.testing.assert_close(model(tokens), clean)  # hooks removed afterwards


def test_vector_input_and_tied_embeddings() -> None:
    model = HookedTransformer(tiny_config(input_kind="vector", d_input=3, d_vocab=1))
    assert model(torch.randn(2, T, 3)).shape == (2, T, 1)
    tied = HookedTransformer(tiny_config(tied_embeddings=True))
    assert "unembed.W_U" not in tied.state_dict()
    torch.testing.assert_close(tied.W_U, tied.W_E.T)


def test_normalisations_and_activations() -> None:
    tokens = torch.randint(0, 20, (2, T))
    for norm in ("layernorm", "rmsnorm", "none"):
        for act in ("gelu", "gelu_new", "relu", "silu"):
            out = tiny_model(normalization=norm, act_fn=act)(tokens)
            assert torch.isfinite(out).all()


def test_same_seed_same_weights_regardless_of_global_rng() -> None:
    a = tiny_model(seed=3)
    torch.manual_seed(123)
    b = tiny_model(seed=3)
    for (na, pa), (_, pb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert torch.equal(pa, pb), na
    assert not torch.equal(tiny_model(seed=4).embed.W_E, a.embed.W_E)


@pytest.mark.parametrize(
    "bad, fragment",
    [
        (dict(positional="nope"), "unknown positional encoding"),
        (dict(d_model=10, n_heads=4), "not divisible"),
        (dict(n_layers=0), "n_layers"),
        (dict(act_fn="tanh"), "unknown activation"),
        (dict(positional="rope", positional_options={"bogus": 1}), "no option"),
        (dict(positional="rope", positional_options={"rotary_dim": 3}), "even"),
    ],
)
def test_bad_configs_raise_one_line(bad: dict, fragment: str) -> None:
    from interp.models import check_model_config

    with pytest.raises(ConfigError, match=fragment) as info:  # configs are inert (#14):
        check_model_config(tiny_config(**bad))  # checked where a model is built
    assert "\n" not in str(info.value)


def test_config_round_trip() -> None:
    from interp.config import DataConfig, OptimConfig, TrainConfig

    for cfg in [tiny_config(positional=pe, positional_options={}) for pe in positional_names()] + [
        tiny_config(positional="rope", positional_options={"base": 500.0, "rotary_dim": 4}),
    ]:
        assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    t = TrainConfig(steps=7, optim=OptimConfig(lr=0.5))
    assert TrainConfig.from_dict(t.to_dict()) == t
    d = DataConfig(source="task", task="copy", task_options={"length": 3})
    assert DataConfig.from_dict(d.to_dict()) == d
    with pytest.raises(ConfigError, match="unknown field"):
        ModelConfig.from_dict({**tiny_config().to_dict(), "typo": 1})
