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


# --------------------------------------------------------------------------- safetensors import
def _logits_close(model, path, tokens) -> None:
    hf = GPT2LMHeadModel.from_pretrained(path).eval()
    with torch.no_grad():
        assert (model(tokens) - hf(tokens).logits).abs().max().item() <= 1e-4


def test_gpt2_import_reads_safetensors_without_a_transformers_model(tmp_path, monkeypatch) -> None:
    """The weights go straight from model.safetensors into the hooked modules: no
    GPT2LMHeadModel is built, every parameter owns its memory (no file mapping, no storage
    shared between parameters, so it saves as safetensors again)."""
    import transformers
    from safetensors.torch import save_file

    path = save_tiny_gpt2(tmp_path / "gpt2")

    def refuse(*args, **kwargs):
        raise AssertionError("GPT2LMHeadModel.from_pretrained was called")

    monkeypatch.setattr(transformers.GPT2LMHeadModel, "from_pretrained", refuse)
    model = load_model(path)
    monkeypatch.undo()
    storages = [p.untyped_storage() for p in model.parameters()]
    for p, s in zip(model.parameters(), storages, strict=True):
        assert s.nbytes() == p.numel() * p.element_size() and p.is_contiguous()
    assert len({s.data_ptr() for s in storages}) == len(storages)
    save_file(dict(model.state_dict()), str(tmp_path / "again.safetensors"))
    tokens = torch.randint(0, 300, (2, 16), generator=torch.Generator().manual_seed(1))
    _logits_close(model, path, tokens)


@pytest.mark.parametrize("variant", ["sharded", "float16", "untied"])
def test_gpt2_import_variants_match_transformers(tmp_path, variant) -> None:
    from transformers import GPT2LMHeadModel as HF

    src = save_tiny_gpt2(tmp_path / "src", tie_word_embeddings=variant != "untied")
    path = tmp_path / variant
    hf = HF.from_pretrained(src)
    if variant == "untied":
        with torch.no_grad():  # a head of its own, not the embedding
            hf.lm_head.weight.copy_(torch.randn_like(hf.lm_head.weight) * 0.1)
    if variant == "float16":
        hf = hf.half()
    hf.save_pretrained(path, max_shard_size="40KB" if variant == "sharded" else "5GB")
    for f in src.iterdir():
        if f.name.startswith("tokenizer") or f.name.startswith("special"):
            (path / f.name).write_bytes(f.read_bytes())
    if variant == "sharded":
        assert (path / "model.safetensors.index.json").is_file()
    model = load_model(path)
    ref = HF.from_pretrained(path, dtype=torch.float32).eval()
    tokens = torch.randint(0, 300, (2, 16), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert (model(tokens) - ref(tokens).logits).abs().max().item() <= 1e-4


def test_a_shard_index_naming_a_file_elsewhere_is_refused(tmp_path) -> None:
    import json

    path = save_tiny_gpt2(tmp_path / "gpt2")
    (path / "model.safetensors").rename(tmp_path / "outside.safetensors")
    (path / "model.safetensors.index.json").write_text(
        json.dumps({"weight_map": {"wte.weight": "../outside.safetensors"}})
    )
    with pytest.raises(LoadError, match="not a file beside it") as info:
        load_model(path)
    assert "\n" not in str(info.value)


def test_gpt2_import_holds_one_copy_of_the_weights(tmp_path) -> None:
    """Peak resident memory while importing is about one model (the transformers route held
    two: its model and ours): measured in a fresh process, beside the model's own size."""
    import subprocess
    import sys

    path = save_tiny_gpt2(tmp_path / "gpt2", n_layer=2, n_embd=384, n_head=4, vocab_size=30000)
    script = (
        "import torch, interp, transformers\n"
        "from interp.models.loading import load_model\n"
        "from transformers import AutoTokenizer, AutoConfig\n"
        "def hwm():\n"
        "    return [int(l.split()[1]) * 1024 for l in open('/proc/self/status')"
        " if l.startswith('VmHWM')][0]\n"
        f"AutoTokenizer.from_pretrained({str(path)!r})\n"  # its one-time costs before the baseline
        "before = hwm()\n"
        f"m = load_model({str(path)!r})\n"
        "size = sum(p.numel() * p.element_size() for p in m.parameters())\n"
        "print(before, hwm(), size)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-2000:]
    before, after, size = map(int, out.stdout.split()[-3:])
    growth = after - before
    assert growth <= 1.35 * size, (growth / 2**20, size / 2**20)


# --------------------------------------------------------------------------- unreachable hub
def _hanging_endpoint():
    """A local port that accepts connections and never answers (a black-holed network)."""
    import socket

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    return server, f"http://127.0.0.1:{server.getsockname()[1]}"


def _closed_endpoint() -> str:
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now: connection refused
    return f"http://127.0.0.1:{port}"


@pytest.mark.parametrize("offline", ["1", None])
@pytest.mark.parametrize("endpoint", ["closed", "hanging"])
def test_hub_name_without_network_fails_fast_in_one_line(monkeypatch, offline, endpoint) -> None:
    """No network: one line within 3 s whether or not HF_HUB_OFFLINE is set (huggingface_hub
    alone retries for ~25 s).  The hub is simulated: a closed local port (refused at once) and
    one that accepts and never answers."""
    server = None
    if endpoint == "hanging":
        server, url = _hanging_endpoint()
    else:
        url = _closed_endpoint()
    monkeypatch.setenv("HF_ENDPOINT", url)
    if offline is None:
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    try:
        t0 = time.perf_counter()
        with pytest.raises(LoadError, match="no-such-model-xyz") as info:
            load_model("interp-tests/no-such-model-xyz")
        took = time.perf_counter() - t0
    finally:
        if server is not None:
            server.close()
    assert took <= 3.0, took
    assert "\n" not in str(info.value)
    if offline is None:
        assert "unreachable" in str(info.value) and url in str(info.value)


def test_cached_gpt2_hub_name_loads_from_the_cache_when_the_hub_is_unreachable(
    tmp_path, monkeypatch
) -> None:
    import shutil

    from huggingface_hub import constants

    repo, commit = "interp-tests/tiny-gpt2", "1" * 40
    root = tmp_path / "hub" / ("models--" + repo.replace("/", "--"))
    (root / "refs").mkdir(parents=True)
    (root / "refs" / "main").write_text(commit)
    shutil.copytree(save_tiny_gpt2(tmp_path / "src"), root / "snapshots" / commit)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_ENDPOINT", _closed_endpoint())
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    t0 = time.perf_counter()
    model = load_model(repo)
    assert time.perf_counter() - t0 < 30
    assert isinstance(model, HookedTransformer)


def test_no_loading_bar_leaks_onto_stderr(tmp_path, capfd):
    """transformers' "Loading weights" bar (a bridge load, a pickled GPT-2) stays hidden."""
    from hf_fixtures import save_tiny_gpt2, save_tiny_llama

    import interp

    llama, gpt2 = save_tiny_llama(tmp_path / "llama"), save_tiny_gpt2(tmp_path / "gpt2")
    capfd.readouterr()  # the fixtures' own "Writing model shards" bars
    interp.load_model(str(llama))
    interp.load_model(str(gpt2))
    err = capfd.readouterr().err
    assert "Loading weights" not in err and "it/s" not in err, err[-500:]
