"""Nobody's files at risk: each test is an attack that broke main before the fix.

1. code in a run's tokenizer folder (``auto_map``) never runs, even with "y" on stdin;
2. ``--overwrite`` deletes only a folder interp created (its marker), never one that merely has
   a ``config.json``;
3. ``--overwrite`` never follows a planted ``PARENT/.interp-trash`` link;
4. a planted ``RUN/checkpoints`` link is neither written into nor pruned by ``--resume``;
5. a planted ``MODEL_RUN/analyses`` link is not written through by probe, collapse or squash;
6. ``interp report --out FILE`` never replaces an existing file without ``--overwrite``, and
   never writes anything but an ``.html`` file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import assert_one_line_error, invoke

from interp.errors import InterpError
from interp.runs import TRASH, RunDir
from interp.safefs import MARKER, Tree, UnsafePathError

TRAIN = [
    "train", "--task", "copy", "-o", "length=4", "-o", "vocab=6", "--layers", "1",
    "--d-model", "16", "--heads", "2", "--d-mlp", "32", "--batch-size", "4",
    "--eval-every", "2", "--checkpoint-every", "2", "--warmup", "1", "--no-report",
]  # fmt: skip


def _tree(root: Path) -> dict[str, bytes]:
    """Every file below ``root`` (links not followed) with its bytes: before/after comparisons."""
    out = {}
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            path = Path(dirpath) / name
            out[str(path.relative_to(root))] = b"" if path.is_symlink() else path.read_bytes()
    return out


@pytest.fixture(scope="module")
def text_run(tmp_path_factory) -> Path:
    """A text run with a byte tokenizer (a tokenizer/ folder the attack replaces)."""
    base = tmp_path_factory.mktemp("text")
    corpus = base / "corpus.txt"
    corpus.write_text("the quick brown fox jumps over the lazy dog\n" * 200)
    out = base / "run"
    result = invoke(
        "train", "--corpus", corpus, "--tokenizer", "byte", "--layers", "1", "--d-model", "16",
        "--heads", "2", "--d-mlp", "32", "--ctx", "16", "--batch-size", "4", "--steps", "2",
        "--eval-every", "2", "--checkpoint-every", "2", "--warmup", "1", "--no-report",
        "--out", out,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def task_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("task") / "run"
    result = invoke(*TRAIN, "--steps", "4", "--out", out)
    assert result.exit_code == 0, result.output
    return out


def _copy(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst, symlinks=True)
    return dst


# ----------------------------------------------------------------------------- 1. remote code
def _plant_remote_code_tokenizer(run: Path, sentinel: Path) -> None:
    tok = run / "tokenizer"
    for p in tok.iterdir():
        p.unlink()
    (tok / "evil.py").write_text(
        f"import pathlib\npathlib.Path({str(sentinel)!r}).touch()\n"
        "from transformers import PreTrainedTokenizer\n"
        "class EvilTokenizer(PreTrainedTokenizer):\n    pass\n"
    )
    (tok / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "tokenizer_class": "EvilTokenizer",
                "auto_map": {"AutoTokenizer": ["evil.EvilTokenizer", None]},
            }
        )
    )
    (tok / "tokenizer_meta.json").write_text(json.dumps({"kind": "hf", "vocab_size": 258}))


def test_code_in_a_run_tokenizer_never_runs_even_when_stdin_says_yes(tmp_path, text_run) -> None:
    run = _copy(text_run, tmp_path / "run")
    sentinel = tmp_path / "ran"
    _plant_remote_code_tokenizer(run, sentinel)
    # through the library, in a fresh process whose stdin answers "y" to any prompt
    code = (
        "import sys\nfrom interp import load_model\nfrom interp.errors import InterpError\n"
        f"try:\n    load_model({str(run)!r})\nexcept InterpError as e:\n    print('refused:', e)\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(Path(__file__).parents[1])}
    proc = subprocess.run(
        [sys.executable, "-c", code], input="y\n" * 20, capture_output=True, text=True, env=env,
        timeout=120,
    )  # fmt: skip
    assert not sentinel.exists(), proc.stdout + proc.stderr
    assert "refused:" in proc.stdout, proc.stdout + proc.stderr
    refused = [line for line in proc.stdout.splitlines() if line.startswith("refused:")]
    assert len(refused) == 1 and "tokenizer" in refused[0]
    assert "[y/N]" not in proc.stdout + proc.stderr  # no prompt was shown
    # and through the CLI (probe --model RUN): one line, nothing ran
    result = invoke("probe", "--model", run, "--out", tmp_path / "p")
    assert_one_line_error(result, "tokenizer")
    assert not sentinel.exists()
    assert not (tmp_path / "p").exists()


# ----------------------------------------------------------------------------- 2. overwrite
def test_overwrite_refuses_a_folder_interp_did_not_create(tmp_path) -> None:
    hf = tmp_path / "my-model"
    hf.mkdir()
    (hf / "config.json").write_text(json.dumps({"model_type": "gpt2", "kind": "train"}))
    (hf / "model.safetensors").write_bytes(b"precious")
    before = _tree(hf)
    result = invoke(*TRAIN, "--steps", "2", "--out", hf, "--overwrite")
    assert_one_line_error(result, "not a run directory interp created")
    assert _tree(hf) == before
    # the same through every command that takes --overwrite and creates a run
    for args in (
        ["collapse", "--dtype", "float32", "--lengths", "4"],
        ["squash", "--length", "4"],
    ):
        result = invoke(*args, "--out", hf, "--overwrite")
        assert_one_line_error(result, "not a run directory interp created")
        assert _tree(hf) == before


def test_overwrite_replaces_a_run_interp_created(tmp_path) -> None:
    out = tmp_path / "run"
    RunDir.create(out, {"kind": "train", "n": 1})
    (out / "old.txt").write_text("old")
    assert (out / MARKER).is_file()
    RunDir.create(out, {"kind": "train", "n": 2}, overwrite=True)
    assert not (out / "old.txt").exists()
    assert json.loads((out / "config.json").read_text())["n"] == 2


# ----------------------------------------------------------------------------- 3. trash link
def test_overwrite_never_follows_a_planted_trash_link(tmp_path) -> None:
    out = tmp_path / "run"
    RunDir.create(out, {"kind": "train"})
    exp = tmp_path / "expA"
    (exp / "run").mkdir(parents=True)
    (exp / "thesis.txt").write_text("four years")
    (exp / "run" / "thesis.txt").write_text("four years, draft")
    (tmp_path / TRASH).symlink_to(exp)
    before = _tree(exp)
    with pytest.raises(UnsafePathError, match="not a plain folder"):
        RunDir.create(out, {"kind": "train"}, overwrite=True)
    assert _tree(exp) == before
    result = invoke(*TRAIN, "--steps", "2", "--out", out, "--overwrite")
    assert_one_line_error(result, "interp-trash")
    assert _tree(exp) == before and (out / "config.json").is_file()


# ----------------------------------------------------------------------------- 4. checkpoints
def test_resume_neither_writes_into_nor_prunes_a_planted_checkpoints_link(tmp_path, task_run):
    run = _copy(task_run, tmp_path / "run")
    elsewhere = tmp_path / "elsewhere"
    (run / "checkpoints").rename(elsewhere)
    for i in range(3):  # what pruning would delete
        (elsewhere / f"step_000000{i}").mkdir(exist_ok=True)
        (elsewhere / f"step_000000{i}" / "notes.txt").write_text("keep me")
    (run / "checkpoints").symlink_to(elsewhere)
    before = _tree(elsewhere)
    result = invoke(*TRAIN, "--steps", "8", "--out", run, "--resume")
    assert_one_line_error(result, "symbolic link")
    assert _tree(elsewhere) == before


def test_checkpoint_writes_refuse_a_link_even_when_called_directly(tmp_path) -> None:
    import torch

    from interp.train.checkpoint import save_checkpoint

    run = tmp_path / "run"
    run.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (run / "checkpoints").symlink_to(elsewhere)
    model = torch.nn.Linear(2, 2)
    opt = torch.optim.AdamW(model.parameters())
    with pytest.raises(UnsafePathError):
        save_checkpoint(run, 1, model, opt)
    assert list(elsewhere.iterdir()) == []


# ----------------------------------------------------------------------------- 5. analyses
@pytest.mark.parametrize(
    "args",
    [
        ["squash", "--length", "4"],
        ["collapse", "--dtype", "float32", "--lengths", "4"],
        ["probe", "--horizon", "1", "--layers", "0", "--tokens", "512"],
    ],
    ids=["squash", "collapse", "probe"],
)
def test_analyses_never_write_through_a_planted_link(tmp_path, text_run, args) -> None:
    run = _copy(text_run, tmp_path / "model")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep.txt").write_text("mine")
    (run / "analyses").symlink_to(elsewhere)
    before = _tree(elsewhere)
    result = invoke(*args, "--model", run, "--out", tmp_path / "out")
    assert_one_line_error(result, "symbolic link")
    assert _tree(elsewhere) == before
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------- 6. report --out
def test_report_out_never_replaces_an_existing_file_without_overwrite(tmp_path, task_run):
    run = _copy(task_run, tmp_path / "run")
    config = (run / "config.json").read_bytes()
    result = invoke("report", run, "--out", run / "config.json")
    assert_one_line_error(result, "html")
    result = invoke("report", run, "--out", run / "config.json", "--overwrite")
    assert_one_line_error(result, "html")
    assert (run / "config.json").read_bytes() == config
    page = tmp_path / "page.html"
    page.write_text("someone's page")
    result = invoke("report", run, "--out", page)
    assert_one_line_error(result, "exists.*--overwrite")
    assert page.read_text() == "someone's page"
    result = invoke("report", run, "--out", page, "--overwrite")
    assert result.exit_code == 0, result.output
    assert "<html" in page.read_text()


def test_report_is_written_only_into_interp_runs(tmp_path) -> None:
    hf = tmp_path / "hf"
    hf.mkdir()
    (hf / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    result = invoke("report", hf)
    assert_one_line_error(result, "not an interp run")
    assert sorted(p.name for p in hf.iterdir()) == ["config.json"]


# ----------------------------------------------------------------------------- the layer itself
def test_tree_refuses_links_anywhere_below_its_root(tmp_path) -> None:
    root = tmp_path / "root"
    (root / "a").mkdir(parents=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (root / "a" / "b").symlink_to(elsewhere)
    tree = Tree(root)
    for rel in ("a/b", "a/b/c.json", "a/b/c/d.json"):
        with pytest.raises(UnsafePathError):
            tree.write_json(rel, {})
    with pytest.raises(UnsafePathError):
        tree.path("../x")
    with pytest.raises(UnsafePathError):
        tree.path("/etc/passwd")
    tree.remove("a/b")  # a link is unlinked, its target untouched
    assert elsewhere.is_dir() and not (root / "a" / "b").exists()
    tree.write_json("a/b/c.json", {"ok": 1})
    assert json.loads((root / "a" / "b" / "c.json").read_text()) == {"ok": 1}
    assert isinstance(UnsafePathError("x"), InterpError)
