"""interp.models.bridge: booting tiny random HF checkpoints through TransformerBridge.

Offline only: HF_HUB_OFFLINE=1 is set for every test here, and all checkpoints are
built locally by ``hf_fixtures``.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from hf_fixtures import EOT, save_tiny_gpt2, save_tiny_llama, train_tiny_hf_tokenizer

from interp.errors import CorruptFileError, LoadError
from interp.models.bridge import boot_bridge, is_hf_directory

BATCH, POS = 2, 12


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module")
def offline_module() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        yield


@pytest.fixture(scope="module")
def llama_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_llama(tmp_path_factory.mktemp("tiny_llama"))


@pytest.fixture(scope="module")
def gpt2_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_gpt2(tmp_path_factory.mktemp("tiny_gpt2"))


def _hf(directory: Path) -> Any:
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(directory, attn_implementation="eager").eval()


@pytest.fixture(scope="module")
def llama(offline_module: None, llama_dir: Path) -> tuple[Any, Any]:
    return boot_bridge(str(llama_dir)), _hf(llama_dir)


@pytest.fixture(scope="module")
def tokens() -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    return torch.randint(0, 300, (BATCH, POS), generator=gen)


@pytest.fixture(scope="module")
def llama_hf_out(llama: tuple[Any, Any], tokens: torch.Tensor) -> Any:
    _, hf = llama
    with torch.no_grad():
        return hf(tokens, output_hidden_states=True, output_attentions=True)


# --------------------------------------------------------------------------- fixtures


def test_tokenizer_is_deterministic_gpt2_style() -> None:
    a, b = train_tiny_hf_tokenizer(), train_tiny_hf_tokenizer()
    assert a.backend_tokenizer.to_str() == b.backend_tokenizer.to_str()
    assert len(a) == 300
    assert a.bos_token == a.eos_token == a.unk_token == EOT
    text = "def forward(self, x):\n    return the model"
    assert a.decode(a(text)["input_ids"]) == text


def test_is_hf_directory(tmp_path: Path, llama_dir: Path) -> None:
    assert is_hf_directory(llama_dir)
    assert is_hf_directory(str(llama_dir))
    assert not is_hf_directory(tmp_path)
    assert not is_hf_directory(tmp_path / "missing")
    (tmp_path / "config.json").write_text(json.dumps({"hidden_size": 8}))
    assert not is_hf_directory(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["X"]}))
    assert is_hf_directory(tmp_path)


# --------------------------------------------------------------------------- llama


def test_llama_cfg_and_tokenizer(llama: tuple[Any, Any]) -> None:
    model, hf = llama
    c = hf.config
    assert model.cfg.n_layers == c.num_hidden_layers == 2
    assert model.cfg.d_model == c.hidden_size
    assert model.cfg.n_ctx == c.max_position_embeddings
    assert model.cfg.d_vocab == c.vocab_size
    assert model.cfg.n_heads == c.num_attention_heads
    assert model.tokenizer.eos_token == EOT
    assert model.tokenizer("the model")["input_ids"]
    assert not model.training


def test_llama_logits_match_hf(
    llama: tuple[Any, Any], tokens: torch.Tensor, llama_hf_out: Any
) -> None:
    model, _ = llama
    with torch.no_grad():
        logits = model(tokens)
    assert logits.shape == (BATCH, POS, model.cfg.d_vocab)
    assert logits.dtype == torch.float32
    # The random init is large enough that a mapping bug could not hide under 1e-4.
    assert llama_hf_out.logits.std() > 0.1
    assert (logits - llama_hf_out.logits).abs().max().item() <= 1e-4


def test_llama_cache_names_and_shapes(llama: tuple[Any, Any], tokens: torch.Tensor) -> None:
    model, _ = llama
    cfg = model.cfg
    names = [
        "hook_embed",
        *(f"blocks.{layer}.hook_resid_pre" for layer in range(cfg.n_layers)),
        *(f"blocks.{layer}.hook_resid_post" for layer in range(cfg.n_layers)),
        *(f"blocks.{layer}.attn.hook_pattern" for layer in range(cfg.n_layers)),
        "ln_final.hook_normalized",
    ]
    with torch.no_grad():
        _, cache = model.run_with_cache(tokens, names_filter=names)
    for name in names:
        assert name in cache, name
        if name.endswith("hook_pattern"):
            pattern = cache[name]
            assert pattern.shape == (BATCH, cfg.n_heads, POS, POS)
            torch.testing.assert_close(pattern.sum(-1), torch.ones(BATCH, cfg.n_heads, POS))
            assert torch.all(pattern.triu(diagonal=1) == 0)  # causal
        else:
            assert cache[name].shape == (BATCH, POS, cfg.d_model), name
    # a callable filter sees the legacy names too
    with torch.no_grad():
        _, cache = model.run_with_cache(tokens, names_filter=lambda n: n.endswith("resid_post"))
    assert {f"blocks.{layer}.hook_resid_post" for layer in range(cfg.n_layers)} <= set(cache)


def test_llama_hooks_equal_hf_activations(
    llama: tuple[Any, Any], tokens: torch.Tensor, llama_hf_out: Any
) -> None:
    """Which hook equals which HF tensor (no folding: the bridge runs raw HF weights)."""
    model, hf = llama
    hs = llama_hf_out.hidden_states  # n_layers + 1 tensors
    last = model.cfg.n_layers - 1
    with torch.no_grad():
        _, cache = model.run_with_cache(tokens)

    def close(a: torch.Tensor, b: torch.Tensor) -> None:
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)

    close(cache["hook_embed"], hf.get_input_embeddings()(tokens))
    for layer in range(model.cfg.n_layers):
        close(cache[f"blocks.{layer}.hook_resid_pre"], hs[layer])
        close(cache[f"blocks.{layer}.attn.hook_pattern"], llama_hf_out.attentions[layer])
    for layer in range(last):
        close(cache[f"blocks.{layer}.hook_resid_post"], hs[layer + 1])
    # HF's last hidden state is *after* the final norm: it is ln_final's output, and the
    # last resid_post is the final norm's input.
    resid_final = cache[f"blocks.{last}.hook_resid_post"]
    assert (resid_final - hs[-1]).abs().max() > 1e-2
    close(cache["ln_final.hook_out"], hs[-1])
    close(cache["ln_final.hook_in"], resid_final)
    # hook_normalized is RMS-normalised but without the (randomised) gain
    eps = hf.config.rms_norm_eps
    rms = resid_final.pow(2).mean(-1, keepdim=True).add(eps).sqrt()
    close(cache["ln_final.hook_normalized"], resid_final / rms)


def test_llama_run_with_hooks(llama: tuple[Any, Any], tokens: torch.Tensor) -> None:
    model, _ = llama
    last = model.cfg.n_layers - 1
    seen: list[tuple[int, ...]] = []

    def record(t: torch.Tensor, hook: Any) -> None:
        seen.append(tuple(t.shape))

    def zero(t: torch.Tensor, hook: Any) -> torch.Tensor:
        return torch.zeros_like(t)

    with torch.no_grad():
        clean = model(tokens)
        logits = model.run_with_hooks(
            tokens,
            fwd_hooks=[
                ("blocks.0.attn.hook_pattern", record),
                (f"blocks.{last}.hook_resid_post", zero),
            ],
        )
        after = model(tokens)
    assert seen == [(BATCH, model.cfg.n_heads, POS, POS)]
    # zero residual -> RMSNorm gives 0 -> no-bias unembed gives 0
    assert logits.abs().max().item() == 0.0
    torch.testing.assert_close(after, clean)  # hooks are removed afterwards


# --------------------------------------------------------------------------- gpt-2


def test_gpt2_through_bridge_matches_hf(
    offline_module: None, gpt2_dir: Path, tokens: torch.Tensor
) -> None:
    model = boot_bridge(gpt2_dir)
    hf = _hf(gpt2_dir)
    with torch.no_grad():
        out = hf(tokens, output_hidden_states=True)
        logits, cache = model.run_with_cache(tokens)
    assert out.logits.std() > 0.1
    assert (logits - out.logits).abs().max().item() <= 1e-4
    assert model.cfg.n_ctx == 64 and model.cfg.d_vocab == 300
    for layer in range(model.cfg.n_layers):
        torch.testing.assert_close(
            cache[f"blocks.{layer}.hook_resid_pre"], out.hidden_states[layer], atol=1e-5, rtol=0
        )
    torch.testing.assert_close(cache["ln_final.hook_out"], out.hidden_states[-1], atol=1e-5, rtol=0)
    torch.testing.assert_close(
        cache["hook_pos_embed"][0], hf.transformer.wpe(torch.arange(POS)), atol=0, rtol=0
    )


# --------------------------------------------------------------------------- failures


def _raises_fast(spec: str, exc: type[Exception] = LoadError) -> str:
    start = time.perf_counter()
    with pytest.raises(exc) as info:
        boot_bridge(spec)
    assert time.perf_counter() - start < 10
    message = str(info.value)
    assert "\n" not in message
    assert repr(spec) in message
    return message


def test_missing_path_raises_load_error(tmp_path: Path) -> None:
    message = _raises_fast(str(tmp_path / "no" / "such" / "model"))
    assert "not a local directory" in message


def test_bogus_hub_name_offline_raises_load_error() -> None:
    message = _raises_fast("interp-tests/definitely-not-a-model")
    assert "offline" in message and "HF_HUB_OFFLINE" in message and "cache" in message


def test_relative_missing_dir_offline_raises_load_error() -> None:
    _raises_fast("runs/not-here")


def test_non_hf_directory_raises_load_error(tmp_path: Path) -> None:
    (tmp_path / "weights.bin").write_bytes(b"")
    message = _raises_fast(str(tmp_path))
    assert "config.json" in message


def test_file_spec_raises_load_error(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    path.write_bytes(b"")
    _raises_fast(str(path))


def test_corrupt_checkpoint_raises_corrupt_file_error(tmp_path: Path, llama_dir: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(llama_dir, broken)
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    message = _raises_fast(str(broken), CorruptFileError)
    assert "corrupt" in message

    bad_json = tmp_path / "bad_json"
    shutil.copytree(llama_dir, bad_json)
    (bad_json / "config.json").write_text("{not json")
    _raises_fast(str(bad_json), CorruptFileError)


def test_cached_hub_name_boots_offline(
    tmp_path: Path, llama_dir: Path, monkeypatch: pytest.MonkeyPatch, tokens: torch.Tensor
) -> None:
    """A hub name in the local HF cache loads with the hub offline, without retries."""
    from huggingface_hub import constants

    repo = "interp-tests/tiny-llama"
    commit = "0" * 40
    root = tmp_path / "hub" / ("models--" + repo.replace("/", "--"))
    (root / "refs").mkdir(parents=True)
    (root / "refs" / "main").write_text(commit)
    shutil.copytree(llama_dir, root / "snapshots" / commit)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))

    offline_before = constants.HF_HUB_OFFLINE
    start = time.perf_counter()
    model = boot_bridge(repo)
    assert time.perf_counter() - start < 30
    assert constants.HF_HUB_OFFLINE == offline_before  # the forced-offline patch is undone
    with torch.no_grad():
        assert model(tokens).shape == (BATCH, POS, 300)
