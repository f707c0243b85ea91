"""Every verdict earns its word: headlines guarded by their baseline, said first by the CLI and
on the report's first screen; incomplete runs flagged; header cards describe the data used."""

from __future__ import annotations

import json

from cli_helpers import invoke

from interp.experiments.headlines import collapse_headline, probe_headline, squash_headline
from interp.report import build_report
from interp.report.sections import load_run_view, run_meta
from interp.runs import RunDir


def _probe_results(top1, lo, bigram):
    return {
        "probes": {"future_lens": {"metrics": {"top1": {"value": top1, "lo": lo}}}},
        "baselines": {"bigram": {"top1": {"value": bigram}}},
        "layer_labels": ["embed", "block 1"],
        "horizons": [1, 2],
    }


def test_probe_headline_claims_the_future_only_above_the_bigram() -> None:
    below = _probe_results([[0.2, 0.05], [0.3, 0.08]], [[0.18, 0.04], [0.28, 0.07]], [0.25, 0.1])
    text = probe_headline(below)
    assert text.startswith("Future-token probes") and "Inconclusive beyond the next token" in text
    assert "k = 2: 0.080 (block 1) vs bigram 0.100" in text
    above = _probe_results([[0.2, 0.05], [0.3, 0.2]], [[0.18, 0.04], [0.28, 0.15]], [0.25, 0.1])
    assert "Beyond token statistics at k = 2" in probe_headline(above)
    # inside the interval is not enough: the lower end must clear the baseline
    close = _probe_results([[0.2, 0.05], [0.3, 0.12]], [[0.18, 0.04], [0.28, 0.09]], [0.25, 0.1])
    assert "Inconclusive" in probe_headline(close)


def _squash(first: float, last: float):
    share = {"first_quarter": first, "last_quarter_excl_last": last, "last_token": 0.1}
    return {
        "final_layer": "ln_final.hook_normalized",
        "prompts": {"p": {"shares": {"ln_final.hook_normalized": share}}},
    }


def test_squash_headline_needs_the_early_positions_to_lead() -> None:
    assert squash_headline(_squash(0.45, 0.15)).startswith("Over-squashing: ")
    flat = squash_headline(_squash(0.26, 0.24))
    assert flat.startswith("Inconclusive") and "0.26" in flat and "0.24" in flat


def _collapse(plain: dict, sep: dict | None = None):
    runs = [
        {"format": f, "variant": "plain", "collapse_length": {"L": n}} for f, n in plain.items()
    ]
    runs += [
        {"format": f, "variant": "separator", "collapse_length": {"L": n}}
        for f, n in (sep or {}).items()
    ]
    return {"final_layer": "L", "lengths": [1, 2, 64], "runs": runs}


def test_collapse_headline_says_what_collapsed_and_what_did_not() -> None:
    assert collapse_headline(_collapse({"float32": None})).startswith("No collapse")
    text = collapse_headline(
        _collapse({"float32": None, "bfloat16": 50}, {"float32": None, "bfloat16": None})
    )
    assert (
        text
        == "Collapse at L: bf16 from n = 50; fp32 not within n = 1..64; with separators: bf16 never."
    )
    same = collapse_headline(_collapse({"bfloat16": 50}, {"bfloat16": 40}))
    assert same.endswith("separators did not delay it.")


TRAIN = ["train", "--task", "copy", "-o", "length=4", "-o", "vocab=6", "--layers", "1",
         "--d-model", "16", "--heads", "2", "--d-mlp", "32", "--batch-size", "4", "--steps", "4",
         "--eval-every", "2", "--checkpoint-every", "2", "--warmup", "1", "--no-report"]  # fmt: skip


def test_the_cli_says_the_finding_first_and_the_report_lists_it(tmp_path) -> None:
    model = tmp_path / "model"
    assert invoke(*TRAIN, "--out", model).exit_code == 0
    result = invoke("squash", "--model", model, "--length", "6", "--out", tmp_path / "s")
    assert result.exit_code == 0, result.output
    headline = json.loads((tmp_path / "s" / "results.json").read_text())["headline"]
    assert headline and result.stdout.splitlines()[0] == headline  # stdout opens with it
    assert "needs ~" not in result.stdout and "needs ~" in result.stderr  # progress: stderr
    html = (tmp_path / "s" / "report.html").read_text()
    assert 'class="findings"' in html and headline.split(":")[0] in html


def test_an_incomplete_run_gets_a_banner_and_a_task_run_names_its_task(tmp_path) -> None:
    model = tmp_path / "model"
    assert invoke(*TRAIN, "--out", model).exit_code == 0
    meta = run_meta(load_run_view(model))
    assert meta["data"] == "task copy (length 4; vocab 6)"
    (model / "model.safetensors").unlink()  # as if killed before the end
    html = build_report(model).read_text()
    assert "Incomplete run: training stopped at step 4 of 4" in html
    done = RunDir.create(tmp_path / "p", {"kind": "probe"})
    assert "Incomplete run" in build_report(done.path).read_text()
