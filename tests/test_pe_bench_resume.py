"""interp pe-bench --resume: a sweep interrupted in process, or killed with SIGKILL at seeded
random moments, ends with the same results.json as an uninterrupted one; a NaN names the
encoding, seed and step and keeps the finished cells; --overwrite never half-deletes a run.

The killed processes are forked from the test process (see tests/killing.py, whose
helpers these tests reuse): a separate process, SIGKILLed, files left as the kill found them.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest
from cli_helpers import assert_one_line_error, invoke
from killing import assert_nothing_truncated, fork_cli, kill_when, run_cli

import interp.analysis.pe_bench as pe_bench

BENCH = [
    "pe-bench", "--task", "flipflop", "-o", "length=8", "--pe", "rope,cope", "--seeds", "0,1",
    "--steps", "30", "--batch-size", "8", "--layers", "1", "--d-model", "16", "--heads", "2",
    "--d-mlp", "32", "--eval-sequences", "16", "--text", "--text-pe", "rope",
    "--text-steps", "20", "--text-ctx", "16", "--text-eval-ctx", "16,32",
    "--text-max-chars", "20000",
]  # fmt: skip
N_CELLS = 5  # 2 encodings x 2 seeds on the task, 1 text model


def _results(run: Path) -> dict:
    return json.loads((run / "results.json").read_text())


def _cells(run: Path) -> list[str]:
    folder = run / "cells"
    return sorted(p.name for p in folder.glob("*.json")) if folder.is_dir() else []


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """An uninterrupted run (forked, like the killed ones)."""
    out = tmp_path_factory.mktemp("ref") / "run"
    assert run_cli([*BENCH, "--out", str(out)]) == 0
    assert len(_cells(out)) == N_CELLS
    return out


class Interrupted(BaseException):  # like Ctrl-C, past the CLI's error handler
    pass


def test_interrupted_in_process_resumes_to_the_same_results(tmp_path, monkeypatch, reference):
    real = pe_bench._train_model
    calls: list[str] = []

    def train_until_third(*args, **kwargs):
        calls.append(args[0].positional)
        if len(calls) == 3:
            raise Interrupted
        return real(*args, **kwargs)

    monkeypatch.setattr("interp.analysis.pe_bench_cells._train_model", train_until_third)
    run = tmp_path / "run"
    with pytest.raises(Interrupted):
        invoke(*BENCH, "--out", run)
    assert _cells(run) == ["task-rope-seed0.json", "task-rope-seed1.json"]
    assert not (run / "results.json").exists()
    # resumed: only the three missing models are trained, the rest read back
    calls.clear()

    def counted(*args, **kwargs):
        calls.append(args[0].positional)
        return real(*args, **kwargs)

    monkeypatch.setattr("interp.analysis.pe_bench_cells._train_model", counted)
    result = invoke(*BENCH, "--out", run, "--resume")
    assert result.exit_code == 0, result.output
    assert len(calls) == N_CELLS - 2 and "rope (seed 1) already done" in result.output
    assert _results(run) == _results(reference)
    assert (run / "models" / "cope-seed1.safetensors").is_file()
    # resuming a finished run trains nothing and changes nothing
    calls.clear()
    assert invoke(*BENCH, "--out", run, "--resume").exit_code == 0
    assert calls == [] and _results(run) == _results(reference)


def test_killed_at_random_moments_resumes_to_the_same_results(tmp_path, reference):
    rng = random.Random(2024)
    run = tmp_path / "run"
    kills = 0
    # kill once the sweep has at least ``target`` cells, after a seeded random delay (a cell
    # takes ~0.3-1 s here: some kills land mid-training, some mid-save)
    for target in (0, 1, 2):
        args = [*BENCH, "--out", str(run)] + (["--resume"] if run.exists() else [])
        pid = fork_cli(args)
        ready = lambda t=target: len(_cells(run)) >= t  # noqa: E731
        kills += kill_when(pid, ready, rng.uniform(0.0, 0.4))
        if run.exists():
            assert_nothing_truncated(run)
    assert kills >= 2, "too few kills landed before the sweep finished"
    assert run_cli([*BENCH, "--out", str(run), "--resume"]) == 0
    assert _results(run) == _results(reference)
    for name in ("rope-seed0", "cope-seed1"):
        a = (run / "models" / f"{name}.safetensors").read_bytes()
        assert a == (reference / "models" / f"{name}.safetensors").read_bytes()


def test_resume_with_other_options_is_refused_naming_the_field(tmp_path, reference):
    run = tmp_path / "run"
    (run / "cells").mkdir(parents=True)
    (run / "config.json").write_bytes((reference / "config.json").read_bytes())
    other = [*BENCH]
    other[other.index("--steps") + 1] = "31"
    result = invoke(*other, "--out", run, "--resume")
    assert_one_line_error(result, r"--resume: steps is 31 but the run was started with 30")
    result = invoke(*BENCH, "--pe", "rope", "--out", run, "--resume")
    assert_one_line_error(result, r"--resume: encodings is \['rope'\]")
    assert_one_line_error(invoke(*BENCH, "--out", run, "--resume", "--overwrite"), "contradict")
    assert_one_line_error(invoke(*BENCH, "--out", run), r"already exists; pass --resume")
    assert _cells(run) == []


def test_non_finite_loss_names_encoding_seed_and_step_and_keeps_finished_cells(
    tmp_path, monkeypatch
):
    from interp.train import loop

    real, real_cell = loop.masked_mean, pe_bench._task_cell
    current, steps = [None], [0]

    def tracking(cfg, task, overrides, sets, pe, seed, *rest):
        current[0] = (pe, seed)
        return real_cell(cfg, task, overrides, sets, pe, seed, *rest)

    def poisoned(loss, mask):  # called once per training step
        out = real(loss, mask)
        if current[0] == ("cope", 1):
            steps[0] += 1
            if steps[0] == 3:  # the third training step of cope seed 1: step 2
                return out * float("nan")
        return out

    monkeypatch.setattr(loop, "masked_mean", poisoned)
    monkeypatch.setattr("interp.analysis.pe_bench_task._task_cell", tracking)
    run = tmp_path / "run"
    args = ["pe-bench", "--task", "flipflop", "-o", "length=4", "--pe", "rope,cope"]
    args += ["--seeds", "0,1", "--steps", "5", "--batch-size", "4", "--layers", "1"]
    args += ["--d-model", "16", "--heads", "2", "--d-mlp", "16", "--eval-sequences", "4"]
    result = invoke(*args, "--out", run)
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert result.exit_code == 2 and len(errors) == 1, result.output
    assert "Traceback" not in result.output
    assert re.fullmatch(
        r"error: pe-bench: flipflop: encoding 'cope' seed 1 went non-finite "
        r"\(loss is nan at step 2\); the 3 finished cells are kept in .*cells",
        errors[0],
    ), errors[0]
    assert "last checkpoint" not in result.output
    assert _cells(run) == ["task-cope-seed0.json", "task-rope-seed0.json", "task-rope-seed1.json"]
    assert not (run / "results.json").exists()


def test_overwrite_moves_the_old_run_aside_before_deleting_it(tmp_path, monkeypatch):
    import shutil

    from interp.runs import TRASH, RunDir

    old = tmp_path / "run"
    RunDir.create(old, {"kind": "pe-bench", "n": 1})
    (old / "cells").mkdir()
    (old / "cells" / "task-rope-seed0.json").write_text("{}")
    # a kill while the old run was being deleted: the delete happens after the new run exists,
    # on the renamed folder, so the run folder is never half-deleted
    real_rmtree = shutil.rmtree

    def killed(path, *args, **kwargs):
        assert (old / "config.json").is_file() and not (old / "cells").exists()
        assert json.loads((old / "config.json").read_text())["n"] == 2
        raise KeyboardInterrupt  # stands in for SIGKILL mid-delete

    monkeypatch.setattr(shutil, "rmtree", killed)
    with pytest.raises(KeyboardInterrupt):
        RunDir.create(old, {"kind": "pe-bench", "n": 2}, overwrite=True)
    monkeypatch.setattr(shutil, "rmtree", real_rmtree)
    trash = tmp_path / TRASH / "run"
    assert (trash / "cells" / "task-rope-seed0.json").is_file()  # the leftover, hidden
    # the new run: its config and interp's marker (what --overwrite recognises), nothing old
    assert sorted(p.name for p in old.iterdir()) == [".interp-lock", ".interp-run", "config.json"]
    # the leftover is invisible to a one-level lookup and cleared by the next create
    assert list(tmp_path.glob("*/config.json")) == [old / "config.json"]
    RunDir.create(old, {"kind": "pe-bench", "n": 3}, overwrite=True)
    assert not (tmp_path / TRASH).exists()
    assert json.loads((old / "config.json").read_text())["n"] == 3


def test_overwrite_of_a_finished_bench_replaces_it(tmp_path):
    run = tmp_path / "run"
    small = ["pe-bench", "--task", "flipflop", "-o", "length=4", "--pe", "rope", "--seeds", "0"]
    small += ["--steps", "2", "--batch-size", "4", "--layers", "1", "--d-model", "16"]
    small += ["--heads", "2", "--d-mlp", "16", "--eval-sequences", "4"]
    assert invoke(*small, "--out", run).exit_code == 0
    (run / "cells" / "task-stale-seed9.json").write_text("{}")
    assert invoke(*small, "--seeds", "1", "--out", run, "--overwrite").exit_code == 0
    assert _cells(run) == ["task-rope-seed1.json"]
    assert _results(run)["config"]["seeds"] == [1]
    assert [p.name for p in tmp_path.iterdir()] == ["run"]


def test_resume_of_a_run_made_before_cope_followed_the_public_code_is_refused(tmp_path, reference):
    """A run whose config.json has no "variants" was started by an interp whose CoPE had one
    table per head: its finished CoPE cells cannot be mixed with the public code's definition."""
    run = tmp_path / "run"
    (run / "cells").mkdir(parents=True)
    config = json.loads((reference / "config.json").read_text())
    assert config.pop("variants") == {"rope": "rope", "cope": "cope"}
    (run / "config.json").write_text(json.dumps(config))
    result = invoke(*BENCH, "--out", run, "--resume")
    assert_one_line_error(
        result, r"--resume: this interp defines 'cope' as 'cope'.*earlier definition"
    )
    config["variants"] = {"rope": "rope", "cope": "cope (interp variant: one table per head)"}
    (run / "config.json").write_text(json.dumps(config))
    result = invoke(*BENCH, "--out", run, "--resume")
    assert_one_line_error(result, r"started with 'cope \(interp variant: one table per head\)'")
