"""TransformerLens habits on interp's own models (issue #15).

* the structural protocols of transformer-lens 4 hold (``TransformerLensModel``, ``...WithWeights``)
  and ``model.cfg`` reads as TL's config, with interp's ModelConfig at ``model.config``;
* ``to_tokens`` / ``to_string`` / ``to_str_tokens`` / ``generate`` behave as TL's;
* ``ActivationCache`` helpers equal TL's own on the same GPT-2 weights booted through
  ``TransformerBridge`` (1e-4);
* ``transformer_lens.patching`` and ``head_detector`` on a model trained on the copy task equal a
  computation by hand (no hooks: the forward written out block by block);
* imported GPT-2 has exactly GPT-2's parameters, and training it (vanilla or myopic) trains them.
"""

from __future__ import annotations

import pytest
import torch
from cli_helpers import invoke
from helpers import tiny_config, tiny_model
from hf_fixtures import save_tiny_gpt2
from transformer_lens import ActivationCache as TLActivationCache
from transformer_lens import patching
from transformer_lens.config import TransformerLensConfig
from transformer_lens.head_detector import (
    detect_head,
    get_induction_head_detection_pattern,
    get_previous_token_head_detection_pattern,
)
from transformer_lens.model_protocol import TransformerLensModel, TransformerLensModelWithWeights

from interp import load_model
from interp.config import ModelConfig
from interp.errors import InterpError
from interp.models import HookedTransformer
from interp.models.bridge import boot_bridge
from interp.tasks import build_task

TOL = 1e-4
PROMPT = "the model layer head token attention residual stream"


@pytest.fixture(scope="module")
def gpt2_dir(tmp_path_factory):
    return save_tiny_gpt2(tmp_path_factory.mktemp("tl") / "gpt2", n_layer=4, n_embd=32, n_head=4)


@pytest.fixture(scope="module")
def pair(gpt2_dir):
    """The same GPT-2 weights: imported into interp, and booted through TransformerBridge."""
    return load_model(gpt2_dir).eval(), boot_bridge(gpt2_dir)


@pytest.fixture(scope="module")
def copy_run(tmp_path_factory):
    """A 2-layer attention-only model trained on the copy task with ``interp train`` (~15 s)."""
    out = tmp_path_factory.mktemp("tl") / "copy"
    result = invoke(
        "train", "--task", "copy", "-o", "length=5", "-o", "vocab=8", "--layers", 2,
        "--d-model", 32, "--heads", 2, "--d-mlp", 0, "--steps", 150, "--batch-size", 32,
        "--lr", 0.01, "--warmup", 10, "--eval-every", 150, "--checkpoint-every", 150,
        "--out", out, "--no-report",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "accuracy 1.000" in result.output, result.output
    return out


# --------------------------------------------------------------------------- protocol and cfg


def test_protocols_and_cfg(pair) -> None:
    ours, bridge = pair
    for model in (ours, tiny_model(), tiny_model(positional="absolute", d_mlp=0)):
        assert isinstance(model, TransformerLensModel)
        assert isinstance(model, TransformerLensModelWithWeights)
        assert isinstance(model.cfg, TransformerLensConfig)
        assert isinstance(model.config, ModelConfig)
    cfg, their = ours.cfg, bridge.cfg
    for name in ("n_layers", "d_model", "n_heads", "d_head", "d_mlp", "n_ctx", "d_vocab"):
        assert getattr(cfg, name) == getattr(their, name), name
    assert (cfg.normalization_type, cfg.positional_embedding_type) == ("LN", "standard")
    assert cfg.act_fn == "gelu_new" and cfg.default_prepend_bos is True and cfg.device == "cpu"
    assert ours.config.positional == "absolute" and ours.config.tied_embeddings
    rope = tiny_model(normalization="rmsnorm", d_mlp=0, act_fn="silu").cfg
    assert (rope.positional_embedding_type, rope.normalization_type, rope.attn_only) == (
        "rotary",
        "RMS",
        True,
    )
    assert rope.rotary_dim == 8 and rope.act_fn == "silu" and rope.default_prepend_bos is False
    model = tiny_model().double()  # cfg follows the model
    assert model.cfg.dtype == torch.float64


def test_weights_have_tl_names_and_shapes(pair) -> None:
    ours, bridge = pair
    L, H, D, Dh, M, V = 4, 4, 32, 8, 128, ours.cfg.d_vocab
    shapes = {
        "W_Q": (L, H, D, Dh), "W_K": (L, H, D, Dh), "W_V": (L, H, D, Dh), "W_O": (L, H, Dh, D),
        "b_Q": (L, H, Dh), "b_K": (L, H, Dh), "b_V": (L, H, Dh), "b_O": (L, D),
        "W_in": (L, D, M), "W_out": (L, M, D), "b_in": (L, M), "b_out": (L, D),
        "W_E": (V, D), "W_U": (D, V), "b_U": (V,), "W_pos": (64, D),
    }  # fmt: skip
    for name, shape in shapes.items():
        mine = getattr(ours, name)
        assert tuple(mine.shape) == shape, name
        assert (mine - getattr(bridge, name)).abs().max() <= TOL, name
    assert torch.equal(ours.W_Q[1], ours.blocks[1].attn.W_Q)
    assert torch.equal(ours.W_U, ours.W_E.T)  # GPT-2 ties them
    assert ours.QK.AB.shape == (L, H, D, D) and ours.OV.AB.shape == (L, H, D, D)
    rope = tiny_model(d_mlp=0)
    with pytest.raises(AttributeError):
        rope.W_pos  # noqa: B018 - positions live in attention
    with pytest.raises(AttributeError):
        rope.W_in  # noqa: B018 - attention-only
    sinus = tiny_model(positional="sinusoidal")
    assert torch.equal(sinus.W_pos[:5], sinus.pos_embed(torch.arange(5)))


# --------------------------------------------------------------------------- text


def test_tokens_follow_tl_prepend_bos(pair) -> None:
    ours, bridge = pair
    for prepend_bos in (None, True, False):
        assert torch.equal(
            ours.to_tokens(PROMPT, prepend_bos=prepend_bos),
            bridge.to_tokens(PROMPT, prepend_bos=prepend_bos),
        )
    tokens = ours.to_tokens(PROMPT)
    assert tokens[0, 0] == ours.tokenizer.bos_token_id
    assert ours.to_string(tokens[0]) == bridge.to_string(tokens[0])
    assert ours.to_string(tokens) == [ours.to_string(tokens[0])]
    assert ours.to_str_tokens(PROMPT) == bridge.to_str_tokens(PROMPT)
    assert ours.to_str_tokens(tokens) == ours.to_str_tokens(PROMPT)
    piece = ours.to_str_tokens(PROMPT, prepend_bos=False)[1]
    token = ours.to_single_token(piece)
    assert token == bridge.to_single_token(piece) and ours.to_single_str_token(token) == piece
    texts = ["the model", "the model layer head"]
    batch, single = ours.to_tokens(texts), ours.to_tokens(texts[0])[0]  # right-padded
    assert torch.equal(batch, bridge.to_tokens(texts)) and torch.equal(
        batch[0, : len(single)], single
    )
    assert torch.equal(ours(PROMPT), ours(tokens))  # text straight into forward
    with pytest.raises(InterpError, match="not a single token"):
        ours.to_single_token("the model layer")
    with pytest.raises(InterpError, match="right padding"):
        ours.to_tokens(["a", "b c"], padding_side="left")


def test_models_without_a_tokenizer(copy_run) -> None:
    model = load_model(copy_run)  # a task run: the task's token names are its text
    assert model.tokenizer is None and model.cfg.default_prepend_bos is True
    tokens = model.to_tokens("3 1 4 <sep>")
    assert tokens.tolist() == [[8, 3, 1, 4, 9]]  # <bos> = 8, <sep> = 9 for vocab=8
    assert model.to_str_tokens(tokens) == ["<bos>", "3", "1", "4", "<sep>"]
    assert model.to_string(tokens[0]) == "<bos> 3 1 4 <sep>"
    with pytest.raises(InterpError, match="'x' is not a token of task 'copy'"):
        model.to_tokens("3 x")
    bare = tiny_model()  # nothing names its tokens: ids only, text is one line
    assert bare.cfg.default_prepend_bos is False
    assert torch.equal(bare.to_tokens([1, 2, 3]), torch.tensor([[1, 2, 3]]))
    for call in (lambda: bare.to_tokens("a b"), lambda: bare.to_string([1, 2])):
        with pytest.raises(InterpError, match="has no text"):
            call()
    vector = tiny_model(input_kind="vector", d_input=2, d_vocab=1)
    with pytest.raises(InterpError, match="reads vectors"):
        vector.to_tokens("1 2")
    flipflop = HookedTransformer(tiny_config(d_vocab=5))
    flipflop.task = build_task("flipflop")  # named tokens, but no <bos>
    assert flipflop.cfg.default_prepend_bos is False
    assert flipflop.to_str_tokens("w 1 r 1") == ["w", "1", "r", "1"]
    with pytest.raises(InterpError, match="no BOS"):
        flipflop.to_tokens("w 1", prepend_bos=True)


def test_generate_greedy_and_sampled(copy_run) -> None:
    model = load_model(copy_run)
    prompt = "<bos> 5 1 7 3 4 <sep>"
    assert model.generate(prompt, max_new_tokens=5, do_sample=False, prepend_bos=False) == (
        "<bos> 5 1 7 3 4 <sep> 5 1 7 3 4"
    )
    tokens = model.to_tokens(prompt, prepend_bos=False)
    greedy = model.generate(tokens, max_new_tokens=4, do_sample=False)
    by_hand = tokens
    for _ in range(4):  # argmax of the last position, appended
        by_hand = torch.cat([by_hand, model(by_hand)[:, -1].argmax(-1, keepdim=True)], dim=1)
    assert torch.equal(greedy, by_hand)
    state = torch.random.get_rng_state()
    a = model.generate(tokens, max_new_tokens=5, temperature=3.0, seed=7)
    b = model.generate(tokens, max_new_tokens=5, temperature=3.0, seed=7)
    assert torch.equal(a, b) and a.shape == (1, 12)
    assert torch.equal(torch.random.get_rng_state(), state)  # a seed leaves the global RNG be
    assert model.generate(tokens, max_new_tokens=0).shape == tokens.shape
    with pytest.raises(InterpError, match="max_new_tokens"):
        model.generate(tokens, max_new_tokens=-1)
    gpt2 = load_model(save_tiny_gpt2(copy_run.parent / "g2", n_positions=16))
    with pytest.raises(InterpError, match="exceed the model's context of 16"):
        gpt2.generate("the model", max_new_tokens=20)
    eos = gpt2.tokenizer.eos_token_id  # finished sequences are padded with EOS
    out = gpt2.generate("the", max_new_tokens=6, eos_token_id=eos, do_sample=False)
    assert isinstance(out, str) and out.startswith("<|endoftext|>the")


# --------------------------------------------------------------------------- the cache


def test_run_with_cache_is_an_activation_cache(pair) -> None:
    ours, _ = pair
    tokens = ours.to_tokens(PROMPT)
    logits, cache = ours.run_with_cache(tokens)
    assert isinstance(cache, TLActivationCache)
    assert torch.equal(cache["blocks.1.hook_resid_post"], cache["resid_post", 1])
    assert torch.equal(cache["resid_post", -1], cache["blocks.3.hook_resid_post"])
    assert "blocks.0.attn.hook_pattern" in cache and cache.get("nope") is None
    assert set(cache.keys()) == set(ours.hook_dict)
    _, some = ours.run_with_cache(tokens, names_filter=lambda n: n.endswith("resid_post"))
    assert sorted(some.keys()) == [f"blocks.{i}.hook_resid_post" for i in range(4)]
    _, sliced = ours.run_with_cache(tokens, pos_slice=-1)
    assert torch.equal(sliced["blocks.0.hook_resid_post"], cache["resid_post", 0][:, -1:])
    assert torch.equal(sliced["blocks.0.attn.hook_z"], cache["z", 0][:, -1:])
    _, plain = ours.run_with_cache(tokens, return_cache_object=False)
    assert isinstance(plain, dict)
    with torch.enable_grad():
        loss, grads = ours.run_with_cache(tokens, return_type="loss", incl_bwd=True)
    n = tokens.shape[1]
    assert loss.ndim == 0 and grads["blocks.0.hook_resid_post_grad"].shape == (1, n, 32)
    _, one = ours.run_with_cache(tokens, remove_batch_dim=True)
    assert one["resid_post", 0].shape == (n, 32) and not one.has_batch_dim


@torch.no_grad()
def test_cache_helpers_equal_tl_on_the_same_gpt2(pair) -> None:
    """Every helper on interp's cache equals the helper on TransformerBridge's, 1e-4."""
    ours, bridge = pair
    tokens = ours.to_tokens([PROMPT, "the head token stream of the model layer!"])
    assert torch.equal(
        tokens, bridge.to_tokens([PROMPT, "the head token stream of the model layer!"])
    )
    logits, mine = ours.run_with_cache(tokens)
    ref_logits, theirs = bridge.run_with_cache(tokens)
    worst: dict[str, float] = {"logits": float((logits - ref_logits).abs().max())}

    def same(name: str, a, b) -> None:
        assert isinstance(a, torch.Tensor) and a.shape == b.shape, (name, a.shape, b.shape)
        worst[name] = float((a - b).abs().max())

    for layer in range(4):
        for act in ("resid_pre", "resid_mid", "resid_post", "attn_out", "mlp_out", "pattern"):
            same(f"{act}{layer}", mine[act, layer], theirs[act, layer])
    for kw in (dict(), dict(apply_ln=True), dict(layer=2, incl_mid=True, apply_ln=True)):
        a, labels = mine.accumulated_resid(return_labels=True, **kw)
        b, their_labels = theirs.accumulated_resid(return_labels=True, **kw)
        assert labels == their_labels
        same(f"accumulated_resid{kw}", a, b)
    for kw in (dict(), dict(apply_ln=True), dict(mode="attn", layer=2, mlp_input=True)):
        a, labels = mine.decompose_resid(return_labels=True, **kw)
        b, their_labels = theirs.decompose_resid(return_labels=True, **kw)
        assert labels == their_labels
        same(f"decompose_resid{kw}", a, b)
    stack = mine.decompose_resid()
    answer, wrong = tokens[:, -1], tokens[:, -2]
    same(
        "logit_attrs",
        mine.logit_attrs(stack, answer),
        theirs.logit_attrs(theirs.decompose_resid(), answer),
    )
    same(
        "logit_attrs(diff)",
        mine.logit_attrs(
            mine.decompose_resid(pos_slice=-1), answer, incorrect_tokens=wrong, pos_slice=-1
        ),
        theirs.logit_attrs(
            theirs.decompose_resid(pos_slice=-1), answer, incorrect_tokens=wrong, pos_slice=-1
        ),
    )
    same(
        "stack_head_results",
        mine.stack_head_results(apply_ln=True),
        theirs.stack_head_results(apply_ln=True),
    )
    same(
        "get_full_resid_decomposition",
        mine.get_full_resid_decomposition(expand_neurons=False, apply_ln=True),
        theirs.get_full_resid_decomposition(expand_neurons=False, apply_ln=True),
    )
    lens, their_lens = (c.logit_lens(return_type="logits") for c in (mine, theirs))
    same("logit_lens", lens.readout.values, their_lens.readout.values)
    for layer, mlp_input in ((0, True), (2, False), (4, False)):
        same(
            f"accumulated_bias{layer}",
            ours.accumulated_bias(layer, mlp_input=mlp_input),
            bridge.accumulated_bias(layer, mlp_input=mlp_input),
        )
    same("sum of decompose_resid", stack.sum(0), mine["resid_post", 3])  # the parts add up
    print(
        f"max |ours - TransformerBridge|: {max(worst.values()):.2e} ({max(worst, key=worst.get)})"
    )
    assert max(worst.values()) <= TOL, worst


# --------------------------------------------------------------------------- TL tools, by hand


def _rest_of_forward(model, resid, start: int):
    """Blocks ``start``.. and the head, written out (no hooks)."""
    for block in model.blocks[start:]:
        resid = block(resid)
    return model.unembed(model.ln_final(resid))


def _attn_with_z(model, layer: int, x, z):
    """Block ``layer`` of an attention-only model with its attention's z given."""
    attn = model.blocks[layer].attn
    return x + z.flatten(-2) @ attn.W_O.flatten(0, 1) + attn.b_O


def test_patching_equals_a_hand_computation(copy_run) -> None:
    model = load_model(copy_run)
    clean = model.to_tokens("5 1 7 3 4 <sep> 5 1 7")
    corrupt = model.to_tokens("5 1 7 6 4 <sep> 5 1 7")  # the token to copy next (pos 4) changed
    right, wrong = model.to_single_token("3"), model.to_single_token("6")

    def metric(logits):
        return logits[0, -1, right] - logits[0, -1, wrong]

    _, clean_cache = model.run_with_cache(clean)
    _, corrupt_cache = model.run_with_cache(corrupt)
    with torch.no_grad():
        resid = patching.get_act_patch_resid_pre(model, corrupt, clean_cache, metric)
        heads = patching.get_act_patch_attn_head_out_all_pos(model, corrupt, clean_cache, metric)
        n_pos = clean.shape[1]
        by_hand = torch.zeros(2, n_pos)
        for layer in range(2):
            for pos in range(n_pos):
                x = corrupt_cache["resid_pre", layer].clone()
                x[:, pos] = clean_cache["resid_pre", layer][:, pos]
                by_hand[layer, pos] = metric(_rest_of_forward(model, x, layer))
        heads_by_hand = torch.zeros(2, 2)
        for layer in range(2):
            for head in range(2):
                z = corrupt_cache["z", layer].clone()
                z[:, :, head] = clean_cache["z", layer][:, :, head]
                x = _attn_with_z(model, layer, corrupt_cache["resid_pre", layer], z)
                heads_by_hand[layer, head] = metric(_rest_of_forward(model, x, layer + 1))
    assert resid.shape == (2, n_pos) and heads.shape == (2, 2)
    assert (resid - by_hand).abs().max() <= TOL
    assert (heads - heads_by_hand).abs().max() <= TOL
    with torch.no_grad():
        clean_metric, corrupt_metric = float(metric(model(clean))), float(metric(model(corrupt)))
    assert clean_metric > 0 > corrupt_metric  # the model copies what it saw
    assert abs(float(resid[0, 4]) - clean_metric) <= TOL  # the changed token patched: clean again
    assert abs(float(resid[0, 1]) - corrupt_metric) <= TOL  # an unchanged one: nothing moves


def test_head_detector_equals_a_hand_computation(copy_run) -> None:
    model = load_model(copy_run)
    seq = "0 1 2 3 4 <sep> 0 1 2 3"
    tokens = model.to_tokens(seq)
    _, cache = model.run_with_cache(tokens)
    for name, make in (
        ("induction_head", get_induction_head_detection_pattern),
        ("previous_token_head", get_previous_token_head_detection_pattern),
    ):
        scores = detect_head(model, seq, name)
        pattern = make(tokens.cpu())
        by_hand = torch.tensor(
            [
                [
                    float((cache["pattern", layer][0, head] * pattern).sum() / tokens.shape[1])
                    for head in range(2)
                ]
                for layer in range(2)
            ]
        )
        assert scores.shape == (2, 2) and (scores - by_hand).abs().max() <= TOL, name
        if name == "induction_head":
            ideal = float(pattern.sum()) / tokens.shape[1]  # all attention where the pattern is
            assert float(scores[1].max()) >= 0.9 * ideal, scores  # the copy is done by induction
    ids = detect_head(model, tokens, "previous_token_head")  # token ids work as well as text
    assert torch.allclose(ids, detect_head(model, seq, "previous_token_head"))


# --------------------------------------------------------------------------- GPT-2 is GPT-2


@pytest.mark.parametrize("grad", ["vanilla", "myopic"])
def test_imported_gpt2_trains_exactly_gpt2s_parameters(gpt2_dir, grad) -> None:
    from transformers import GPT2LMHeadModel

    from interp.config import OptimConfig, TrainConfig
    from interp.models.export import to_hf
    from interp.train.loop import train
    from interp.train.sources import CorpusSource

    hf = GPT2LMHeadModel.from_pretrained(gpt2_dir)
    model = load_model(gpt2_dir)
    trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
    assert set(trainable) == {n for n, _ in model.named_parameters()}
    assert sum(p.numel() for p in trainable.values()) == sum(p.numel() for p in hf.parameters())
    assert "unembed.b_U" not in dict(model.named_parameters())
    assert "unembed.b_U" not in model.state_dict()
    blocks = torch.randint(
        0, model.cfg.d_vocab, (8, 16), generator=torch.Generator().manual_seed(0)
    )
    cfg = TrainConfig(
        steps=2,
        batch_size=4,
        eval_batches=1,
        grad_mode=grad,
        optim=OptimConfig(lr=1e-2, warmup_steps=0),
    )
    before = {n: p.detach().clone() for n, p in trainable.items()}
    train(model, CorpusSource(blocks, blocks[:4], 4, 0, 1), cfg)
    moved = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert moved == set(before)  # every GPT-2 parameter trained, and nothing else exists
    assert not model.unembed.b_U.any()
    exported = to_hf(model.eval())  # and the trained model is still exactly a GPT-2
    assert exported.architecture == "GPT2LMHeadModel" and exported.max_logit_diff <= TOL


def test_unembed_bias_is_a_config_choice() -> None:
    """``unembed_bias`` is left out of config.json at its default (earlier runs keep their
    config and cache keys); without it b_U is a zero buffer, and the logits are unchanged."""
    assert "unembed_bias" not in ModelConfig().to_dict()
    off = ModelConfig(unembed_bias=False)
    assert off.to_dict()["unembed_bias"] is False and ModelConfig.from_dict(off.to_dict()) == off
    with_bias = HookedTransformer(tiny_config(), seed=3)
    without = HookedTransformer(tiny_config(unembed_bias=False), seed=3)
    assert "unembed.b_U" not in dict(without.named_parameters())
    assert set(with_bias.state_dict()) - set(without.state_dict()) == {"unembed.b_U"}
    tokens = torch.randint(0, 20, (2, 12))
    assert torch.equal(with_bias(tokens), without(tokens))  # b_U is zero at init: same numbers
