"""``interp export RUN --format hf OUT`` and :mod:`interp.models.export`.

Round trips: an interp model with large random weights (norm gains off 1, biases off 0, so a
dropped transpose or bias cannot hide) is exported, then loaded by ``transformers`` and by
``TransformerBridge.boot_transformers``; both give interp's logits within 1e-4, and the exported
tokenizer encodes text as the model's own ``to_tokens`` does.  Architectures without an exact
form are refused with one line, before anything is written.
"""

from __future__ import annotations

import json
import os

import pytest
import torch
from cli_helpers import assert_one_line_error, invoke
from helpers import tiny_config
from transformers import AutoModelForCausalLM, AutoTokenizer

from interp.data import ByteTokenizer, train_bpe
from interp.models import HookedTransformer
from interp.models.bridge import boot_bridge
from interp.models.export import ExportError, hf_architecture, to_hf, write_hf
from interp.safefs import MARKER
from interp.tasks import build_task

TOL = 1e-4
TEXT = "def forward(self, x): return x  # héllo"


def randomize(model: HookedTransformer, seed: int = 0, scale: float = 0.3) -> HookedTransformer:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            base = 1.0 if name.endswith(".w") else 0.0
            p.copy_(base + scale * torch.randn(p.shape, generator=g))
    return model.eval()


def _bpe():
    return train_bpe([TEXT * 3, "the model layer head token attention " * 20], 300)


CASES = {
    # name: (ModelConfig overrides, text codec, expected architecture)
    "gpt2-absolute": (dict(positional="absolute", act_fn="gelu_new"), "byte", "GPT2LMHeadModel"),
    "gpt2-sinusoidal-tied": (
        dict(positional="sinusoidal", tied_embeddings=True, act_fn="relu"),
        "bpe",
        "GPT2LMHeadModel",
    ),
    "gpt2-nope-task": (dict(positional="none", act_fn="gelu"), "task", "GPT2LMHeadModel"),
    "neox-rope": (dict(positional="rope", act_fn="gelu_new"), "bpe", "GPTNeoXForCausalLM"),
    "neox-partial-rope": (
        dict(positional="rope", positional_options={"rotary_dim": 4, "base": 500.0}),
        "byte",
        "GPTNeoXForCausalLM",
    ),
    "llama-rope-rmsnorm": (
        dict(positional="rope", normalization="rmsnorm", act_fn="silu", d_head=12),
        "byte",
        "LlamaForCausalLM",
    ),
    "llama-tied": (
        dict(positional="rope", normalization="rmsnorm", tied_embeddings=True, use_bias=False),
        "bpe",
        "LlamaForCausalLM",
    ),
}


def _model(overrides: dict, codec: str) -> HookedTransformer:
    base = dict(n_layers=2, d_model=32, n_heads=4, d_mlp=48, n_ctx=24, unembed_bias=False)
    if codec == "task":
        task = build_task("copy", {"length": 5, "vocab": 8})
        model = HookedTransformer(tiny_config(**base, d_vocab=10, **overrides))
        model.task = task
    else:
        tokenizer = ByteTokenizer() if codec == "byte" else _bpe()
        model = HookedTransformer(tiny_config(**base, d_vocab=tokenizer.vocab_size, **overrides))
        model.tokenizer = tokenizer
    return randomize(model)


@pytest.mark.parametrize("name", list(CASES))
def test_round_trip_through_transformers_and_the_bridge(tmp_path, name) -> None:
    overrides, codec, arch = CASES[name]
    model = _model(overrides, codec)
    out = tmp_path / "hf"
    result = write_hf(model, out)
    assert result.architecture == arch
    assert sorted(os.listdir(out)) == sorted([MARKER, *result.files])
    assert json.loads((out / "config.json").read_text())["architectures"] == [arch]

    tokens = torch.randint(
        0, model.cfg.d_vocab, (3, 24), generator=torch.Generator().manual_seed(1)
    )
    hf = AutoModelForCausalLM.from_pretrained(out).eval()
    bridge = boot_bridge(out)
    with torch.no_grad():
        ours = model(tokens)
        diffs = {
            "transformers": float((ours - hf(tokens).logits).abs().max()),
            "bridge": float((ours - bridge(tokens)).abs().max()),
        }
    print(f"{name}: {arch}, max |logit| {float(ours.abs().max()):.1f}, max diff {diffs}")
    assert max(diffs.values()) <= TOL, diffs

    tokenizer = AutoTokenizer.from_pretrained(out)
    text = "<bos> 3 1 4 <sep> 3" if codec == "task" else TEXT
    expected = model.to_tokens(text, prepend_bos=False, truncate=False)[0].tolist()
    assert tokenizer(text)["input_ids"] == expected
    assert tokenizer.decode(expected) == model.to_string(expected)


def test_unembedding_bias_in_the_span_of_W_U_is_folded(tmp_path) -> None:
    """A copy-task model (d_vocab 10 < d_model 32) with a trained b_U exports exactly."""
    model = HookedTransformer(tiny_config(d_model=32, n_heads=4, d_vocab=10, n_ctx=12))
    model.task = build_task("copy", {"length": 5, "vocab": 8})
    randomize(model)
    assert model.unembed.b_U.abs().min() > 0
    export = to_hf(model)
    assert export.max_logit_diff <= TOL and "b_U folded" in export.notes[0]
    result = write_hf(model, tmp_path / "hf")
    hf = AutoModelForCausalLM.from_pretrained(result.path)
    tokens = torch.randint(0, 10, (2, 12))
    with torch.no_grad():
        assert (model(tokens) - hf(tokens).logits).abs().max() <= TOL


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        (dict(positional="cope"), "CoPE"),
        (dict(positional="alibi"), "ALiBi"),
        (dict(input_kind="vector", d_input=2, d_vocab=1), "vectors"),
        (dict(normalization="none"), "no normalisation"),
        (dict(d_mlp=0), "attention-only"),
        (dict(normalization="rmsnorm", positional="absolute"), "RMSNorm with positional"),
        (
            dict(normalization="rmsnorm", positional_options={"rotary_dim": 4}),
            "Llama rotates whole heads",
        ),
        (dict(d_head=4), "n_heads \\* d_head"),
        (dict(d_model=8, n_heads=2, d_vocab=258), "not in the span of W_U"),
        (dict(normalization="rmsnorm"), "Llama has neither b_U"),
    ],
)
def test_what_does_not_map_is_refused_in_one_line(tmp_path, overrides, fragment) -> None:
    model = randomize(HookedTransformer(tiny_config(**overrides)))
    with pytest.raises(ExportError, match=fragment) as info:
        write_hf(model, tmp_path / "hf")
    assert "\n" not in str(info.value)
    assert not (tmp_path / "hf").exists()  # nothing written


def test_a_model_without_text_exports_ids_as_words(tmp_path) -> None:
    model = randomize(HookedTransformer(tiny_config(d_model=32, n_heads=4, unembed_bias=False)))
    result = write_hf(model, tmp_path / "hf")
    assert "token i as 'i'" in result.notes[0]
    assert AutoTokenizer.from_pretrained(result.path)("3 19 0")["input_ids"] == [3, 19, 0]
    bridge = boot_bridge(result.path)
    tokens = torch.randint(0, 20, (2, 12))
    with torch.no_grad():
        assert (model(tokens) - bridge(tokens)).abs().max() <= TOL


def test_architecture_is_chosen_from_the_config() -> None:
    assert hf_architecture(tiny_config(positional="absolute")) == "GPT2LMHeadModel"
    assert hf_architecture(tiny_config(positional="rope")) == "GPTNeoXForCausalLM"
    assert hf_architecture(tiny_config(normalization="rmsnorm")) == "LlamaForCausalLM"


@pytest.fixture(scope="module")
def text_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "run"
    result = invoke(
        "train", "--corpus", "builtin:prose", "--max-chars", 20000, "--tokenizer", "byte",
        "--layers", 1, "--d-model", 16, "--heads", 2, "--d-mlp", 32, "--ctx", 16, "--pe",
        "absolute", "--act", "gelu_new", "--tied", "--no-unembed-bias", "--steps", 3,
        "--batch-size", 4, "--out", out, "--no-report",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return out


def test_cli_export_and_its_refusals(tmp_path, text_run) -> None:
    import interp

    out = tmp_path / "hf"
    result = invoke("export", text_run, "--format", "hf", out)
    assert result.exit_code == 0, result.output
    assert "as GPT2LMHeadModel" in result.output
    model = interp.load_model(text_run)
    hf = AutoModelForCausalLM.from_pretrained(out)
    tokens = model.to_tokens("Return the value of x.")
    with torch.no_grad():
        assert (model(tokens) - hf(tokens).logits).abs().max() <= TOL
    assert interp.load_model(out).config.positional == "absolute"  # and interp reads it back

    assert_one_line_error(invoke("export", text_run, out), "not empty; pass --overwrite")
    assert invoke("export", text_run, out, "--overwrite").exit_code == 0  # an earlier export
    foreign = tmp_path / "notes"
    foreign.mkdir()
    (foreign / "thesis.txt").write_text("mine")
    assert_one_line_error(invoke("export", text_run, foreign, "--overwrite"), "no .interp-run")
    assert (foreign / "thesis.txt").read_text() == "mine"
    assert_one_line_error(invoke("export", text_run, text_run / "hf"), "overlaps the run")
    assert_one_line_error(invoke("export", text_run, tmp_path / "x", "--format", "gguf"), "gguf")
    assert_one_line_error(invoke("export", tmp_path / "nope", tmp_path / "y"), "not an interp run")
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_cli_export_refuses_a_planted_link(tmp_path, text_run) -> None:
    out = tmp_path / "hf"
    assert invoke("export", text_run, out).exit_code == 0
    victim = tmp_path / "victim.bin"
    victim.write_bytes(b"keep")
    (out / "model.safetensors").unlink()
    (out / "model.safetensors").symlink_to(victim)
    assert_one_line_error(invoke("export", text_run, out, "--overwrite"), "symbolic link")
    assert victim.read_bytes() == b"keep"


def test_cli_refuses_a_model_without_an_exact_form(tmp_path) -> None:
    run = tmp_path / "run"
    result = invoke(
        "train", "--task", "copy", "-o", "length=3", "--layers", 1, "--d-model", 16, "--heads", 2,
        "--d-mlp", 16, "--pe", "alibi", "--steps", 2, "--out", run, "--no-report",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert_one_line_error(invoke("export", run, tmp_path / "hf"), "ALiBi")
    assert not (tmp_path / "hf").exists()
