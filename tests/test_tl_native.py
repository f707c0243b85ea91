"""Imported GPT-2 is GPT-2 (issue #15, item 5): no parameter GPT-2 lacks, and training it
(vanilla or myopic) trains exactly GPT-2's parameters."""

from __future__ import annotations

import pytest
import torch
from helpers import tiny_config
from hf_fixtures import save_tiny_gpt2

from interp import load_model
from interp.config import ModelConfig
from interp.models import HookedTransformer


@pytest.fixture(scope="module")
def gpt2_dir(tmp_path_factory):
    return save_tiny_gpt2(tmp_path_factory.mktemp("tl") / "gpt2", n_layer=3, n_embd=32, n_head=4)


@pytest.mark.parametrize("grad", ["vanilla", "myopic"])
def test_imported_gpt2_trains_exactly_gpt2s_parameters(gpt2_dir, grad) -> None:
    from transformers import GPT2LMHeadModel

    from interp.config import OptimConfig, TrainConfig
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
