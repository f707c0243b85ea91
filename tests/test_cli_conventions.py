"""A CLI that behaves like one: results on stdout (``--json``: one JSON document and nothing
else), progress and notes on stderr, ``interp --version``."""

from __future__ import annotations

import json

from cli_helpers import invoke

from interp.version import __version__

TRAIN = ["train", "--corpus", "builtin:prose", "--max-chars", "20000", "--tokenizer", "byte",
         "--ctx", "64", "--layers", "1", "--d-model", "16", "--heads", "2", "--d-mlp", "32",
         "--batch-size", "4", "--steps", "2", "--eval-every", "2", "--checkpoint-every", "2",
         "--warmup", "1", "--no-report"]  # fmt: skip


def test_version() -> None:
    result = invoke("--version")
    assert result.exit_code == 0 and result.stdout.strip() == f"interp {__version__}"


def test_json_is_the_only_thing_on_stdout(tmp_path) -> None:
    model = tmp_path / "model"
    assert invoke(*TRAIN, "--out", model).exit_code == 0
    for args in (
        ["collapse", "--dtypes", "float32", "--lengths", "4", "--prompt", ""],
        ["squash", "--length", "5"],
        ["probe", "--horizon", "1", "--layers", "0", "--tokens", "512"],
    ):
        out = tmp_path / args[0]
        result = invoke(*args, "--model", model, "--out", out, "--json")
        assert result.exit_code == 0, result.output
        doc = json.loads(result.stdout)  # the whole of stdout parses
        assert doc["kind"] == args[0] and doc["run"] == str(out) and doc["headline"]
        assert doc == {**json.loads((out / "results.json").read_text()), "run": str(out),
                       "report": str(out / "report.html"),
                       "model_report": str(model / "report.html")}  # fmt: skip
        assert "needs ~" in result.stderr


def test_resume_says_where_it_resumes_and_the_plain_progress_shows_the_loss(tmp_path) -> None:
    """#19: ``--resume`` says "resuming from step N" and the bar starts there; the training
    progress (plain lines without a terminal) shows the loss."""
    run = tmp_path / "run"
    assert invoke(*TRAIN, "--out", run).exit_code == 0  # 2 steps
    longer = list(TRAIN)
    longer[longer.index("--steps") + 1] = "4"
    result = invoke(*longer, "--out", run, "--resume")
    assert result.exit_code == 0, result.output
    assert "resuming from step 2 of 4" in result.stderr
    last = [line for line in result.stderr.splitlines() if "4/4" in line]
    assert last and "loss " in last[-1], result.stderr
    assert "resuming" not in result.stdout  # a note, not a result
