"""CoPE: the efficient form against a slow, obvious reference; relative positions; options."""

from __future__ import annotations

import math

import pytest
import torch
from helpers import tiny_config, tiny_model

from interp.config import ModelConfig
from interp.errors import ConfigError
from interp.models import HookedTransformer, check_model_config
from interp.models.positional.cope import CopeAttention

# interp's CoPE before it followed the public code: one table per head, gate keys without bias
OLD_VARIANT = {"per_head": True, "gate_key_bias": False}


def reference_score_bias(
    q: torch.Tensor,
    k: torch.Tensor,
    scores: torch.Tensor,
    pos_emb: torch.Tensor,
    p_max: int,
    gate_k: torch.Tensor | None = None,
) -> torch.Tensor:
    """Pair by pair: gates sigma(q_i . g_t / sqrt(d)) with g = gate_k (default the attention
    keys k), p_ij = sum_{t=j..i} g_it, e[p_ij] interpolated, q_i . e / sqrt(d)."""
    batch, n_pos, n_heads, d_head = q.shape
    gate_k = k if gate_k is None else gate_k
    scale = 1.0 / math.sqrt(d_head)
    out = scores.clone()
    for b in range(batch):
        for h in range(n_heads):
            for i in range(n_pos):
                gates = [torch.sigmoid(q[b, i, h] @ gate_k[b, t, h] * scale) for t in range(n_pos)]
                for j in range(i + 1):
                    p = torch.stack(gates[j : i + 1]).sum().clamp(max=p_max)
                    lo = int(math.floor(float(p.detach())))
                    hi = int(math.ceil(float(p.detach())))
                    w = p - lo
                    e = pos_emb[h, :, lo] * (1 - w) + pos_emb[h, :, hi] * w  # [d_head]
                    out[b, h, i, j] = out[b, h, i, j] + (q[b, i, h] @ e) * scale
    return out


@pytest.mark.parametrize(("p_max", "sep_gate_key"), [(3, False), (20, False), (4, True), (9, True)])
def test_efficient_cope_matches_reference_forward_and_gradients(
    p_max: int, sep_gate_key: bool
) -> None:
    torch.manual_seed(0)
    batch, n_pos, n_heads, d_head, d_model = 2, 7, 2, 4, 6
    # interp's earlier variant, pinned (per-head tables, bias-free gate keys); the public code's
    # definition, now the default, is checked against its reference in test_cope_fidelity.py
    part = CopeAttention(n_heads, d_head, p_max, sep_gate_key, d_model, **OLD_VARIANT)
    with torch.no_grad():
        part.pos_emb.normal_()
        if sep_gate_key:
            part.W_G.normal_()  # gate logits of order 1: fractional positions everywhere
    x = torch.randn(batch, n_pos, d_model, requires_grad=True)
    q = torch.randn(batch, n_pos, n_heads, d_head, requires_grad=True)
    k = torch.randn(batch, n_pos, n_heads, d_head, requires_grad=True)
    params = (x, q, k, part.pos_emb) + ((part.W_G,) if sep_gate_key else ())

    # the attention passes its logits q . k / sqrt(d); shared-key gates read them
    def scores() -> torch.Tensor:
        return torch.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(d_head)

    causal = torch.ones(n_pos, n_pos, dtype=torch.bool).tril()
    weights = torch.randn(batch, n_heads, n_pos, n_pos) * causal  # a loss on visible pairs

    fast = part.score_bias_with_input(x, q, k, scores())
    got = torch.autograd.grad((fast * weights).sum(), params, allow_unused=True)
    # separate gate keys: the obvious per-head projection of the layer input, key by key
    gate_k = (
        torch.stack([torch.stack([x[:, t] @ part.W_G[h] for h in range(n_heads)], 1)
                     for t in range(n_pos)], 1)
        if sep_gate_key else None
    )  # fmt: skip
    slow = reference_score_bias(q, k, scores(), part.pos_emb, p_max, gate_k)
    want = torch.autograd.grad((slow * weights).sum(), params, allow_unused=True)

    assert torch.allclose(fast[..., causal], slow[..., causal], atol=1e-5)
    # x reaches the logits only through separate gate keys
    assert (got[0] is None) == (want[0] is None) == (not sep_gate_key)
    for g, w in zip(got, want, strict=True):
        if w is not None:
            assert g.abs().sum() > 0 and torch.allclose(g, w, atol=1e-5), (g - w).abs().max()


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize(("p_max", "sep_gate_key"), [(4, False), (30, False), (5, True)])
def test_fused_chunked_bias_equals_the_separate_functions(
    monkeypatch, p_max: int, sep_gate_key: bool, dtype: torch.dtype
) -> None:
    """The fused form (query rows in chunks; a ragged last chunk here) gives the values and
    gradients of the three separate autograd functions (``FUSED = False``, the hooked path)."""
    from interp.models.positional import cope_kernels

    monkeypatch.setattr(cope_kernels, "CHUNK_ELEMENTS", 3 * 2 * 2 * 11)  # 3 query rows per chunk
    torch.manual_seed(0)
    batch, n_pos, n_heads, d_head, d_model = 2, 11, 2, 4, 6
    part = CopeAttention(n_heads, d_head, p_max, sep_gate_key, d_model, **OLD_VARIANT).to(dtype)
    with torch.no_grad():
        part.pos_emb.normal_()
        if sep_gate_key:
            part.W_G.normal_()
    x = torch.randn(batch, n_pos, d_model, dtype=dtype, requires_grad=True)
    q = (2 * torch.randn(batch, n_pos, n_heads, d_head, dtype=dtype)).requires_grad_()
    k = torch.randn(batch, n_pos, n_heads, d_head, dtype=dtype, requires_grad=True)
    params = (x, q, k, part.pos_emb) + ((part.W_G,) if sep_gate_key else ())
    weights = torch.randn(batch, n_heads, n_pos, n_pos, dtype=dtype)
    results = []
    for fused in (True, False):
        monkeypatch.setattr(cope_kernels, "FUSED", fused)
        scores = torch.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(d_head)
        out = part.score_bias_with_input(x, q, k, scores)
        grads = torch.autograd.grad((out * weights).sum(), params, allow_unused=True)
        results.append((out, grads))
    (fast, got), (slow, want) = results
    # bfloat16: other rounding orders (chunked matmuls), so within 2% of each tensor's scale
    tol = 1e-5 if dtype == torch.float32 else 2e-2
    assert torch.allclose(fast, slow, atol=tol * float(slow.detach().abs().max()), rtol=tol)
    for g, w in zip(got, want, strict=True):
        assert (g is None) == (w is None)
        if w is not None:
            assert g.abs().sum() > 0
            assert torch.allclose(g, w, atol=tol * float(w.abs().max()), rtol=tol), (
                (g - w).abs().max()
            )


def test_separate_gate_keys_change_positions_not_attention_logits() -> None:
    """The gates read x W_G; the content logits stay q . k (the public code's --cope-sep-key)."""
    torch.manual_seed(1)
    part = CopeAttention(2, 4, 8, True, 6, **OLD_VARIANT)
    x, q, k = torch.randn(1, 5, 6), torch.randn(1, 5, 2, 4), torch.randn(1, 5, 2, 4)
    scores = torch.einsum("bqhd,bkhd->bhqk", q, k) / 2
    # zero tables: no positional term, the logits are exactly the attention's
    assert torch.equal(part.score_bias_with_input(x, q, k, scores), scores)
    seen = {}
    part.hooks = {"hook_cope_pos": lambda p: seen.setdefault("pos", p)}
    part.score_bias_with_input(x, q, k, scores)
    part.hooks = {}
    gate_k = torch.einsum("bpm,hmd->bphd", x, part.W_G)
    want = part.positions(q, gate_k)
    assert torch.allclose(seen["pos"], want, atol=1e-6)
    assert not torch.allclose(seen["pos"], part.positions(q, k), atol=1e-3)  # not the attn keys
    with pytest.raises(ValueError, match="layer input"):
        part.score_bias(q, k, scores)


def test_gates_forced_to_one_give_relative_positions() -> None:
    n_pos, p_max = 10, 6
    model = tiny_model(positional="cope", n_ctx=n_pos, positional_options={"p_max": p_max})
    tokens = torch.randint(0, 20, (2, n_pos))
    seen = {}

    def force_ones(gates: torch.Tensor, hook) -> torch.Tensor:  # noqa: ANN001
        return torch.ones_like(gates)

    def keep(pos: torch.Tensor, hook) -> None:  # noqa: ANN001
        seen[hook.name] = pos.detach()

    model.run_with_hooks(
        tokens,
        fwd_hooks=[
            ("blocks.0.attn.hook_cope_gates", force_ones),
            ("blocks.0.attn.hook_cope_pos", keep),
        ],
    )
    pos = seen["blocks.0.attn.hook_cope_pos"]  # [batch head_index query_pos key_pos]
    i = torch.arange(n_pos)[:, None]
    j = torch.arange(n_pos)[None, :]
    want = torch.where(j <= i, (i - j + 1).clamp(max=p_max), 0).float()
    assert torch.equal(pos, want.expand_as(pos))


def test_cope_hooks_shapes_and_zero_init_is_position_free() -> None:
    model = tiny_model(positional="cope")
    tokens = torch.randint(0, 20, (3, 12))
    _, cache = model.run_with_cache(tokens)
    for layer in range(2):
        gates = cache[f"blocks.{layer}.attn.hook_cope_gates"]
        assert gates.shape == (3, 2, 12, 12)
        causal = torch.ones(12, 12, dtype=torch.bool).tril()
        assert torch.all(gates[..., ~causal] == 0) and torch.all(gates[..., causal] > 0)
        assert cache[f"blocks.{layer}.attn.hook_cope_pos"].shape == (3, 2, 12, 12)
    # zero-initialised embeddings: the model equals the same weights without positions
    nope = tiny_model(positional="none")
    nope.load_state_dict(
        {k: v for k, v in model.state_dict().items() if "pos_emb" not in k}, strict=True
    )
    assert torch.allclose(model(tokens), nope(tokens), atol=1e-6)


def test_cope_trains_and_extrapolates_past_n_ctx() -> None:
    model = tiny_model(positional="cope", positional_options={"sep_gate_key": True}).train()
    tokens = torch.randint(0, 20, (2, 12))
    model(tokens, return_type="loss").backward()
    for layer in range(2):
        attn = model.blocks[layer].attn.position
        assert attn.pos_emb.grad is not None and attn.pos_emb.grad.abs().sum() > 0
        # zero tables: positions do not matter yet, so the gate keys get no gradient
        assert attn.W_G.grad is not None and attn.W_G.grad.abs().sum() == 0
        with torch.no_grad():
            attn.pos_emb.normal_()
    model.zero_grad()
    model(tokens, return_type="loss").backward()
    for layer in range(2):
        attn = model.blocks[layer].attn.position
        assert attn.W_G.grad is not None and attn.W_G.grad.abs().sum() > 0
    longer = torch.randint(0, 20, (1, 30))  # past n_ctx = p_max: positions clamp
    assert torch.isfinite(model(longer)).all()


def test_cope_layers_option_and_round_trip() -> None:
    options = {"layers": [1], "npos": 9, "per_head": True}  # the earlier per-head tables
    cfg = tiny_config(positional="cope", positional_options=options)
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    model = tiny_model(positional="cope", positional_options=options)
    names = set(model.hook_dict)
    assert "blocks.1.attn.hook_cope_gates" in names
    assert "blocks.0.attn.hook_cope_gates" not in names
    assert model.blocks[1].attn.position.pos_emb.shape == (2, 8, 9)


def test_cope_every_kth_layer_like_the_public_code() -> None:
    model = tiny_model(positional="cope", n_layers=4, positional_options={"every": 2})
    uses = [hasattr(block.attn, "hook_cope_gates") for block in model.blocks]
    assert uses == [False, True, False, True]  # the public code's (layer + 1) % K == 0
    model = tiny_model(positional="cope", positional_options={"sep_gate_key": True})
    assert model.blocks[0].attn.position.W_G.std() > 0  # initialised like the other W_*


@pytest.mark.parametrize(
    "options, message",
    [
        ({"p_max": 0}, "p_max must be >= 1"),
        ({"npos": 1}, "npos must be >= 2"),
        ({"p_max": 4, "npos": 9}, "must equal p_max"),
        ({"layers": [5]}, "out of range"),
        ({"bogus": 1}, "no option(s) bogus"),
        ({"every": 0}, "every must be an integer >= 1"),
        ({"every": 2, "layers": [1]}, "either layers or every"),
        ({"every": 3}, "leaves none of the 2 layer(s)"),
    ],
)
def test_cope_bad_options_are_one_line_config_errors(options: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")) as e:
        check_model_config(tiny_config(positional="cope", positional_options=options))  # inert
    assert "\n" not in str(e.value)


def test_unknown_encoding_is_one_line() -> None:
    with pytest.raises(ConfigError, match="unknown positional encoding 'cop'; choose from"):
        check_model_config(tiny_config(positional="cop"))  # configs are inert (#14)


@pytest.fixture(scope="module")
def cope_model():
    model = tiny_model(positional="cope", n_ctx=40, init_range=0.2)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():  # zero-initialised tables would make the model position-free
        for block in model.blocks:
            block.attn.position.pos_emb.copy_(
                torch.randn(block.attn.position.pos_emb.shape, generator=g) * 0.5
            )
    return model


def test_cope_one_pass_equals_per_length_float32(cope_model) -> None:
    from interp.analysis.collapse import CollapseConfig, build_family, capture_states, layer_names
    from interp.analysis.precision import FORMATS

    fam = build_family(cope_model, CollapseConfig(prompt_tokens=(5, 6, 7)))
    seqs = list(dict.fromkeys(tuple(s) for n in range(1, 30) for s in fam.pair(n)))
    names = layer_names(cope_model)
    fp32 = FORMATS["float32"]
    fast, passes = capture_states(cope_model, seqs, names, fp32, "native", "one-pass", 256)
    slow, _ = capture_states(cope_model, seqs, names, fp32, "native", "per-length")
    assert passes == 1
    for name in names:
        rel = (fast[name] - slow[name]).norm(dim=-1) / slow[name].norm(dim=-1)
        assert rel.max() <= 1e-6, name


@pytest.mark.parametrize(
    ("fmt", "mode"),
    [("bfloat16", "emulated"), ("float8_e4m3fn", "emulated"), ("bfloat16", "native")],
)
def test_cope_in_the_precision_sweep(cope_model, fmt: str, mode: str) -> None:
    """Finite distances, and the one-pass sweep gives the per-length collapse lengths."""
    from interp.analysis.collapse import CollapseConfig, run_collapse

    base = dict(formats=(fmt,), mode=mode, prompt_tokens=(5, 6, 7), every=3, separator=9)
    fast = run_collapse(cope_model, CollapseConfig(max_length=30, **base))
    slow = run_collapse(cope_model, CollapseConfig(max_length=30, method="per-length", **base))
    assert len(fast["runs"]) == 2  # plain and separated
    for a, b in zip(fast["runs"], slow["runs"], strict=True):
        assert a["mode"] == mode and b["method"] == "per-length"
        for curves in a["curves"].values():
            assert all(d is not None and math.isfinite(d) for d in curves["linf"])
        for key in ("collapse_length", "identical_length", "first_collapsed"):
            assert a[key] == b[key], key


@pytest.mark.parametrize("fmt", ["bfloat16", "float8_e4m3fn"])
def test_cope_hooks_are_rounded_in_emulated_precision(cope_model, fmt: str) -> None:
    from interp.analysis.precision import FORMATS, precision_context, round_to_format

    tokens = torch.randint(0, 20, (2, 16), generator=torch.Generator().manual_seed(0))
    names = [f"blocks.{i}.attn.hook_cope_{part}" for i in range(2) for part in ("gates", "pos")]
    seen = {}

    def keep(x: torch.Tensor, hook) -> None:  # noqa: ANN001
        seen[hook.name] = x.detach().clone()

    with precision_context(cope_model, FORMATS[fmt], "emulated") as (model, rounding):
        assert set(names) <= {name for name, _ in rounding}
        model.run_with_hooks(tokens, fwd_hooks=[*rounding, *((n, keep) for n in names)])
    for name in names:
        value = seen[name]
        assert torch.equal(value, round_to_format(value, FORMATS[fmt])), name
        assert torch.isfinite(value).all(), name
    # the positions are rounded, not recomputed: bf16 keeps 8 significant bits only
    pos = seen["blocks.0.attn.hook_cope_pos"]
    assert pos.max() > 1 and pos.max() <= 16


def test_cope_trains_under_myopic_gradients(tmp_path) -> None:
    from interp.config import DataConfig, OptimConfig, TrainConfig
    from interp.train.job import TrainJob, run_training

    job = TrainJob(
        ModelConfig(n_layers=1, d_model=16, n_heads=2, d_mlp=32, positional="cope"),
        TrainConfig(
            steps=60,
            batch_size=8,
            eval_every=60,
            eval_batches=1,
            checkpoint_every=60,
            log_every=5,
            seed=0,
            grad_mode="myopic",
            optim=OptimConfig(lr=1e-2, warmup_steps=5),
        ),
        DataConfig(source="task", task="copy", task_options={"length": 4, "vocab": 6}),
    )
    run = run_training(tmp_path / "run", job)
    losses = [r["loss"] for r in run.metrics() if r["split"] == "train"]
    assert all(math.isfinite(x) for x in losses)
    assert losses[-1] < 0.75 * losses[0], losses


@pytest.mark.filterwarnings("ignore:There is a performance drop")
def test_cope_runs_under_vmap_of_grad_as_the_batched_trainers_use_it() -> None:
    """vmap(grad(...)) over stacked CoPE models equals each model's own gradient."""
    from torch.func import functional_call, grad, stack_module_state, vmap

    cfg = ModelConfig(n_layers=1, d_model=16, n_heads=2, d_mlp=32, n_ctx=8, d_vocab=10,
                      positional="cope")  # fmt: skip
    models = [HookedTransformer(cfg, seed=i) for i in range(2)]
    params, buffers = stack_module_state(models)
    tokens = torch.randint(0, 10, (2, 3, 8), generator=torch.Generator().manual_seed(0))

    def loss(p, b, t):
        return functional_call(models[0], (p, b), (t,)).logsumexp(-1).mean()

    batched = vmap(grad(loss))(params, buffers, tokens)
    for i, model in enumerate(models):
        one = grad(loss)(dict(model.named_parameters()), dict(model.named_buffers()), tokens[i])
        for name, g in one.items():
            torch.testing.assert_close(batched[name][i], g, atol=1e-5, rtol=1e-5)
