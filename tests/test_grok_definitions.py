"""The grokking models as the papers' code defines them, each against a slow, obvious formula.

Nanda et al.: mechanistic-interpretability-grokking/progress-measures-paper ``transformers.py``.
PAIR: PAIR-code/ai-explorables ``server-side/grokking/MLP_Modular_Addition.ipynb``.
"""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
import torch

from interp.errors import ConfigError
from interp.experiments.grok import build_data, build_model
from interp.grok.config import GrokConfig
from interp.train.full_batch import FullBatchData, objective_loss, train_full_batch
from interp.train.optim import Optim, schedule


def test_pair_loss_is_averaged_over_classes_too() -> None:
    """PAIR's ``-jnp.mean(one_hot(targets) * log_softmax(logits))``, element by element."""
    g = torch.Generator().manual_seed(0)
    logits, y = torch.randn(9, 7, generator=g), torch.randint(0, 7, (9,), generator=g)
    slow = 0.0
    for i in range(9):
        logp = torch.log_softmax(logits[i], -1)
        for c in range(7):
            slow -= (1.0 if c == int(y[i]) else 0.0) * float(logp[c])
    slow /= 9 * 7
    assert float(objective_loss(logits, y, "class_mean")) == pytest.approx(slow, rel=1e-6)
    assert float(objective_loss(logits, y, "mean")) == pytest.approx(slow * 7, rel=1e-6)
    cfg = GrokConfig(model="mlp", variant="pair").resolved()
    assert cfg.definition.loss == "class_mean"
    assert GrokConfig(model="mlp", variant="interp").resolved().definition.loss == "mean"
    assert GrokConfig(task="sparse-parity").resolved().definition.loss == "mean"


def test_pair_split_is_numpys_permutation_over_ordered_pairs() -> None:
    cfg = GrokConfig(model="mlp", variant="pair", p=67, seed=165).resolved()
    data = build_data(cfg)
    pairs = [(a, b) for a in range(67) for b in range(67) if a <= b]
    np.random.seed(165)  # the notebook's global draw
    indices = np.random.permutation(len(pairs))
    split = int(0.4 * len(pairs))
    train = {pairs[i] for i in indices[:split]}
    ours = {(int(a), int(b)) for (a, b), t in zip(data.x.tolist(), data.train, strict=True) if t}
    assert len(pairs) == 2278 and split == 911
    assert ours == train


def test_nanda_split_is_random_shuffle_over_all_pairs() -> None:
    cfg = GrokConfig(model="transformer", p=13, seed=3).resolved()
    data = build_data(cfg)
    pairs = [(i, j, 13) for i in range(13) for j in range(13)]
    random.seed(3)
    random.shuffle(pairs)
    train = {(i, j) for i, j, _ in pairs[: int(0.3 * len(pairs))]}
    ours = {(int(r[0]), int(r[1])) for r, t in zip(data.x.tolist(), data.train, strict=True) if t}
    assert ours == train


def test_pair_init_statistics() -> None:
    """VarianceScaling(2) on the [p, 500] embedding (std sqrt(2/p) after truncation at 2 sigma),
    hk.Linear truncated normal 1/sqrt(fan_in) (std 0.88/sqrt(fan_in), cut at 2/sqrt(fan_in))."""
    cfg = GrokConfig(model="mlp", variant="pair", p=67, d_embed=500, width=24, seed=165)
    model = build_model(cfg.resolved())
    E, W_in, W_out = model.E.detach(), model.W_in.detach(), model.W_out.detach()
    assert E.std().item() == pytest.approx(math.sqrt(2 / 67), rel=0.03)
    assert E.abs().max().item() <= 2 * math.sqrt(2 / 67) / 0.8796256610342398 + 1e-6
    assert W_in.std().item() == pytest.approx(0.8796 / math.sqrt(500), rel=0.05)
    assert W_in.abs().max().item() <= 2 / math.sqrt(500) + 1e-6
    assert W_out.std().item() == pytest.approx(0.8796 / math.sqrt(24), rel=0.05)
    assert W_out.abs().max().item() <= 2 / math.sqrt(24) + 1e-6


def test_nanda_parameters_and_init_scales() -> None:
    """No attention or unembedding biases (Nanda's Attention holds W_K, W_Q, W_V, W_O; Unembed
    W_U); every matrix randn / sqrt(d_model) but W_U, randn / sqrt(d_vocab)."""
    cfg = GrokConfig(model="transformer", p=113).resolved()
    assert cfg.variant == "nanda"
    model = build_model(cfg)
    trained = {n.removeprefix("model."): p for n, p in model.named_parameters() if p.requires_grad}
    assert sorted(trained) == sorted([
        "embed.W_E", "pos_embed.W_pos", "blocks.0.attn.W_Q", "blocks.0.attn.W_K",
        "blocks.0.attn.W_V", "blocks.0.attn.W_O", "blocks.0.mlp.W_in", "blocks.0.mlp.b_in",
        "blocks.0.mlp.W_out", "blocks.0.mlp.b_out", "unembed.W_U",
    ])  # fmt: skip
    for name, p in trained.items():
        if name.rsplit(".", 1)[-1].startswith("W_") and p.numel() > 1000:
            want = 114**-0.5 if name.endswith("W_U") else 128**-0.5
            assert p.std().item() == pytest.approx(want, rel=0.05), name
    frozen = [n for n, p in model.named_parameters() if not p.requires_grad]
    assert all(model.get_parameter(n).abs().max() == 0 for n in frozen)
    old = build_model(GrokConfig(model="transformer", p=113, variant="interp").resolved())
    assert all(p.requires_grad for p in old.parameters())  # interp's earlier one, kept
    assert hasattr(old.model.unembed, "b_U") and "model.unembed.b_U" in dict(old.named_parameters())


def test_nanda_loss_keeps_the_equals_logit_in_the_softmax() -> None:
    """Nanda's ``full_loss``: cross-entropy of ``model(data)[:, -1]`` over all d_vocab = p + 1
    outputs (the ``=`` token's logit included), by hand from the full hooked forward; the
    Fourier analyses read the p residues' logits (``take_metrics``: ``[:, -1, :-1]``)."""
    cfg = GrokConfig(model="transformer", p=7, d_model=16, width=32, seed=1).resolved()
    model, data = build_model(cfg), build_data(cfg)
    assert model.classes == 8
    with torch.no_grad():
        full = model.model(data.x)[:, -1]  # [pair d_vocab], every hook position computed
        ours = model(data.x)
    assert full.shape[-1] == 8 and ours.shape == full.shape
    torch.testing.assert_close(ours, full, rtol=1e-5, atol=1e-6)
    slow = 0.0
    for logits, label in zip(full.tolist(), data.y.tolist(), strict=True):
        slow -= logits[label] - math.log(sum(math.exp(v) for v in logits))
    slow /= len(data.y)
    assert float(objective_loss(ours, data.y, cfg.definition.loss)) == pytest.approx(slow, rel=1e-5)
    old = build_model(GrokConfig(model="transformer", p=7, d_model=16, width=32,
                                 variant="interp").resolved())  # fmt: skip
    assert old.classes == 7 and old(data.x).shape[-1] == 7  # interp's earlier one: p classes


def test_nanda_warmup_learning_rates() -> None:
    """``LambdaLR(optimizer, lambda step: min(step/10, 1))``: the rate at each step."""
    cfg = GrokConfig(model="transformer", p=7).resolved()
    lr = schedule(cfg.optim, 100)
    assert [lr(s) for s in range(12)] == [1e-3 * min(s / 10, 1) for s in range(12)]
    assert schedule(Optim(lr=1e-3), 100)(0) == 1e-3  # no warmup: constant
    # torch's own LambdaLR over the same steps
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.AdamW([param], lr=1e-3)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: min(step / 10, 1))
    torch_rates = []
    for _ in range(12):
        torch_rates.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert [lr(s) for s in range(12)] == pytest.approx(torch_rates, rel=1e-12)


def test_first_warmup_step_moves_no_weight() -> None:
    cfg = GrokConfig(model="transformer", p=7, steps=1, log_every=1).resolved()
    model = build_model(cfg)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    data = build_data(cfg)
    train_full_batch(model, FullBatchData(data.x, data.y, data.train), 1, cfg.optim)
    assert all(torch.equal(before[n], p) for n, p in model.named_parameters())


def test_pair_variant_is_for_modular_addition_only() -> None:
    with pytest.raises(ConfigError, match="variant pair"):
        GrokConfig(task="sparse-parity", model="mlp", variant="pair").validate()
    with pytest.raises(ConfigError, match="unknown variant"):
        GrokConfig(model="transformer", variant="pair").validate()


def test_old_config_without_variant_reads_back_as_interps_earlier_model() -> None:
    body = GrokConfig(model="transformer", p=7).resolved().to_dict()
    del body["variant"]
    assert GrokConfig.from_dict(body).variant == "interp"
    assert GrokConfig.from_dict({**body, "variant": "nanda"}).variant == "nanda"


def test_the_default_modadd_mlp_is_pairs_notebook_setting() -> None:
    """#19: ``interp grok --task modadd`` (no options) is PAIR's MLP at its notebook's setting
    (embed 500, seed 165), which groks on a CPU; sparse parity and the transformer keep theirs;
    ``variant="interp"`` gives the earlier default (d_embed 32, seed 0) back."""
    from interp.grok.variants import default_variant

    cfg = GrokConfig(task="modadd").resolved()
    assert (cfg.model, cfg.variant, cfg.d_embed, cfg.seed) == ("mlp", "pair", 500, 165)
    assert (cfg.width, cfg.train_fraction, cfg.pairs) == (24, 0.4, "ordered")
    assert (cfg.lr, cfg.weight_decay, cfg.steps) == (1e-3, 1.0, 50_000)
    assert GrokConfig().definition.name == "pair" and GrokConfig().split_seed == 165
    old = GrokConfig(task="modadd", variant="interp").resolved()
    assert (old.variant, old.d_embed, old.seed) == ("interp", 32, 0)
    assert GrokConfig(variant="pair", d_embed=64, seed=3).resolved().d_embed == 64
    parity = GrokConfig(task="sparse-parity").resolved()
    assert (parity.variant, parity.d_embed, parity.seed) == ("interp", 32, 0)
    nanda = GrokConfig(model="transformer").resolved()
    assert (nanda.variant, nanda.seed) == ("nanda", 0)
    assert default_variant("mlp") == "interp" and default_variant("mlp", "modadd") == "pair"
    GrokConfig().validate()
    GrokConfig(task="sparse-parity").validate()  # the default variant there applies to it
