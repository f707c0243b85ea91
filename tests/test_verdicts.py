"""Every verdict earns its word: headlines guarded by their baseline, said first by the CLI and
on the report's first screen; incomplete runs flagged; header cards describe the data used."""

from __future__ import annotations

import json

import pytest
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


# ----------------------------------------------------- a run made to fail is never a finding
TINY_MODEL = ["--layers", "1", "--d-model", "8", "--heads", "1", "--d-mlp", "0"]
# kind -> (the command of a run that cannot have learned anything, what its headline must say)
FAILING_RUNS = {
    "precache": (["precache", "--task", "precache", "-o", "length=8", *TINY_MODEL, "--steps",
                  "2", "--batch-size", "2", "--eval-every", "2", "--seeds", "0,"], "inconclusive"),
    "grok": (["grok", "--p", "5", "--steps", "2", "--log-every", "1", "--no-report"],
             "Inconclusive: the training set was not fitted"),
    "grok-sweep": (["grok", "sweep", "--p", "5", "--widths", "4", "--weight-decays", "0",
                    "--train-fractions", "0.5", "--seeds", "0,", "--steps", "2", "--log-every",
                    "1", "--no-report"], "Inconclusive: no run fitted its training set"),
    "count-sweep": (["count", "sweep", "--d", "4", "--m", "2,8", "--steps", "1", "--layers", "1",
                     "--heads", "1", "--eval-samples", "16"], "Counting sweep inconclusive"),
    # the construction with an attention too soft to count (beta 0.01 averages everything)
    "count-construct": (["count", "construct", "--d", "4", "--m", "4", "--beta", "0.01",
                         "--samples", "32"], "inconclusive: the construction should be exact"),
    "pe-bench": (["pe-bench", "--task", "flipflop", "-o", "length=4", "--pe", "rope", "--seeds",
                  "0", "--steps", "1", "--batch-size", "2", *TINY_MODEL, "--eval-sequences", "4",
                  "--no-report"], "Inconclusive: no encoding learned flipflop"),
    "probe": (["probe", "--model", "MODEL", "--horizon", "2", "--tokens", "512", "--no-report"],
              "Inconclusive: no layer beats the bigram baseline at k = 1, 2"),
    # an untrained model within 4 lengths in fp32: nothing collapses, and the headline says so
    "collapse": (["collapse", "--model", "MODEL", "--dtypes", "float32", "--lengths", "4",
                  "--prompt", "", "--no-report"], "No collapse"),
    # two positions: no early quarter to lead the late one
    "squash": (["squash", "--model", "MODEL", "--prompts", "copy-first,copy-last", "--length", "2",
                "--no-report"],
               "Inconclusive: no over-squashing signal"),
}  # fmt: skip
NO_VERDICT = {
    "train": "trains one model and reports its losses; it claims no finding",
    "reproduce": "each claim is judged pass/fail beside the paper's number (its parts' "
    "headlines are the experiments' above); a reproduction made to fail trains for minutes",
    "demo": "the tour states its parts' own headlines (each part is an experiment above, with "
    "its failing run); tests/test_demo.py checks each sentence of a tiny tour",
}


def test_every_experiment_is_covered_by_a_failing_run_or_says_why_not() -> None:
    from interp.experiments.registry import experiment_kinds

    assert set(FAILING_RUNS) | set(NO_VERDICT) == set(experiment_kinds())
    assert not set(FAILING_RUNS) & set(NO_VERDICT)


@pytest.fixture(scope="module")
def untrained(tmp_path_factory):
    """A model trained for one step: it has learned nothing a verdict could rest on."""
    path = tmp_path_factory.mktemp("untrained") / "model"
    args = ["train", "--corpus", "builtin:prose", "--max-chars", "20000", "--tokenizer", "byte",
            "--ctx", "32", *TINY_MODEL[:-1], "16", "--steps", "1", "--eval-every", "1",
            "--checkpoint-every", "1", "--batch-size", "2", "--warmup", "0", "--no-report"]  # fmt: skip
    assert invoke(*args, "--out", path).exit_code == 0
    return path


@pytest.mark.parametrize("kind", sorted(FAILING_RUNS))
def test_a_run_made_to_fail_is_inconclusive(kind, tmp_path, request) -> None:
    args, expected = FAILING_RUNS[kind]
    if "MODEL" in args:
        args = [str(request.getfixturevalue("untrained")) if a == "MODEL" else a for a in args]
    result = invoke(*args, "--out", tmp_path / "run")
    assert result.exit_code == 0, result.output
    headline = json.loads((tmp_path / "run" / "results.json").read_text())["headline"]
    assert expected in headline, headline
    assert result.stdout.splitlines()[0] == headline  # the CLI says it first
