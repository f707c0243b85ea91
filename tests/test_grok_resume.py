"""Crash safety of ``interp grok`` and ``interp grok sweep`` (issue 9 item 1 applied to grok).

A run interrupted in process, or a subprocess killed with SIGKILL at a seeded random moment,
resumes with ``--resume`` and ends with bit-identical weights and identical metrics rows (and,
for a sweep, the same results.json) as an uninterrupted run of the same seed."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch
from cli_helpers import invoke
from killing import fork_cli, kill_when

from interp.experiments.grok import run_grok
from interp.experiments.grok_sweep import run_sweep
from interp.grok.config import GrokConfig
from interp.grok.config import GrokSweepConfig as SweepConfig
from interp.io import read_json, read_jsonl
from interp.train.checkpoint import load_weights

TIMING = {"seconds", "steps_per_second", "runs_per_second"}


class Stop(Exception):
    """Raised from a progress callback to interrupt training in process."""


def stop_at(step: int):
    def on_step(s: int) -> None:
        if s == step:
            raise Stop

    return on_step


def assert_same_run(a: Path, b: Path) -> None:
    wa, wb = load_weights(a / "model.safetensors"), load_weights(b / "model.safetensors")
    assert wa.keys() == wb.keys()
    for name in wa:
        assert torch.equal(wa[name], wb[name]), name
    assert read_jsonl(a / "metrics.jsonl") == read_jsonl(b / "metrics.jsonl")
    ra, rb = read_json(a / "results.json"), read_json(b / "results.json")
    assert {k: v for k, v in ra.items() if k not in TIMING} == {
        k: v for k, v in rb.items() if k not in TIMING
    }


@pytest.mark.parametrize(
    "cfg, stop",
    [
        (GrokConfig(p=11, steps=130, log_every=10, checkpoint_every=40), 97),
        # the transformer also logs Nanda's restricted / excluded losses
        (
            GrokConfig(
                model="transformer", p=7, d_model=16, steps=60, log_every=5, checkpoint_every=20
            ),
            33,
        ),
        (
            GrokConfig(
                task="sparse-parity",
                **{"n_bits": 8, "k": 3, "n_train": 64, "n_test": 64, "width": 16},
                **{"steps": 90, "log_every": 10, "checkpoint_every": 25},
            ),
            60,
        ),
    ],
    ids=["mlp", "transformer", "parity"],
)
def test_interrupted_run_resumes_to_identical_weights_and_metrics(tmp_path, cfg, stop) -> None:
    ref, cut = tmp_path / "ref", tmp_path / "cut"
    run_grok(ref, cfg)
    with pytest.raises(Stop):
        run_grok(cut, cfg, on_step=stop_at(stop))
    assert not (cut / "results.json").exists()
    # rows past the last checkpoint were flushed by the interrupted run; resume redoes them
    assert (
        max(r["step"] for r in read_jsonl(cut / "metrics.jsonl"))
        > read_json(cut / "checkpoints" / "latest.json")["step"]
    )
    run_grok(cut, cfg, resume=True)
    assert_same_run(ref, cut)


def test_resume_without_the_optimizer_state_would_differ(tmp_path) -> None:
    """The check above can fail: a run restarted from the checkpoint weights with a fresh AdamW
    ends elsewhere."""
    from interp.experiments.grok import build_data, build_model
    from interp.train.checkpoint import load_model_weights
    from interp.train.full_batch import train_full_batch

    cfg = GrokConfig(p=11, steps=130, log_every=10, checkpoint_every=40).resolved()
    ref, cut = tmp_path / "ref", tmp_path / "cut"
    run_grok(ref, cfg)
    with pytest.raises(Stop):
        run_grok(cut, cfg, on_step=stop_at(97))
    model = build_model(cfg)
    load_model_weights(model, cut / "checkpoints" / "step_0000080" / "model.safetensors")
    train_full_batch(model, build_data(cfg), cfg.steps, cfg.optim, start_step=80)
    final = load_weights(ref / "model.safetensors")
    assert any(not torch.equal(final[k], v) for k, v in model.state_dict().items())


def test_sweep_interrupted_mid_group_resumes_to_the_same_results(tmp_path) -> None:
    cfg = SweepConfig(
        p=11,
        weight_decays=(0.0, 1.0),
        train_fractions=(0.4, 0.6),
        widths=(8, 12),
        seeds=(0, 1),
        steps=120,
        log_every=10,
        checkpoint_every=30,
        lr=3e-3,
    )
    ref, cut = tmp_path / "ref", tmp_path / "cut"
    run_sweep(ref, cfg)
    # on_step counts over the whole sweep: 120 + 75 stops the second group (width 12) at 75
    with pytest.raises(Stop):
        run_sweep(cut, cfg, on_step=stop_at(120 + 75))
    assert (cut / "cells" / "group_000.json").is_file()
    assert not (cut / "cells" / "group_001.json").exists()
    assert read_json(cut / "checkpoints" / "latest.json")["step"] == 60
    run_sweep(cut, cfg, resume=True)
    ra, rb = read_json(ref / "results.json"), read_json(cut / "results.json")
    assert {k: v for k, v in ra.items() if k not in TIMING} == {
        k: v for k, v in rb.items() if k not in TIMING
    }


def _latest_step(out: Path) -> int:
    try:
        return read_json(out / "checkpoints" / "latest.json")["step"]
    except Exception:  # noqa: BLE001 - not written yet (or being replaced)
        return -1


def _kill_when(args: list[str], out: Path, ready, delay: float) -> None:
    """Fork ``interp ARGS``; once ``ready(out)`` holds, wait ``delay`` seconds and SIGKILL it."""
    pid = fork_cli([*args, "--out", str(out), "--no-report"])
    assert kill_when(pid, lambda: ready(out), delay, timeout=120), (
        "the run finished before the kill; lengthen it"
    )


@pytest.mark.parametrize("seed", [0, 1])
def test_run_killed_with_sigkill_resumes_to_identical_weights_and_metrics(tmp_path, seed) -> None:
    """Killed at a seeded random moment: after a random checkpoint, plus a random delay that
    lands anywhere in training, logging, metrics flushes or the next checkpoint's writes."""
    opts = ["--p", "23", "--steps", "1500", "--log-every", "100", "--checkpoint-every", "100"]
    rng = random.Random(seed)
    after, delay = rng.randrange(0, 1000, 100), rng.uniform(0, 0.05)
    cut = tmp_path / "cut"
    _kill_when(["grok", *opts], cut, lambda out: _latest_step(out) >= after, delay)
    assert not (cut / "results.json").exists()
    result = invoke("grok", *opts, "--out", cut, "--no-report", "--resume")
    assert result.exit_code == 0, result.output
    ref = tmp_path / "ref"
    assert invoke("grok", *opts, "--out", ref, "--no-report").exit_code == 0
    assert_same_run(ref, cut)


def test_sweep_killed_with_sigkill_resumes_to_the_same_results(tmp_path) -> None:
    opts = ["--p", "23", "--widths", "16,24", "--seeds", "0..1", "--weight-decays", "0,1"]
    opts += ["--train-fractions", "0.4", "--steps", "1000", "--log-every", "100"]
    opts += ["--checkpoint-every", "100"]
    rng = random.Random(2)
    after, delay = rng.randrange(100, 800, 100), rng.uniform(0, 0.05)
    cut = tmp_path / "cut"

    def ready(out: Path) -> bool:  # in the second group (width 24), past step ``after``
        return (out / "cells" / "group_000.json").exists() and _latest_step(out) >= after

    _kill_when(["grok", "sweep", *opts], cut, ready, delay)
    assert not (cut / "results.json").exists()
    result = invoke("grok", "sweep", *opts, "--out", cut, "--no-report", "--resume")
    assert result.exit_code == 0, result.output
    ref = tmp_path / "ref"
    assert invoke("grok", "sweep", *opts, "--out", ref, "--no-report").exit_code == 0
    ra, rb = read_json(ref / "results.json"), read_json(cut / "results.json")
    assert {k: v for k, v in ra.items() if k not in TIMING} == {
        k: v for k, v in rb.items() if k not in TIMING
    }


def _one_line_error(result, fragment: str) -> str:
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert fragment in lines[0], lines[0]
    return lines[0]


def test_existing_run_dir_without_resume_is_refused_in_one_line(tmp_path) -> None:
    out = tmp_path / "run"
    opts = ["--p", "7", "--steps", "20", "--log-every", "10", "--no-report"]
    assert invoke("grok", *opts, "--out", out).exit_code == 0
    before = (out / "metrics.jsonl").read_bytes()
    _one_line_error(invoke("grok", *opts, "--out", out), "--resume")
    _one_line_error(invoke("grok", "sweep", "--p", "7", "--out", out), "--resume")
    assert (out / "metrics.jsonl").read_bytes() == before  # nothing overwritten
    # a resume that asks for something else names the option
    _one_line_error(
        invoke("grok", *opts, "--weight-decay", "0.5", "--out", out, "--resume"), "weight_decay"
    )
    _one_line_error(invoke("grok", *opts, "--out", out, "--resume", "--overwrite"), "contradict")
    _one_line_error(invoke("grok", *opts, "--resume"), "--out")
    # nothing to resume there yet: a new run, and the output says so (issue #13)
    result = invoke("grok", *opts, "--out", tmp_path / "none", "--resume")
    assert result.exit_code == 0 and "nothing to resume in" in result.output
    assert (tmp_path / "none" / "results.json").is_file()


def test_sweep_defaults_are_per_task_and_recorded_in_config_json(tmp_path) -> None:
    parity = SweepConfig(task="sparse-parity")
    assert (parity.widths, parity.lr, parity.weight_decays, parity.steps) == (
        (256,),
        1e-2,
        (0.0, 0.1, 0.3),
        4_000,
    )
    modadd = SweepConfig()
    assert (modadd.widths, modadd.lr, modadd.weight_decays, modadd.steps) == (
        (24,),
        1e-3,
        (0.0, 0.3, 1.0),
        20_000,
    )
    assert SweepConfig(task="sparse-parity", lr=3e-3, widths=(64,)).lr == 3e-3
    out = tmp_path / "sweep"
    args = ["grok", "sweep", "--task", "sparse-parity", "--train-sizes", "32"]
    args += ["--seeds", "0,", "--weight-decays", "0.1", "--steps", "5", "--out", out]
    assert invoke(*args, "--no-report").exit_code == 0
    sweep = read_json(out / "config.json")["sweep"]
    assert (sweep["widths"], sweep["lr"], sweep["log_every"]) == ([256], 1e-2, 100)
    one = tmp_path / "one"
    assert invoke("grok", "--task", "sparse-parity", "--n-bits", "8", "--steps", "3",
                  "--out", one, "--no-report").exit_code == 0  # fmt: skip
    grok = read_json(one / "config.json")["grok"]
    assert (grok["width"], grok["lr"], grok["weight_decay"]) == (256, 1e-2, 0.3)


def test_a_run_made_with_the_old_defaults_resumes_with_variant_interp_only(tmp_path) -> None:
    """#19: modadd's MLP default became PAIR's variant (d_embed 500, seed 165).  A run made with
    the earlier default (interp's MLP, d_embed 32, seed 0; its config.json written before
    variants existed names none) resumes from its saved config with ``--variant interp``; the
    new defaults are refused in one line that says so."""
    import json

    out = tmp_path / "old"
    opts = ["--p", "7", "--steps", "20", "--log-every", "10", "--checkpoint-every", "10",
            "--no-report"]  # fmt: skip
    assert invoke("grok", *opts, "--variant", "interp", "--out", out).exit_code == 0
    config = read_json(out / "config.json")
    assert {k: config["grok"][k] for k in ("variant", "d_embed", "seed")} == {
        "variant": "interp", "d_embed": 32, "seed": 0}  # fmt: skip
    del config["grok"]["variant"]  # as a config.json from before variants
    (out / "config.json").write_text(json.dumps(config))
    (out / "results.json").unlink()
    _one_line_error(invoke("grok", *opts, "--out", out, "--resume"), "add --variant interp")
    _one_line_error(
        invoke("grok", *opts, "--variant", "pair", "--out", out, "--resume"), "--variant interp"
    )
    result = invoke("grok", *opts, "--variant", "interp", "--out", out, "--resume")
    assert result.exit_code == 0, result.output
    assert read_json(out / "results.json")["final_train_accuracy"] is not None
    # another option that contradicts the saved config still names it
    _one_line_error(invoke("grok", *opts, "--variant", "interp", "--d-embed", "64", "--out", out,
                           "--resume"), "d_embed")  # fmt: skip
