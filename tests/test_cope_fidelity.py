"""CoPE as the public code computes it (facebookresearch/RAM ``projects/cope``) and its options:
each against a slow, obvious formula (float64, pair by pair), the fused path against the
unfused one, tables shared across heads and layers, ``cope+rel``, the relative encoding ``rel``,
labels, and weights of interp's earlier CoPE variant."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
import torch
from helpers import tiny_config, tiny_model

from interp.errors import ConfigError
from interp.models import HookedTransformer
from interp.models.positional import build_positional
from interp.models.positional.cope import CopeAttention
from interp.models.positional.rel import RelativeAttention

OLD_RUNS = Path(__file__).parent / "cope_v1"

# option sets tried against the reference (every option at least once, a few together)
VARIANTS = {
    "public-code": {},
    "per-head": {"per_head": True},
    "nodiv": {"nodiv": True},
    "val-gates": {"val_gates": True},
    "sep-key": {"sep_gate_key": True},
    "sep-key-no-bias": {"sep_gate_key": True, "gate_key_bias": False},
    "rel": {"rel": True},
    "rel-short": {"rel": True, "rel_npos": 3},
    "rel-short-extend": {"rel": True, "rel_npos": 3, "rel_extend": True},
    "clamped": {"p_max": 3},
    "together": {"val_gates": True, "nodiv": True, "per_head": True, "rel": True, "p_max": 4},
}


def part_of(options: dict, n_layers: int = 1, **overrides) -> CopeAttention:
    """Layer 0's CoPE part, built through the encoding (so the options are the ones a model
    gets), in float64 with every parameter random (zero tables would hide paths)."""
    cfg = tiny_config(positional="cope", n_layers=n_layers, positional_options=options, **overrides)
    part = build_positional(cfg).attention(0).double()
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for p in part.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype))
    return part


def reference(part: CopeAttention, x, q, k, v, scores) -> torch.Tensor:
    """Pair by pair, as ``ContextPosSelfAttn.forward`` reads: gate keys (k, v with value gates,
    or x W_G + b_G), gates sigma(q_i . g_t / sqrt(d)) for t <= i, p_ij = sum_{t=j..i} gates
    clamped to npos - 1, the table at floor(p) and ceil(p) mixed by p - floor(p), q_i . e added
    to q . k before the division by sqrt(d) (after it with nodiv), plus q_i . r[i - j] / sqrt(d)
    (``cope+rel``: distances past the table get nothing, or the last vector with extend)."""
    batch, n_pos, n_heads, d_head = q.shape
    scale = 1.0 / math.sqrt(d_head)
    table = part.table
    if part.val_gates:
        gate_k = v
    elif part.W_G is not None:
        rows = []
        for t in range(n_pos):
            heads = []
            for h in range(n_heads):
                key = x[:, t] @ part.W_G[h]
                heads.append(key + part.b_G[h] if part.b_G is not None else key)
            rows.append(torch.stack(heads, 1))
        gate_k = torch.stack(rows, 1)
    else:
        gate_k = k
    rel = part.rel_table
    out = scores.clone()
    for b in range(batch):
        for h in range(n_heads):
            e_h = table[h] if table.shape[0] == n_heads else table[0]
            for i in range(n_pos):
                gates = [torch.sigmoid(q[b, i, h] @ gate_k[b, t, h] * scale) for t in range(n_pos)]
                for j in range(i + 1):
                    p = torch.stack(gates[j : i + 1]).sum().clamp(max=part.p_max)
                    lo = math.floor(float(p.detach()))
                    hi = math.ceil(float(p.detach()))
                    w = p - lo
                    e = e_h[:, lo] * (1 - w) + e_h[:, hi] * w
                    term = (q[b, i, h] @ e) * (1.0 if part.nodiv else scale)
                    if rel is not None:
                        d = i - j
                        if d < rel.npos or rel.extend:
                            term = term + (q[b, i, h] @ rel.emb[:, min(d, rel.npos - 1)]) * scale
                    out[b, h, i, j] = out[b, h, i, j] + term
    return out


def inputs(n_pos: int = 6, seed: int = 0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    batch, n_heads, d_head, d_model = 2, 2, 8, 16

    def leaf(*shape: int) -> torch.Tensor:
        return torch.randn(shape, generator=g, dtype=dtype).requires_grad_()

    x, q = leaf(batch, n_pos, d_model), leaf(batch, n_pos, n_heads, d_head)
    k, v = leaf(batch, n_pos, n_heads, d_head), leaf(batch, n_pos, n_heads, d_head)
    weights = torch.randn(batch, n_heads, n_pos, n_pos, generator=g, dtype=dtype)
    return x, q, k, v, weights.tril()  # a loss on visible pairs


def scores_of(q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    return torch.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(q.shape[-1])


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_option_matches_the_reference_forward_and_gradients(variant: str) -> None:
    part = part_of(VARIANTS[variant])
    x, q, k, v, weights = inputs()
    leaves = [x, q, k, v, *part.parameters()]
    causal = torch.ones(6, 6, dtype=torch.bool).tril()
    fast = part.score_bias_with_input(x, q, k, scores_of(q, k), v=v)
    got = torch.autograd.grad((fast * weights).sum(), leaves, allow_unused=True)
    slow = reference(part, x, q, k, v, scores_of(q, k))
    want = torch.autograd.grad((slow * weights).sum(), leaves, allow_unused=True)
    assert (fast - slow)[..., causal].abs().max() <= 1e-10
    for g, w in zip(got, want, strict=True):
        assert (g is None) == (w is None)
        if w is not None:
            assert g.abs().sum() > 0 and (g - w).abs().max() <= 1e-10, (g - w).abs().max()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_fused_path_equals_the_unfused_one(monkeypatch, variant: str, dtype) -> None:
    """Every option through the fused, chunked form (3 query rows a chunk, a ragged last one)
    and through the three separate functions (``FUSED = False``, the hooked path)."""
    from interp.models.positional import cope_kernels

    monkeypatch.setattr(cope_kernels, "CHUNK_ELEMENTS", 3 * 2 * 2 * 11)
    part = part_of(VARIANTS[variant]).to(dtype)
    x, q, k, v, weights = inputs(11, seed=1, dtype=dtype)
    leaves = [x, q, k, v, *part.parameters()]
    results = []
    for fused in (True, False):
        monkeypatch.setattr(cope_kernels, "FUSED", fused)
        out = part.score_bias_with_input(x, q, k, scores_of(q, k), v=v)
        grads = torch.autograd.grad((out * weights).sum(), leaves, allow_unused=True)
        results.append((out, grads))
    (fast, got), (slow, want) = results
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    assert torch.allclose(fast, slow, atol=tol * float(slow.detach().abs().max()), rtol=tol)
    for g, w in zip(got, want, strict=True):
        assert (g is None) == (w is None)
        if w is not None:
            assert g.abs().sum() > 0
            assert torch.allclose(g, w, atol=tol * float(w.abs().max()), rtol=tol), (
                (g - w).abs().max()
            )


def test_one_table_per_layer_shared_by_heads_is_the_default() -> None:
    model = tiny_model(positional="cope", n_heads=4, d_model=32)
    for block in model.blocks:
        assert block.attn.position.pos_emb.shape == (1, 8, model.config.n_ctx + 1)
        assert block.attn.position.b_G is None and block.attn.position.rel_table is None
    per_head = tiny_model(
        positional="cope", n_heads=4, d_model=32, positional_options={"per_head": True}
    )
    assert per_head.blocks[0].attn.position.pos_emb.shape == (4, 8, per_head.config.n_ctx + 1)


def test_gate_key_bias_is_a_trained_parameter_like_the_other_biases() -> None:
    model = tiny_model(positional="cope", positional_options={"sep_gate_key": True})
    part = model.blocks[0].attn.position
    assert part.b_G.shape == (2, 8) and part.b_G.requires_grad and not part.b_G.any()
    frozen = tiny_model(
        positional="cope", use_bias=False, positional_options={"sep_gate_key": True}
    )
    assert not frozen.blocks[0].attn.position.b_G.requires_grad  # as b_K without use_bias
    bare = tiny_model(
        positional="cope", positional_options={"sep_gate_key": True, "gate_key_bias": False}
    )
    assert "blocks.0.attn.position.b_G" not in bare.state_dict()


def randomised(model: HookedTransformer, seed: int = 5) -> HookedTransformer:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if ".position." in name:
                p.copy_(torch.randn(p.shape, generator=g))
    return model


def test_shared_table_is_one_tensor_for_all_cope_layers() -> None:
    """``shared`` (``--cope-shared``): the first CoPE layer's table is every CoPE layer's.  The
    model equals one with separate tables holding copies of it, and the shared table's gradient
    is the sum of theirs."""
    opts = {"every": 2, "shared": True}
    shared = randomised(tiny_model(positional="cope", n_layers=4, positional_options=opts))
    tables = [n for n in shared.state_dict() if n.endswith("pos_emb")]
    assert tables == ["blocks.1.attn.position.pos_emb"]  # the public code's layer K - 1
    assert shared.blocks[3].attn.position.table is shared.blocks[1].attn.position.pos_emb
    separate = tiny_model(positional="cope", n_layers=4, positional_options={"every": 2})
    state = dict(shared.state_dict())
    state["blocks.3.attn.position.pos_emb"] = state["blocks.1.attn.position.pos_emb"]
    separate.load_state_dict(state)
    tokens = torch.randint(0, 20, (3, 12), generator=torch.Generator().manual_seed(0))
    assert torch.equal(shared(tokens), separate(tokens))
    shared(tokens, return_type="loss").backward()
    separate(tokens, return_type="loss").backward()
    both = sum(separate.blocks[i].attn.position.pos_emb.grad for i in (1, 3))
    assert torch.allclose(shared.blocks[1].attn.position.pos_emb.grad, both, atol=1e-7)
    assert both.abs().sum() > 0


def test_every_kth_layer_runs_with_relative_positions_on_every_layer() -> None:
    """``every=K`` means the public code's ``--pos-emb cope+rel --cope-layers K``: one relative
    table (layer 0's) on every layer, CoPE on layers K - 1, 2K - 1, ...  On a layer without
    CoPE the scores are q . k / sqrt(d) + q_i . r[i - j] / sqrt(d), read back from the hooks."""
    model = randomised(tiny_model(positional="cope", n_layers=4, positional_options={"every": 2}))
    parts = [block.attn.position for block in model.blocks]
    assert [type(p) for p in parts] == [RelativeAttention, CopeAttention] * 2
    assert [n for n in model.state_dict() if ".rel." in n] == ["blocks.0.attn.position.rel.emb"]
    assert all(p.rel_table is parts[0].rel_table for p in parts)
    tokens = torch.randint(0, 20, (2, 12), generator=torch.Generator().manual_seed(1))
    _, cache = model.run_with_cache(tokens)
    q, k = cache["blocks.2.attn.hook_q"], cache["blocks.2.attn.hook_k"]
    emb = parts[0].rel_table.emb
    want = torch.full((2, 2, 12, 12), float("-inf"))
    for i in range(12):
        for j in range(i + 1):
            want[:, :, i, j] = ((q[:, i] * k[:, j]).sum(-1) + q[:, i] @ emb[:, i - j]) / math.sqrt(
                8
            )
    assert torch.allclose(cache["blocks.2.attn.hook_attn_scores"], want, atol=1e-6)
    old = tiny_model(positional="cope", n_layers=4, positional_options={"every": 2, "rel": False})
    assert [type(b.attn.position).__name__ for b in old.blocks][:2] == [
        "AttentionPosition",
        "CopeAttention",
    ]


def test_rel_encoding_matches_the_reference_and_is_shared_by_layers() -> None:
    """``rel`` (the public code's ``--pos-emb rel``): q_i . r[i - j] / sqrt(d), one table for
    all layers and heads, initialised N(0, 1 / d_head); the far keys past ``npos`` get nothing,
    or the last vector with ``extend``."""
    model = tiny_model(positional="rel", n_layers=3, d_model=64, n_heads=2, n_ctx=200)
    assert [n for n in model.state_dict() if ".rel." in n] == ["blocks.0.attn.position.rel.emb"]
    table = model.blocks[0].attn.position.rel_table
    assert table.emb.shape == (32, 200) and abs(float(table.emb.detach().std()) - 32**-0.5) < 0.01
    assert all(b.attn.position.rel_table is table for b in model.blocks)
    for options in ({"npos": 3}, {"npos": 3, "extend": True}, {}):
        cfg = tiny_config(positional="rel", positional_options=options)
        part = build_positional(cfg).attention(0).double()
        _, q, k, _, weights = inputs(7)
        fast = part.score_bias(q, k, scores_of(q, k))
        slow = scores_of(q, k).clone()
        rel = part.rel_table
        for i in range(7):
            for j in range(i + 1):
                d = i - j
                if d < rel.npos or rel.extend:
                    e = rel.emb[:, min(d, rel.npos - 1)]
                    slow[:, :, i, j] = slow[:, :, i, j] + (q[:, i] @ e) / math.sqrt(8)
        leaves = [q, k, rel.emb]
        got = torch.autograd.grad((fast * weights).sum(), leaves)
        want = torch.autograd.grad((slow * weights).sum(), leaves)
        assert (fast - slow).tril().abs().max() <= 1e-12
        for g, w in zip(got, want, strict=True):
            assert (g - w).abs().max() <= 1e-12


def test_cope_trains_past_n_ctx_with_every_option() -> None:
    opts = {"every": 2, "shared": True, "val_gates": True, "nodiv": True, "rel_npos": 4}
    model = tiny_model(positional="cope", n_layers=4, positional_options=opts).train()
    tokens = torch.randint(0, 20, (2, 30))  # past n_ctx = 12: positions clamp, distances fade
    model(tokens, return_type="loss").backward()
    assert torch.isfinite(model(tokens)).all()
    assert model.blocks[0].attn.position.rel_table.emb.grad.abs().sum() > 0


@pytest.mark.parametrize(
    ("options", "label"),
    [
        ({}, "cope"),
        ({"every": 2}, "cope+rel (CoPE every 2 layers)"),
        ({"per_head": True}, "cope (interp variant: one table per head)"),
        (
            {"every": 2, "rel": False, "sep_gate_key": True, "gate_key_bias": False},
            "cope (CoPE every 2 layers; separate gate keys without bias; interp variant: "
            "gate keys without bias, no positions on the other layers)",
        ),
        ({"shared": True, "val_gates": True, "nodiv": True},
         "cope (value gates; position logits not divided by sqrt(d); one table for all layers)"),
    ],
)  # fmt: skip
def test_labels_name_the_variant(options: dict, label: str) -> None:
    cfg = tiny_config(positional="cope", n_layers=4, positional_options=options)
    assert build_positional(cfg).label() == label
    assert build_positional(tiny_config(positional="rel")).label() == "rel"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"val_gates": True, "sep_gate_key": True}, "val_gates and sep_gate_key"),
        ({"rel_npos": 0}, "rel_npos must be >= 1"),
        ({"per_head": 1}, "per_head must be true or false"),
        ({"rel": "yes"}, "rel must be true or false or null"),
    ],
)
def test_bad_new_options_are_one_line(options: dict, message: str) -> None:
    from interp.models import check_model_config  # configs are inert: checked when used (#14)

    with pytest.raises(ConfigError, match=message) as e:
        check_model_config(tiny_config(positional="cope", positional_options=options))
    assert "\n" not in str(e.value)
    with pytest.raises(ConfigError, match="npos must be an integer >= 1"):
        check_model_config(tiny_config(positional="rel", positional_options={"npos": 0}))


def test_sizes_count_what_the_options_build() -> None:
    from interp.resources import model_sizes

    for options in ({}, {"per_head": True}, {"shared": True, "every": 2}, {"sep_gate_key": True},
                    {"rel": True, "rel_npos": 5}):  # fmt: skip
        cfg = tiny_config(positional="cope", n_layers=4, positional_options=options)
        model = HookedTransformer(cfg, seed=0)
        positional = sum(p.numel() for n, p in model.named_parameters() if ".position." in n)
        assert model_sizes(cfg, 8)["extra_params"] == positional, options


# --------------------------------------------------------------------------- old checkpoints


def old_run(tmp_path: Path, name: str) -> Path:
    """A run saved by interp before this change (commit 3c253cf): config.json, model weights
    and the logits that interp computed for ``tokens`` (tests/cope_v1/NAME/expected.json)."""
    run = tmp_path / name
    shutil.copytree(OLD_RUNS / name, run)
    return run


def add_options(run: Path, options: dict) -> None:
    config = json.loads((run / "config.json").read_text())
    config["model"]["positional_options"].update(options)
    (run / "config.json").write_text(json.dumps(config))


@pytest.mark.parametrize(
    ("name", "fixes", "label"),
    [
        ("per-head", {"per_head": True}, "cope (interp variant: one table per head)"),
        (
            "every2-sep-key",
            {"per_head": True, "gate_key_bias": False, "rel": False},
            "cope (CoPE every 2 layers; separate gate keys without bias; interp variant: one "
            "table per head, gate keys without bias, no positions on the other layers)",
        ),
    ],
)
def test_old_cope_runs_load_as_their_variant_with_the_same_logits(
    tmp_path: Path, name: str, fixes: dict, label: str
) -> None:
    """Old CoPE weights (per-head tables; bias-free gate keys; every=K without relative
    positions) do not fit the new defaults: the run loads as the variant its weights are, which
    its config and label name, and gives the logits it gave then, exactly; config.json is not
    rewritten.  With those options written into config.json it loads the same."""
    import interp

    run = old_run(tmp_path, name)
    saved = (run / "config.json").read_text()
    model = interp.load_model(run)
    assert (run / "config.json").read_text() == saved
    assert {k: model.config.positional_options[k] for k in fixes} == fixes
    assert build_positional(model.config).label() == label
    expected = json.loads((run / "expected.json").read_text())
    with torch.no_grad():
        logits = model(torch.tensor(expected["tokens"]))
    # recorded on an Intel Xeon (AVX-512); another CPU's float32 kernels differ in the last bits
    # (4.8e-7 measured on an AMD EPYC), so the recorded logits are matched to float32 precision
    torch.testing.assert_close(logits, torch.tensor(expected["logits"]), rtol=1e-5, atol=1e-5)
    add_options(run, fixes)
    with torch.no_grad():
        again = interp.load_model(run)(torch.tensor(expected["tokens"]))
    assert torch.equal(again, logits)


@pytest.mark.parametrize(
    ("name", "fixes"),
    [
        ("per-head", {"per_head": True}),
        ("every2-sep-key", {"per_head": True, "gate_key_bias": False, "rel": False}),
    ],
)
def test_old_weights_into_a_new_default_model_are_refused_in_one_line(
    tmp_path: Path, name: str, fixes: dict
) -> None:
    """Loading old weights into a model built with today's defaults (what resuming training
    from an old checkpoint does) says in one line why they do not fit and which options train
    on with them as their variant."""
    from interp.config import ModelConfig
    from interp.errors import LoadError
    from interp.train.checkpoint import load_model_weights

    run = old_run(tmp_path, name)
    config = ModelConfig.from_dict(json.loads((run / "config.json").read_text())["model"])
    with pytest.raises(LoadError) as e:
        load_model_weights(HookedTransformer(config, seed=0), run / "model.safetensors")
    message = str(e.value)
    assert "\n" not in message and "earlier variant" in message
    for key, value in fixes.items():
        assert f'"{key}": {json.dumps(value)}' in message, message


def test_old_run_is_analysed_from_the_cli(tmp_path: Path) -> None:
    from cli_helpers import invoke

    run = old_run(tmp_path, "per-head")
    result = invoke("squash", "--model", run, "--length", "8", "--out", tmp_path / "squash")
    assert result.exit_code == 0, result.output
