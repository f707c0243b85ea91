"""The one loader: run directories, local GPT-2 directories (imported exactly), bad specs."""

from __future__ import annotations

import time

import pytest
import torch
from helpers import tiny_task_job
from hf_fixtures import save_tiny_gpt2
from transformers import GPT2LMHeadModel

from interp import load_model
from interp.errors import LoadError
from interp.models import HookedTransformer
from interp.train.job import run_training


@pytest.mark.parametrize(
    "shape",
    [
        dict(n_layer=2, n_embd=32, n_head=4),
        dict(n_layer=1, n_embd=24, n_head=3, n_inner=40, activation_function="gelu"),
        dict(n_layer=3, n_embd=16, n_head=2, activation_function="relu", layer_norm_epsilon=1e-3),
    ],
)
def test_gpt2_import_matches_transformers(tmp_path, shape) -> None:
    path = save_tiny_gpt2(tmp_path / "gpt2", **shape)
    model = load_model(path)
    assert isinstance(model, HookedTransformer)
    hf = GPT2LMHeadModel.from_pretrained(path).eval()
    tokens = torch.randint(
        0, hf.config.vocab_size, (3, 20), generator=torch.Generator().manual_seed(0)
    )
    with torch.no_grad():
        ours, theirs = model(tokens), hf(tokens).logits
    assert (ours - theirs).abs().max().item() <= 1e-4
    # hidden states agree too (HF's last hidden state is after ln_f)
    with torch.no_grad():
        hs = hf(tokens, output_hidden_states=True).hidden_states
    _, cache = model.run_with_cache(tokens)
    for layer in range(model.cfg.n_layers):  # HF hidden_states[l] is the input of block l
        torch.testing.assert_close(
            cache[f"blocks.{layer}.hook_resid_pre"], hs[layer], atol=1e-4, rtol=1e-4
        )
    torch.testing.assert_close(cache["ln_final.hook_normalized"], hs[-1], atol=1e-4, rtol=1e-4)
    # the tokenizer comes along
    ids = model.tokenizer.encode("the model layer")
    assert ids and model.tokenizer.decode(ids) == "the model layer"


def test_run_directory_loads_with_its_weights(tmp_path) -> None:
    run = run_training(tmp_path / "run", tiny_task_job(steps=10))
    model = load_model(run.path)
    tokens = torch.randint(0, 6, (2, 10))
    from interp.train.checkpoint import load_weights

    w = load_weights(run.path / "model.safetensors")
    assert torch.equal(model.state_dict()["embed.W_E"], w["embed.W_E"])
    assert model(tokens).shape == (2, 10, 8)


def test_run_directory_without_final_weights_uses_latest_checkpoint(tmp_path) -> None:
    run = run_training(tmp_path / "run", tiny_task_job(steps=10))
    (run.path / "model.safetensors").unlink()
    assert isinstance(load_model(run.path), HookedTransformer)


@pytest.mark.parametrize(
    "make, fragment",
    [
        (lambda p: p / "missing", "no such directory"),
        (lambda p: (p / "empty").mkdir() or p / "empty", "no config.json"),
        (lambda p: (p / "f.txt").write_text("x") and p / "f.txt", "is a file"),
        (
            lambda p: (
                ((p / "bad").mkdir(), (p / "bad" / "config.json").write_text("{nope"))[0]
                or p / "bad"
            ),
            "not valid JSON",
        ),
    ],
)
def test_bad_paths_fail_with_one_line(tmp_path, make, fragment) -> None:
    spec = make(tmp_path)
    with pytest.raises(LoadError, match=fragment) as info:
        load_model(str(spec))
    assert "\n" not in str(info.value)


def test_hub_name_offline_fails_fast_naming_the_spec(monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    t0 = time.perf_counter()
    with pytest.raises(LoadError, match="definitely-not-a-model-xyz"):
        load_model("definitely-not-a-model-xyz")
    assert time.perf_counter() - t0 < 10


def test_corrupt_run_weights_are_refused(tmp_path) -> None:
    run = run_training(tmp_path / "run", tiny_task_job(steps=5))
    data = (run.path / "model.safetensors").read_bytes()
    (run.path / "model.safetensors").write_bytes(data[:100])
    with pytest.raises(LoadError, match="safetensors"):
        load_model(run.path)
