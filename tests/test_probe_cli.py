"""``interp probe`` through the CLI: a tiny random HF model (TransformerBridge), a tiny trained run
(its own report gains the probe section), and one-line errors that leave nothing behind."""

from __future__ import annotations

import json

import pytest
from cli_helpers import assert_one_line_error, invoke
from hf_fixtures import save_tiny_llama


@pytest.fixture(scope="module")
def text_file(tmp_path_factory):
    import inspect

    import interp.data.corpus as corpus_module
    import interp.models.bridge as bridge_module

    path = tmp_path_factory.mktemp("data") / "text.txt"
    path.write_text(inspect.getsource(corpus_module) + inspect.getsource(bridge_module))
    return path


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("model") / "run"
    args = (
        "train --corpus builtin:prose --max-chars 80000 --tokenizer byte --ctx 32 --layers 2 "
        "--d-model 16 --heads 2 --d-mlp 32 --steps 15 --eval-every 15 --checkpoint-every 15"
    )
    result = invoke(*args.split(), "--out", run)
    assert result.exit_code == 0, result.output
    return run


def _check_results(path, n_layers: int, horizon: int) -> dict:
    res = json.loads(path.read_text())
    assert res["horizons"] == list(range(1, horizon + 1))
    for metric in ("top1", "top5", "ce"):
        table = res["probes"]["future_lens"]["metrics"][metric]
        assert len(table["value"]) == n_layers + 1
        assert all(len(row) == horizon for row in table["value"])
    return res


def test_probe_tiny_random_bridge_model(tmp_path, text_file) -> None:
    model = save_tiny_llama(tmp_path / "llama", n_positions=64)
    out = tmp_path / "probe"
    args = "--horizon 3 --tokens 3000 --seq-len 32".split()
    result = invoke("probe", "--model", model, *args, "--dataset", text_file, "--out", out)
    assert result.exit_code == 0, result.output
    res = _check_results(out / "results.json", n_layers=2, horizon=3)
    # last layer at k = 1 decodes (almost) the model's own next-token distribution
    fl_ce = res["probes"]["future_lens"]["metrics"]["ce"]["value"][-1][0]
    assert abs(fl_ce - res["baselines"]["model"]["ce"]["value"][0]) < 0.1
    html = (out / "report.html").read_text()
    assert "Future-token probes" in html and "baseline: bigram" in html
    assert "future_lens top-1" in result.output


def test_probe_tiny_trained_run_updates_its_report(tmp_path, trained_run) -> None:
    out = tmp_path / "probe"
    args = "--horizon 2 --tokens 4000 --probe both --top-k 16".split()
    result = invoke("probe", "--model", trained_run, *args, "--out", out)
    assert result.exit_code == 0, result.output
    res = _check_results(out / "results.json", n_layers=2, horizon=2)
    assert "validation documents of the model's training run" in res["data"]
    assert res["probes"]["vocab"]["classes"] == 17
    assert json.loads((out / "config.json").read_text())["kind"] == "probe"
    (copy,) = (trained_run / "analyses" / "probe").glob("*/results.json")  # one per analysis
    assert json.loads(copy.read_text()) == res
    assert "Future-token probes" in (trained_run / "report.html").read_text()
    assert "vocabulary probe: holds about" in result.output


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--horizon", "0"], "horizon must be at least 1"),
        (["--horizon", "32"], "beyond the model context"),
        (["--layers", "7"], "unknown layer 7"),
        (["--layers", "one"], "unknown layer"),
        (["--tokens", "40"], "too short"),
        (
            ["--probe", "vocab", "--max-memory", "1", "--tokens", "20000"],
            "would need .*--max-memory",
        ),
    ],
)
def test_probe_bad_input_one_line_nothing_written(tmp_path, trained_run, args, fragment) -> None:
    out = tmp_path / "probe"
    result = invoke("probe", "--model", trained_run, "--out", out, *args)
    assert_one_line_error(result, fragment)
    assert not out.exists()


def test_probe_bad_model_and_dataset(tmp_path, trained_run) -> None:
    out = tmp_path / "probe"
    assert_one_line_error(
        invoke("probe", "--model", tmp_path / "nope", "--out", out), "could not load model"
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    assert_one_line_error(
        invoke("probe", "--model", trained_run, "--dataset", empty, "--out", out), "no text files"
    )
    short = tmp_path / "short.txt"
    short.write_text("just a few words\n")
    assert_one_line_error(
        invoke("probe", "--model", trained_run, "--dataset", short, "--out", out), "too short"
    )
    assert not out.exists()
