"""Safe loading: files from someone else never run code, and bad files are refused in one line
naming the file (pickles, truncated safetensors, corrupt configs, configs that disagree with
their tensors, checkpoints that need remote code)."""

from __future__ import annotations

import json
import os
import pickle
import shutil
from pathlib import Path

import pytest
import torch
from hf_fixtures import save_tiny_gpt2
from safetensors.torch import load_file
from typer.testing import CliRunner

from cli.main import app
from interp import load_model
from interp.errors import CorruptFileError, LoadError
from interp.models import HookedTransformer
from interp.train.checkpoint import latest_checkpoint, load_weights, save_weights


class _Payload:
    """Unpickling this runs ``touch SENTINEL``: proof that code ran if the file appears."""

    def __init__(self, sentinel: Path) -> None:
        self.sentinel = sentinel

    def __reduce__(self):
        return (os.system, (f"touch {self.sentinel}",))


def _one_line(exc: BaseException) -> str:
    text = str(exc)
    assert "\n" not in text, text
    return text


@pytest.fixture(scope="module")
def gpt2_dir(tmp_path_factory) -> Path:
    return save_tiny_gpt2(tmp_path_factory.mktemp("hf") / "gpt2", n_layer=1, n_embd=16, n_head=2)


TRAIN = [
    "train", "--task", "copy", "-o", "length=4", "-o", "vocab=6", "--layers", "1",
    "--d-model", "16", "--heads", "2", "--d-mlp", "32", "--batch-size", "4",
    "--eval-every", "2", "--checkpoint-every", "2", "--warmup", "1", "--no-report",
]  # fmt: skip


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run") / "run"
    result = CliRunner().invoke(app, [*TRAIN, "--steps", "4", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


# ----------------------------------------------------------------------------- pickles
@pytest.mark.parametrize("name", ["w.pt", "w.bin", "w.pth", "w.ckpt", "w.pkl"])
def test_pickle_checkpoints_are_refused_without_being_opened(tmp_path, name) -> None:
    sentinel = tmp_path / "ran"
    with open(tmp_path / name, "wb") as f:
        pickle.dump({"w": _Payload(sentinel)}, f)
    with pytest.raises(LoadError, match="pickle") as info:
        load_weights(tmp_path / name)
    assert str(tmp_path / name) in _one_line(info.value)
    assert not sentinel.exists()


def test_a_pickle_posing_as_safetensors_is_refused(tmp_path, run_dir) -> None:
    run = _copy(run_dir, tmp_path / "run")
    sentinel = tmp_path / "ran"
    torch.save({"w": _Payload(sentinel)}, run / "model.safetensors")
    with pytest.raises(CorruptFileError) as info:
        load_model(run)
    assert str(run / "model.safetensors") in _one_line(info.value)
    assert not sentinel.exists()


def test_hf_pytorch_model_bin_is_read_weights_only(tmp_path, gpt2_dir, monkeypatch) -> None:
    ref = load_model(gpt2_dir)
    legit = _copy(gpt2_dir, tmp_path / "legit")
    torch.save(load_file(str(legit / "model.safetensors")), legit / "pytorch_model.bin")
    (legit / "model.safetensors").unlink()
    calls: list[dict] = []
    real_load = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    model = load_model(legit)
    assert calls and all(c.get("weights_only") is True for c in calls), calls
    for k, v in ref.state_dict().items():
        assert torch.equal(v, model.state_dict()[k]), k
    # a pickle that would run code is refused, naming the file; nothing ran
    sentinel = tmp_path / "ran"
    evil = _copy(legit, tmp_path / "evil")
    real_save = torch.save
    real_save({"transformer.wte.weight": _Payload(sentinel)}, evil / "pytorch_model.bin")
    with pytest.raises(CorruptFileError, match="weights_only") as info:
        load_model(evil)
    assert str(evil / "pytorch_model.bin") in _one_line(info.value)
    assert not sentinel.exists()


def test_checkpoints_needing_remote_code_are_refused(tmp_path, gpt2_dir) -> None:
    sentinel = tmp_path / "ran"
    code = (
        f"import pathlib\npathlib.Path({str(sentinel)!r}).touch()\n"
        "from transformers import PretrainedConfig\n"
        "class EvilConfig(PretrainedConfig):\n    model_type = 'evilnet'\n"
    )
    auto_map = {"AutoConfig": "evil.EvilConfig", "AutoModelForCausalLM": "evil.EvilLM"}
    custom = tmp_path / "custom"
    custom.mkdir()
    (custom / "evil.py").write_text(code)
    (custom / "config.json").write_text(
        json.dumps({"model_type": "evilnet", "architectures": ["EvilLM"], "auto_map": auto_map})
    )
    with pytest.raises(LoadError, match="trust_remote_code") as info:
        load_model(custom)
    _one_line(info.value)
    # a known architecture that also ships code: the code is ignored, the model loads
    known = _copy(gpt2_dir, tmp_path / "known")
    (known / "evil.py").write_text(code)
    config = json.loads((known / "config.json").read_text())
    (known / "config.json").write_text(json.dumps({**config, "auto_map": auto_map}))
    assert isinstance(load_model(known), HookedTransformer)
    assert not sentinel.exists()


# ----------------------------------------------------------------------------- corrupt files
def test_truncated_and_corrupt_files_are_refused_naming_the_file(tmp_path, run_dir, gpt2_dir):
    run = _copy(run_dir, tmp_path / "run")
    data = (run / "model.safetensors").read_bytes()
    (run / "model.safetensors").write_bytes(data[: len(data) - 7])
    with pytest.raises(CorruptFileError) as info:
        load_model(run)
    assert str(run / "model.safetensors") in _one_line(info.value)

    for i, text in enumerate(('{"kind": "train", "mod', "[1, 2, 3]\n", "\x00\xff garbage")):
        bad = _copy(run_dir, tmp_path / f"cfg{i}")
        (bad / "config.json").write_text(text, errors="surrogateescape")
        with pytest.raises(LoadError) as info:
            load_model(bad)
        assert "config.json" in _one_line(info.value), text

    hf = _copy(gpt2_dir, tmp_path / "hf")
    data = (hf / "model.safetensors").read_bytes()
    (hf / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptFileError) as info:
        load_model(hf)
    assert str(hf / "model.safetensors") in _one_line(info.value)


def test_resume_from_a_truncated_checkpoint_is_one_line_naming_it(tmp_path, run_dir) -> None:
    run = _copy(run_dir, tmp_path / "run")
    ckpt = latest_checkpoint(run)
    assert ckpt is not None
    target = ckpt.path / "optim.safetensors"
    target.write_bytes(target.read_bytes()[:50])
    result = CliRunner().invoke(app, _resume_args(run, steps=8))
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert result.exit_code == 2 and len(errors) == 1, result.output
    assert str(target) in " ".join(result.output.split())
    assert "Traceback" not in result.output


def _resume_args(run: Path, steps: int) -> list[str]:
    return [*TRAIN, "--steps", str(steps), "--out", str(run), "--resume"]


# ----------------------------------------------------------------------------- mismatches
def test_a_config_that_disagrees_with_its_tensors_is_refused_naming_the_mismatch(
    tmp_path, run_dir
) -> None:
    run = _copy(run_dir, tmp_path / "run")
    config = json.loads((run / "config.json").read_text())
    config["model"]["d_mlp"] = 48
    (run / "config.json").write_text(json.dumps(config))
    with pytest.raises(CorruptFileError, match=r"blocks\.0\.mlp\.\w+ has shape") as info:
        load_model(run)
    assert "48" in _one_line(info.value)
    config["model"].update(d_mlp=32, n_layers=2)
    (run / "config.json").write_text(json.dumps(config))
    with pytest.raises(CorruptFileError, match=r"missing blocks\.1\.") as info:
        load_model(run)
    _one_line(info.value)


def test_resume_from_a_checkpoint_of_another_shape_is_refused(tmp_path, run_dir) -> None:
    from interp.config import ModelConfig

    run = _copy(run_dir, tmp_path / "run")
    ckpt = latest_checkpoint(run)
    assert ckpt is not None
    cfg = json.loads((run / "config.json").read_text())["model"]
    wider = HookedTransformer(ModelConfig.from_dict({**cfg, "d_model": 24}), seed=0)
    save_weights(ckpt.path / "model.safetensors", wider.state_dict())
    result = CliRunner().invoke(app, _resume_args(run, steps=8))
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert result.exit_code == 2 and len(errors) == 1, result.output
    assert "has shape" in errors[0] and "the config expects" in errors[0]
