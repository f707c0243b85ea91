"""``interp grok`` and ``interp grok sweep``: one-line errors before any output, and short runs
end to end (run directory, results, report with the grokking sections)."""

from __future__ import annotations

import json

import pytest
from cli_helpers import assert_one_line_error, invoke

from interp.grok.tasks import grok_task_names


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["grok", "--p", "1"], "p must be"),
        (["grok", "--train-fraction", "1.5"], r"\(0, 1\)"),
        (["grok", "--train-fraction", "0"], r"\(0, 1\)"),
        (["grok", "--task", "sparse-parity", "--n-bits", "4", "--k", "5"], r"k \(5\)"),
        (["grok", "--arch", "cnn"], "unknown grok model"),
        (["grok", "sweep", "--train-fractions", "0.3,1.2"], r"\(0, 1\)"),
        (["grok", "sweep", "--p", "1"], "p must be"),
        (["grok", "sweep", "--weight-decays", "a,b"], "comma-separated"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, args, fragment) -> None:
    out = tmp_path / "run"
    assert_one_line_error(invoke(*args, "--out", out), fragment)
    assert not out.exists()


def test_grok_run_end_to_end(tmp_path) -> None:
    out = tmp_path / "grok"
    result = invoke(
        "grok",
        "--p",
        "11",
        "--steps",
        "60",
        "--log-every",
        "20",
        "--checkpoint-every",
        "30",
        "--out",
        out,
    )
    assert result.exit_code == 0, result.output
    assert "memorisation step" in result.output and "report:" in result.output
    cfg = json.loads((out / "config.json").read_text())
    assert (
        cfg["kind"] == "grok" and cfg["grok"]["pairs"] == "ordered" and cfg["grok"]["width"] == 24
    )
    results = json.loads((out / "results.json").read_text())
    assert {"memorisation_step", "grokking_step", "label", "key_frequencies", "circles"} <= set(
        results
    )
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert {r["split"] for r in rows} == {"train", "val", "fourier"}
    for name in ("model.safetensors", "optim.safetensors", "state.json"):  # for --resume
        assert (out / "checkpoints" / "step_0000030" / name).is_file()
    assert (out / "model.safetensors").is_file()
    html = (out / "report.html").read_text()
    assert "Grokking" in html and "failed to build" not in html


def test_grok_transformer_logs_restricted_and_excluded_loss(tmp_path) -> None:
    out = tmp_path / "nanda"
    result = invoke(
        "grok",
        "--arch",
        "transformer",
        "--p",
        "7",
        "--steps",
        "4",
        "--log-every",
        "2",
        "--out",
        out,
    )
    assert result.exit_code == 0, result.output
    cfg = json.loads((out / "config.json").read_text())["grok"]
    assert cfg["pairs"] == "all" and cfg["train_fraction"] == 0.3
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    fourier = [r for r in rows if r["split"] == "fourier"]
    assert fourier and all("restricted_loss" in r and "excluded_loss" in r for r in fourier)


def test_grok_sweep_end_to_end(tmp_path) -> None:
    out = tmp_path / "sweep"
    result = invoke(
        "grok",
        "sweep",
        "--p",
        "11",
        "--weight-decays",
        "0,1",
        "--train-fractions",
        "0.4,0.6",
        "--widths",
        "8,12",
        "--seeds",
        "0..1",
        "--steps",
        "40",
        "--log-every",
        "20",
        "--out",
        out,
    )
    assert result.exit_code == 0, result.output
    assert "16 runs" in result.output
    results = json.loads((out / "results.json").read_text())
    assert results["n_runs"] == 16 and sum(results["label_counts"].values()) == 16
    assert {r["label"] for r in results["runs"]} <= {"no-learn", "memorise", "grok", "generalise"}
    html = (out / "report.html").read_text()
    assert "Phase diagram" in html and "failed to build" not in html


def test_grok_json_is_one_document_and_configs_read_back_from_config_json(tmp_path) -> None:
    from interp.experiments.grok import GrokRun
    from interp.experiments.grok_sweep import GrokSweepRun
    from interp.grok.config import GrokConfig, GrokSweepConfig

    out = tmp_path / "grok"
    opts = ["--p", "7", "--steps", "6", "--log-every", "3", "--no-report"]
    result = invoke("grok", *opts, "--json", "--out", out)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["kind"] == "grok" and doc["run"] == str(out) and "memorisation_step" in doc
    stored = GrokRun.from_dict(json.loads((out / "config.json").read_text()))
    assert stored == GrokRun(GrokConfig(p=7, steps=6, log_every=3).resolved())

    sweep = tmp_path / "sweep"
    args = ["grok", "sweep", "--p", "7", "--widths", "4", "--seeds", "0,", "--steps", "4"]
    assert invoke(*args, "--weight-decays", "0", "--out", sweep, "--no-report").exit_code == 0
    stored = GrokSweepRun.from_dict(json.loads((sweep / "config.json").read_text()))
    assert stored.sweep == GrokSweepConfig(
        p=7, widths=(4,), seeds=(0,), steps=4, weight_decays=(0.0,)
    )


@pytest.mark.parametrize("name", grok_task_names())
def test_every_grok_task_builds_its_data_and_models(name) -> None:
    """Each registered grok task: a config of every model it takes validates, its data is one
    example per label with a train mask, and its models map it to class logits."""
    from interp.experiments.grok import build_data, build_model
    from interp.grok.config import GrokConfig, GrokSweepConfig
    from interp.grok.tasks import grok_task

    spec = grok_task(name)
    small = {"p": 7, "n_bits": 6, "k": 2, "n_train": 20, "n_test": 10, "d_model": 8, "width": 4}
    for model in spec.models:
        cfg = GrokConfig(task=name, model=model, **small).resolved()
        cfg.validate()
        data = build_data(cfg)
        assert data.x.shape[0] == data.y.shape[0] == data.train.shape[0]
        assert 0 < int(data.train.sum()) < len(data.y)
        logits = build_model(cfg)(data.x)
        assert logits.shape[0] == len(data.y) and logits.shape[1] > int(data.y.max())
    sweep = GrokSweepConfig(task=name, p=7, n_bits=6, k=2, n_test=10, widths=(4,), seeds=(0,))
    sweep.validate()
    assert {spec.size_key} <= set(sweep.points()[0])


def test_a_grok_task_registered_twice_is_refused() -> None:
    from interp.grok.tasks import ModAdd, register_grok_task

    with pytest.raises(ValueError, match="registered twice"):
        register_grok_task(ModAdd)
