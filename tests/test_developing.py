"""DEVELOPING.md's worked examples hold: each block is written out and imported as its one-line
registration would import it, then used (a model with the new encoding, a training run on the
new task, the new analysis through ``execute`` with its report section, the new command through
the CLI); and each example touches the number of files it says (2, 2, 3, 2)."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path

import pytest
import torch
from cli_helpers import invoke

ROOT = Path(__file__).parents[1]
DOC = (ROOT / "DEVELOPING.md").read_text()
SECTION = DOC.split("## Worked examples", 1)[1].split("\n## ", 1)[0]
_BLOCK = re.compile(r"```(python|diff)\n(.*?)```", re.S)


def _examples() -> dict[str, dict[str, object]]:
    """``{"a": {"title": ..., "files": {path: code}, "edits": [diff, ...]}, ...}``."""
    out = {}
    for part in SECTION.split("\n### (")[1:]:
        letter, title = part[0], part.split("\n", 1)[0]
        files, edits = {}, []
        for kind, body in _BLOCK.findall(part):
            if kind == "python":
                first = body.splitlines()[0]
                assert first.startswith("# "), first
                files[first[2:].strip()] = body
            else:
                edits.append(body)
        out[letter] = {"title": title, "files": files, "edits": edits}
    return out


EXAMPLES = _examples()
CLAIMED = {"a": 2, "b": 2, "c": 3, "d": 2}


def test_each_example_touches_the_files_it_claims() -> None:
    assert sorted(EXAMPLES) == sorted(CLAIMED)
    for letter, claimed in CLAIMED.items():
        ex = EXAMPLES[letter]
        assert f": {claimed} files" in str(ex["title"]), ex["title"]
        touched = len(ex["files"]) + len(ex["edits"])  # new files + one-line list edits
        assert touched == claimed, (letter, sorted(ex["files"]), len(ex["edits"]))
        for path in ex["files"]:
            assert not (ROOT / path).exists(), f"{path} is an example, not a real module"


def _module_name(path: str) -> str:
    return path.removesuffix(".py").replace("/", ".")


@pytest.fixture
def installed(tmp_path, monkeypatch):
    """Import every example file under its real module name (as the registration line would),
    then undo every registration, so the rest of the suite never sees them."""
    from cli.app import app
    from interp.experiments import base as experiments
    from interp.models.positional import base as positional
    from interp.report import sections
    from interp.tasks import base as tasks

    registries = [
        positional._REGISTRY,
        tasks._TASKS,
        experiments._REGISTRY,
        sections._REGISTRY,
        sections._RESULTS_BUILDERS,
    ]
    before = [dict(r) for r in registries]
    commands = list(app.registered_commands)
    modules = []
    for letter in sorted(EXAMPLES):
        for path, code in EXAMPLES[letter]["files"].items():
            file = tmp_path / path
            file.parent.mkdir(parents=True, exist_ok=True)
            file.write_text(str(code))
            name = _module_name(path)
            spec = importlib.util.spec_from_file_location(name, file)
            module = importlib.util.module_from_spec(spec)
            monkeypatch.setitem(sys.modules, name, module)
            spec.loader.exec_module(module)
            modules.append(name)
    try:
        yield modules
    finally:
        for registry, old in zip(registries, before, strict=True):
            registry.clear()
            registry.update(old)
        app.registered_commands[:] = commands


def test_the_positional_encoding_masks_distant_keys(installed) -> None:
    from helpers import tiny_config

    from interp.models import HookedTransformer, check_model_config
    from interp.models.positional import positional_names

    assert "window" in positional_names()
    config = tiny_config(positional="window", positional_options={"width": 2})
    check_model_config(config)
    model = HookedTransformer(config, seed=0).eval()
    tokens = torch.randint(0, config.d_vocab, (2, config.n_ctx))
    _, cache = model.run_with_cache(tokens)
    pattern = cache["blocks.1.attn.hook_pattern"]  # [batch head query key]
    q, k = torch.meshgrid(torch.arange(config.n_ctx), torch.arange(config.n_ctx), indexing="ij")
    assert torch.all(pattern[..., (q - k) >= 2] == 0)  # beyond the window
    assert torch.all(pattern[..., (q - k == 1)] > 0)  # inside it
    assert torch.allclose(pattern.sum(-1), torch.ones(()))


def test_task_analysis_and_command_run_end_to_end(installed, tmp_path) -> None:
    from interp.experiments import execute
    from interp.tasks import build_task

    task = build_task("reverse", {"length": 3, "vocab": 5})
    batch = task.sample(4, torch.Generator().manual_seed(0))
    assert torch.equal(batch.inputs[:, 4:], batch.inputs[:, :3].flip(1))
    run = tmp_path / "model"
    result = invoke("train", "--task", "reverse", "-o", "length=3", "--pe", "window",
                    "--pe-option", "width=3", "--layers", "1", "--d-model", "16", "--heads",
                    "2", "--steps", "2", "--out", run)  # fmt: skip
    assert result.exit_code == 0, result.output

    from interp.experiments.attention_entropy import EntropyRun

    outcome = execute("attention-entropy", EntropyRun(model=str(run), sequences=3), tmp_path / "e")
    entropy = outcome.results.entropy
    assert len(entropy) == 1 and len(entropy[0]) == 2
    assert all(0 <= h <= torch.log(torch.tensor(3.0)) + 1e-5 for h in entropy[0])  # 3 keys at most
    assert "Attention entropy by head" in (tmp_path / "e" / "report.html").read_text()
    assert outcome.results.figures(), "the section's heatmap in a notebook"
    (copy,) = (run / "analyses" / "attention-entropy").glob("*/results.json")  # one per run
    assert json.loads(copy.read_text())["entropy"] == entropy

    result = invoke("attention-entropy", "--model", run, "--sequences", "3", "--json", "--out",
                    tmp_path / "from-cli")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["entropy"] == entropy
