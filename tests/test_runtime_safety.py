"""Runtime safety (issue #13, items 7, 12, 13, 16, 17, 18 and the unclear ones): each test is
an attack that broke main before the fix.

7. two processes on one run directory (two fresh starts, two ``--resume``, an ``--overwrite``
   of a run in use, two analyses training the shared demo model): one works, the other refuses
   with one line naming the holder's pid (the demo: waits, then reuses); the lock dies with
   its process, SIGKILL included;
12. task data and positional-encoding sizes (modadd p, sparse-parity bits, CoPE npos) are in the
    estimates: refused before any folder exists;
13. ``count construct`` states its work, drives a progress bar and refuses what would take days;
16. hostile sweep cells (``"accuracy": "high"``, a malformed ``.pending.json``) are one line
    naming the file;
17. absurd learning rates and weight decays are refused before any folder exists;
18. Ctrl-C prints exactly one line (where the run is, how to continue it; or that nothing was
    written), also during the seconds of imports, and exits 130;
and: a full disk names the file and what was written; the train estimate counts the report; a
killed report write's temporary file is cleaned by the next report; ``--resume`` on an
``--out`` that does not exist yet starts a new run and says so.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_helpers import assert_one_line_error, invoke
from killing import kill_when, n_rows, run_cli, same_weights, strip, wait

from interp.io import read_jsonl

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")

ROOT = Path(__file__).resolve().parents[1]

TRAIN = [
    "train", "--task", "copy", "-o", "length=4", "-o", "vocab=6", "--layers", "1",
    "--d-model", "16", "--heads", "2", "--d-mlp", "32", "--steps", "60", "--batch-size", "8",
    "--eval-every", "4", "--checkpoint-every", "5", "--warmup", "5", "--seed", "3",
    "--no-report",
]  # fmt: skip


def fork_logged(args: list[str], log: Path, gate: Path | None = None) -> int:
    """``interp ARGS`` in a forked child, its stderr in ``log``; it starts once ``gate`` exists
    (so that two children enter the CLI at the same instant).  Returns the pid."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 70
        try:
            null = os.open(os.devnull, os.O_WRONLY)
            err = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(null, 1)
            os.dup2(err, 2)
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - pytest replaced the objects
            sys.stderr = os.fdopen(2, "w", buffering=1)
            while gate is not None and not gate.exists():
                time.sleep(0.0005)
            sys.argv = ["interp", *args]
            from cli.main import main

            main()
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
        except BaseException:
            code = 71
        finally:
            sys.stderr.flush()
            os._exit(code)
    return pid


def _lines(log: Path) -> list[str]:
    return [line for line in log.read_text().splitlines() if line.strip()]


def _same_run(run: Path, ref: Path) -> None:
    same_weights(run / "model.safetensors", ref / "model.safetensors")
    rows = read_jsonl(run / "metrics.jsonl")
    assert strip(rows) == strip(read_jsonl(ref / "metrics.jsonl"))
    keys = [(r["step"], r["split"]) for r in rows]
    assert len(keys) == len(set(keys)), "duplicated metrics rows"


@pytest.fixture(scope="module")
def lone(tmp_path_factory) -> Path:
    """TRAIN run alone, from start to end (the reference every raced run must equal)."""
    out = tmp_path_factory.mktemp("lone") / "run"
    assert run_cli([*TRAIN, "--out", str(out)]) == 0
    return out


def _in_use(run: Path, pid: int) -> str:
    return rf"run directory {re.escape(str(run))} is in use by another interp process \(pid {pid}\)"


# ----------------------------------------------------------------------------- 7. locks
@pytest.mark.parametrize("start", ["fresh", "resume"])
def test_two_processes_on_one_run_one_refuses_the_other_ends_as_a_lone_run(
    tmp_path, lone, start
) -> None:
    # A resumed tiny run finishes in well under a second, so a child scheduled late may find
    # it already finished ("resuming from step 60 of 60", exit 0): the two never overlapped,
    # which is correct but tests no lock. Such a race is run again (up to 5 times).
    for attempt in range(5):
        base = tmp_path / str(attempt)
        base.mkdir()
        run, gate = base / "run", base / "go"
        if start == "resume":  # a run killed mid-way, then resumed twice at the same instant
            pid = fork_logged([*TRAIN, "--out", str(run)], base / "first.log")
            assert kill_when(pid, lambda run=run: n_rows(run / "metrics.jsonl") >= 3, 0.0)
            assert not (run / "model.safetensors").exists()
        args = [*TRAIN, "--out", str(run)] + (["--resume"] if start == "resume" else [])
        pids = [fork_logged(args, base / f"{i}.log", gate) for i in range(2)]
        gate.touch()
        codes = [wait(p) for p in pids]
        logs = [(base / f"{i}.log").read_text() for i in range(2)]
        if codes == [0, 0] and any("resuming from step 60 of 60" in log for log in logs):
            _same_run(run, lone)  # one after the other: still one lone run
            continue
        assert sorted(codes) == [0, 2], codes
        loser, winner = codes.index(2), codes.index(0)
        lines = _lines(base / f"{loser}.log")
        assert len(lines) == 1 and re.fullmatch("error: " + _in_use(run, pids[winner]), lines[0]), (
            lines
        )
        _same_run(run, lone)
        return
    pytest.fail("the two processes never overlapped in 5 races")


def _hold_lock(path: Path) -> int:
    """A separate process holding ``path``'s run lock until it is killed."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            from interp.runs import lock_run

            lock_run(path)
            os.write(w, b"1")
            time.sleep(120)
        finally:
            os._exit(0)
    os.close(w)
    assert os.read(r, 1) == b"1"
    os.close(r)
    return pid


def test_a_run_in_use_refuses_resume_overwrite_and_a_new_start_until_its_holder_dies(
    tmp_path, lone
) -> None:
    run = tmp_path / "run"
    shutil.copytree(lone, run)
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file() and p.name != ".interp-lock"}
    holder = _hold_lock(run)
    try:
        for extra in (["--resume"], ["--overwrite"], []):
            assert_one_line_error(invoke(*TRAIN, "--out", run, *extra), _in_use(run, holder))
        fresh = tmp_path / "fresh"  # a run being created is locked as well (from its mkdir on)
        fresh.mkdir()
        other = _hold_lock(fresh)
        assert_one_line_error(invoke(*TRAIN, "--out", fresh), _in_use(fresh, other))
        os.kill(other, signal.SIGKILL)
        wait(other)
    finally:
        os.kill(holder, signal.SIGKILL)
        assert wait(holder) == -signal.SIGKILL
    after = {p: p.read_bytes() for p in run.rglob("*") if p.is_file() and p.name != ".interp-lock"}
    assert after == before  # the refused commands touched nothing
    # SIGKILL released the locks (no stale lock file to clean by hand)
    assert invoke(*TRAIN, "--out", run, "--resume").exit_code == 0
    assert invoke(*TRAIN, "--out", fresh).exit_code == 0


@pytest.mark.parametrize("link", ["symbolic", "hard"])
def test_a_planted_lock_file_link_is_refused_and_its_target_untouched(tmp_path, lone, link):
    run = tmp_path / "run"
    shutil.copytree(lone, run)
    victim = tmp_path / "thesis.tex"
    victim.write_text("years of work")
    (run / ".interp-lock").unlink(missing_ok=True)
    if link == "symbolic":
        (run / ".interp-lock").symlink_to(victim)
    else:
        os.link(victim, run / ".interp-lock")
    for extra in (["--resume"], ["--overwrite"]):
        result = invoke(*TRAIN, "--out", run, *extra)
        assert_one_line_error(result, "link" if link == "symbolic" else "hard link")
    assert victim.read_text() == "years of work"


def _tiny_demo(monkeypatch) -> None:
    from interp import demo
    from interp.config import DataConfig, ModelConfig, OptimConfig, TrainConfig

    monkeypatch.setattr(
        demo, "DEMO_MODEL", ModelConfig(n_layers=1, d_model=16, n_heads=2, d_mlp=32, n_ctx=16)
    )
    monkeypatch.setattr(
        demo,
        "DEMO_TRAIN",
        TrainConfig(steps=40, batch_size=4, eval_every=10, checkpoint_every=10, log_every=2,
                    optim=OptimConfig(lr=1e-3, warmup_steps=2)),
    )  # fmt: skip
    monkeypatch.setattr(
        demo,
        "DEMO_DATA",
        DataConfig(corpus="builtin:prose", max_chars=20_000, tokenizer="byte"),
    )


def test_two_analyses_at_once_train_the_default_model_once(tmp_path, monkeypatch) -> None:
    """Without --model, analyses share the cached demo model: the second process waits for the
    first to train it, then reuses it (one training, no duplicated rows)."""
    from interp.demo import demo_job, demo_run_dir, ensure_demo_model

    _tiny_demo(monkeypatch)
    monkeypatch.setenv("INTERP_CACHE", str(tmp_path / "alone"))
    alone, reused = ensure_demo_model()
    assert not reused
    monkeypatch.setenv("INTERP_CACHE", str(tmp_path / "shared"))
    gate = tmp_path / "go"
    # an analysis without --model (interp demo is now the whole tour; its model is this one)
    squash = ["squash", "--prompts", "copy-first", "--length", "6", "--no-report", "--out"]
    pids = [fork_logged([*squash, str(tmp_path / f"sq{i}")], tmp_path / f"{i}.log", gate)
            for i in range(2)]  # fmt: skip
    gate.touch()
    assert [wait(p) for p in pids] == [0, 0]
    logs = [(tmp_path / f"{i}.log").read_text() for i in range(2)]
    waited = [i for i, log in enumerate(logs) if "waiting for another interp process" in log]
    assert len(waited) == 1, logs
    other = pids[1 - waited[0]]
    assert f"waiting for another interp process (pid {other})" in logs[waited[0]]
    shared = demo_run_dir(demo_job())
    _same_run(shared, alone.path)


# ----------------------------------------------------------------------------- 12. estimates
@pytest.mark.parametrize(
    "args",
    [
        ["train", "--task", "modadd", "-o", "p=1000000"],
        ["train", "--task", "sparse-parity", "-o", "n_bits=100000000"],
        ["grok", "--task", "sparse-parity", "--n-bits", "100000000"],
        ["pe-bench", "--pe", "cope", "--cope-option", "npos=1000000000"],
        ["precache", "--task", "modadd", "-o", "p=1000000"],
    ],
    ids=["modadd-p", "parity-bits", "grok-parity-bits", "cope-npos", "precache-modadd"],
)
def test_task_and_encoding_sizes_are_refused_before_any_folder(tmp_path, args) -> None:
    out = tmp_path / "run"
    assert_one_line_error(invoke(*args, "--out", out), r"needs ~[\d.]+ TiB of memory")
    assert not out.exists()


def test_estimates_grow_with_task_data_and_encoding_tables() -> None:
    from interp import resources
    from interp.config import DataConfig, ModelConfig, TrainConfig
    from interp.train.job import TrainJob

    def mem(task: str, options: dict, **model) -> int:
        data = DataConfig(source="task", task=task, task_options=options)
        job = TrainJob(ModelConfig(**model), TrainConfig(batch_size=16), data)
        return resources.train_job_estimate(job)[1]

    assert mem("modadd", {"p": 1000}) - mem("modadd", {"p": 10}) >= 96 * (1000**2 - 100)
    bits = mem("sparse-parity", {"n_bits": 10**5}) - mem("sparse-parity", {"n_bits": 10})
    assert bits >= 24 * 3200 * (10**5 - 10) + 4 * 4 * 64 * (10**5 - 10)  # data + input weights
    cope = {"positional": "cope", "n_ctx": 16}
    big = mem("copy", {}, **cope, positional_options={"npos": 10**6})
    assert big - mem("copy", {}, **cope) >= 4 * 4 * 2 * 16 * 10**6  # the tables, with AdamW


# ----------------------------------------------------------------------------- 13. construct
def test_count_construct_states_its_work_shows_progress_and_refuses_days(tmp_path) -> None:
    log = tmp_path / "err.log"
    args = ["count", "construct", "--samples", "10000000", "--n", "1000"]
    pid = fork_logged(args, log)
    t0 = time.monotonic()
    while os.waitpid(pid, os.WNOHANG) == (0, 0):
        if time.monotonic() - t0 > 60:
            os.kill(pid, signal.SIGKILL)
            wait(pid)
            pytest.fail("count construct of ~2 PFLOP started instead of being refused")
        time.sleep(0.01)
    lines = _lines(log)
    assert len(lines) == 1 and re.match(r"error: the construction .* needs ~2\.\d PFLOP", lines[0])
    assert "above the limit" in lines[0] and "--samples" in lines[0]
    # what fits: the work line, then a progress callback over every sequence of every cell
    from interp.analysis.counting import ConstructConfig, run_construct

    calls: list[tuple[int, int]] = []
    cfg = ConstructConfig(d_values=(4,), m_values=(2, 4), samples=300)
    run_construct(cfg, lambda done, total: calls.append((done, total)))
    assert calls[0] == (0, 600) and calls[-1] == (600, 600)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls) and len(calls) >= 4
    result = invoke("count", "construct", "--d", "4", "--m", "2,4", "--samples", "300")
    assert result.exit_code == 0 and re.search(
        r"the construction .*: ~[\d.]+ \w+ of work", result.output
    )


# ----------------------------------------------------------------------------- 16. cells
COUNT = ["count", "sweep", "--d", "8", "--m", "2,3", "--heads", "2", "--n-factor", "2",
         "--steps", "4", "--eval-samples", "20"]  # fmt: skip
GROK = ["grok", "sweep", "--p", "5", "--widths", "4", "--seeds", "0..1", "--steps", "6",
        "--log-every", "2", "--weight-decays", "0,1", "--train-fractions", "0.5"]  # fmt: skip
BENCH = ["pe-bench", "--task", "flipflop", "-o", "length=4", "--pe", "rope", "--seeds", "0",
         "--steps", "2", "--batch-size", "4", "--layers", "1", "--d-model", "16", "--heads", "2",
         "--d-mlp", "16", "--eval-sequences", "4"]  # fmt: skip


def _edit(path: Path, edit) -> None:
    obj = json.loads(path.read_text())
    path.write_text(json.dumps(edit(obj)))


def _set(obj: dict, keys: list, value):
    target = obj
    for key in keys[:-1]:
        target = target[key]
    target[keys[-1]] = value
    return obj


@pytest.fixture(scope="module")
def sweeps(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("sweeps")
    out = {}
    for name, args in (("count", COUNT), ("grok", GROK), ("bench", BENCH)):
        out[name] = base / name
        assert invoke(*args, "--out", out[name]).exit_code == 0
    return out


HOSTILE = [  # (sweep, file in it, edit, what the one line says)
    ("count", "cells/d0008_m0002.json", lambda c: _set(c, ["accuracy"], "high"), r"accuracy is 'high', not a number in \[0, 1\]"),
    ("count", "cells/d0008_m0003.json", lambda c: _set(c, ["m"], 2), r"holds the cell d=8 m=2"),
    ("count", "cells/d0008_m0003.json", lambda c: [c], r"the file is \[\{"),
    ("count", "cells/.pending.json", lambda c: {"a": 1}, r"is malformed \(the file is \{'a': 1\}, not a list\)"),
    ("count", "cells/.pending.json", lambda c: [[8]], r"\[0\] is \[8\], not a list of 2"),
    ("count", "cells/.pending.json", lambda c: [[8, 99]], r"cell d=8 m=99, not in this sweep"),
    ("grok", "cells/group_000.json", lambda c: _set(c, ["runs", 0, "label"], "banana"), r"runs\[0\]\.label is 'banana'"),
    ("grok", "cells/group_000.json", lambda c: _set(c, ["runs"], []), r"group 0 of 0 runs, not group 0 of 4"),
    ("grok", "cells/group_000.json", lambda c: _set(c, ["runs", 1, "weight_decay"], 0.5), r"runs\[1\]\.weight_decay is 0\.5"),
    ("grok", "cells/group_000.json", lambda c: _set(c, ["steps"], "all"), r"steps is 'all', not a list"),
    ("bench", "cells/task-rope-seed0.json", lambda c: _set(c, ["errors", "val", "token_error"], "high"), r"errors\.val\.token_error is 'high'"),
    ("bench", "cells/task-rope-seed0.json", lambda c: _set(c, ["errors"], {"val": c["errors"]["val"]}), r"errors holds the splits \['val'\]"),
    ("bench", "cells/task-rope-seed0.json", lambda c: _set(c, ["curve", "loss"], None), r"curve\.loss is None"),
]  # fmt: skip


@pytest.mark.parametrize(
    "sweep, rel, edit, message", HOSTILE, ids=[f"{h[0]}-{i}" for i, h in enumerate(HOSTILE)]
)
def test_a_hostile_cell_is_one_line_naming_the_file(tmp_path, sweeps, sweep, rel, edit, message):
    run = tmp_path / sweep
    shutil.copytree(sweeps[sweep], run)
    (run / "results.json").unlink()
    target = run / rel
    if target.name == ".pending.json":
        target.write_text("[[8, 2], [8, 3]]")
    _edit(target, edit)
    before = target.read_bytes()
    args = {"count": COUNT, "grok": GROK, "bench": BENCH}[sweep]
    result = invoke(*args, "--out", run, "--resume")
    assert_one_line_error(result, message)
    assert f" {target} is malformed (" in " ".join(result.output.split())  # names the file
    assert target.read_bytes() == before and not (run / "results.json").exists()
    if not target.name.startswith("."):  # the one-line advice works: delete it, resume
        target.unlink()
        assert invoke(*args, "--out", run, "--resume").exit_code == 0
        ref = json.loads((sweeps[sweep] / "results.json").read_text())
        got = json.loads((run / "results.json").read_text())
        if sweep == "count":  # one cell retrained alone, not in its batched group: same cells
            assert [(c["d"], c["m"]) for c in got["cells"]] == [
                (c["d"], c["m"]) for c in ref["cells"]
            ]
        else:  # a grok group and a pe-bench cell are retrained whole: the same numbers
            assert strip(got) == strip(ref)


# ----------------------------------------------------------------------------- 17. values
SMALL = {
    "train": ["train", "--task", "copy", "--steps", "2", "--d-model", "16", "--heads", "2"],
    "grok": ["grok", "--p", "5", "--steps", "2"],
    "grok sweep": ["grok", "sweep", "--p", "5", "--steps", "2", "--seeds", "0,"],
    "count sweep": ["count", "sweep", "--d", "8", "--m", "2", "--heads", "2", "--steps", "2"],
    "pe-bench": [*BENCH],
    "precache": ["precache", "--steps", "2", "--seeds", "0,", "--d-model", "16"],
}
ABSURD = [
    (cmd, opt, value, pattern)
    for cmd in SMALL
    for opt, value, pattern in (
        ("--lr", "1e308", r"--lr 1e\+308 is not a usable learning rate"),
        ("--lr", "inf", r"--lr inf is not a usable learning rate"),
        ("--lr", "1e-300", r"--lr 1e-300 is not a usable learning rate"),
        ("--weight-decay", "1e300", r"weight decay 1e\+300 at learning rate"),
    )
    if not (opt == "--weight-decay" and cmd in ("pe-bench", "precache", "grok sweep"))
] + [
    ("grok sweep", "--weight-decays", "0,1e9", r"weight decay 1e\+09 at learning rate"),
    ("grok", "--weight-decay", "nan", r"weight decay nan must be a finite number"),
]


@pytest.mark.parametrize(
    "cmd, opt, value, pattern", ABSURD, ids=[f"{a[0]} {a[1]} {a[2]}" for a in ABSURD]
)
def test_absurd_optimizer_values_are_refused_before_any_folder(tmp_path, cmd, opt, value, pattern):
    out = tmp_path / "run"
    assert_one_line_error(invoke(*SMALL[cmd], opt, value, "--out", out), pattern)
    assert not out.exists()


def test_count_construct_refuses_an_overflowing_beta() -> None:
    result = invoke(
        "count", "construct", "--d", "4", "--m", "2", "--samples", "2", "--beta", "1e308"
    )
    assert_one_line_error(result, r"beta must be in \(0, 1e\+06\]")


# ----------------------------------------------------------------------------- 18. Ctrl-C
def _interp(args: list[str]) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "cli.main", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _maps(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return ""


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs /proc")
def test_ctrl_c_during_the_imports_is_one_line_and_writes_nothing(tmp_path) -> None:
    out = tmp_path / "run"
    proc = _interp([*TRAIN, "--out", str(out)])
    t0 = time.monotonic()
    while "libtorch" not in _maps(proc.pid):  # inside ``import torch``: seconds of imports left
        assert proc.poll() is None and time.monotonic() - t0 < 120
        time.sleep(0.001)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert err.strip().splitlines() == ["interrupted: nothing was written"], err
    assert not out.exists()


def test_ctrl_c_mid_run_says_where_the_run_is_and_its_resume_continues_it(tmp_path, lone):
    out = tmp_path / "run"
    proc = _interp([*TRAIN, "--out", str(out)])
    t0 = time.monotonic()
    while n_rows(out / "metrics.jsonl") < 3:
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() - t0 < 240
        time.sleep(0.001)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert not (out / "model.safetensors").exists(), "interrupted too late to test anything"
    lines = [line for line in err.splitlines() if line.strip() and "needs ~" not in line]
    assert len(lines) == 1 and "Traceback" not in err, err
    prefix = f"interrupted: the run in {out} is kept; continue it with: "
    assert lines[0].startswith(prefix), lines[0]
    again = shlex.split(lines[0][len(prefix) :])
    assert again[0] == "interp" and again[-1] == "--resume"
    assert run_cli(again[1:]) == 0
    _same_run(out, lone)


def test_ctrl_c_of_an_analysis_before_its_output_says_nothing_was_written(tmp_path, monkeypatch):
    import interp.analysis.counting as counting

    def interrupted(cfg, **_):
        raise KeyboardInterrupt

    monkeypatch.setattr(counting, "run_construct", interrupted)
    out = tmp_path / "c"
    result = invoke("count", "construct", "--d", "4", "--m", "2", "--samples", "2", "--out", out)
    assert result.exit_code == 130
    assert result.output.strip().splitlines()[-1] == "interrupted: nothing was written"
    assert not out.exists()


def test_ctrl_c_of_a_command_without_resume_says_what_to_do_with_its_folder(tmp_path, monkeypatch):
    import interp.reproduce as reproduce
    import interp.reproductions  # noqa: F401 - registers them

    def interrupted(out_dir, quick, progress):
        raise KeyboardInterrupt

    repro = reproduce.get_reproduction("collapse")
    monkeypatch.setitem(
        reproduce._REPRODUCTIONS,
        "collapse",
        repro.__class__(repro.name, repro.description, interrupted),
    )
    out = tmp_path / "r"
    result = invoke("reproduce", "collapse", "--quick", "--out", out)
    assert result.exit_code == 130
    said = " ".join(result.output.split())
    assert said == f"interrupted: {out} is incomplete; delete it or choose another --out"


def test_ctrl_c_inside_a_run_of_runs_names_the_command_s_own_run(tmp_path, monkeypatch) -> None:
    """precache trains its twins as runs inside its --out: the line names --out, not a twin."""
    import interp.analysis.precache_twins as twins
    from interp.runs import RunDir

    def interrupted(out, job, config, progress=None, on_step=None):
        RunDir.create(Path(out) / "twins" / "seed0-vanilla", {"kind": "train"})
        raise KeyboardInterrupt

    monkeypatch.setattr(twins, "run_precache", interrupted)
    out = tmp_path / "p"
    result = invoke("precache", "--steps", "2", "--seeds", "0,", "--d-model", "16", "--out", out)
    assert result.exit_code == 130
    said = " ".join(result.output.split()).split("interrupted: ")[-1]
    assert said.startswith(f"the run in {out} is kept; continue it with: interp precache")
    assert said.endswith(f"--out {out} --resume")


# ----------------------------------------------------------------------------- unclear items
def test_a_full_disk_names_the_file_what_it_is_and_how_to_continue(tmp_path, monkeypatch):
    import interp.io

    real = os.fsync

    def full(fd: int) -> None:
        if "step_0000010" in os.readlink(f"/proc/self/fd/{fd}"):
            raise OSError(errno.ENOSPC, "No space left on device")
        real(fd)

    monkeypatch.setattr(interp.io.os, "fsync", full)
    out = tmp_path / "run"
    result = invoke(*TRAIN, "--out", out)
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert result.exit_code == 2 and len(lines) == 1, result.output
    assert re.match(
        r"error: No space left on device while writing the checkpoint of step 10 \("
        + re.escape(str(out / "checkpoints")),
        lines[0],
    ), lines[0]
    assert f"free some space; the run in {out} is kept; continue it with: interp train" in lines[0]
    assert lines[0].endswith("--resume")


def test_the_train_disk_estimate_counts_the_report(tmp_path) -> None:
    from interp import resources
    from interp.config import DataConfig, ModelConfig, OptimConfig, TrainConfig
    from interp.train.job import TrainJob

    out = tmp_path / "run"
    args = [a for a in TRAIN if a != "--no-report"]
    assert invoke(*args, "--out", out).exit_code == 0
    used = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    job = TrainJob(
        ModelConfig(n_layers=1, d_model=16, n_heads=2, d_mlp=32),
        TrainConfig(steps=60, batch_size=8, eval_every=4, checkpoint_every=5, seed=3,
                    optim=OptimConfig(warmup_steps=5)),
        DataConfig(source="task", task="copy", task_options={"length": 4, "vocab": 6}),
    )  # fmt: skip
    disk = resources.train_job_estimate(job)[0]
    assert (out / "report.html").stat().st_size > 4 * 2**20 and used <= disk, (used, disk)


def test_a_killed_report_write_is_cleaned_by_the_next_report(tmp_path, lone) -> None:
    run = tmp_path / "run"
    shutil.copytree(lone, run)
    killed = run / ".report.html.k1ll3d.tmp"
    killed.write_bytes(b"<html>" * 200_000)  # what a report write SIGKILLed mid-way leaves
    live = run / ".report.html.l1v3.tmp"  # another process writing the report right now
    live.write_bytes(b"<html>")
    fd = os.open(live, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        assert invoke("report", run).exit_code == 0
    finally:
        os.close(fd)
    assert not killed.exists() and live.exists() and (run / "report.html").is_file()


@pytest.mark.parametrize(
    "args",
    [TRAIN, ["grok", "--p", "5", "--steps", "4", "--log-every", "2", "--no-report"], COUNT],
    ids=["train", "grok", "count-sweep"],
)
def test_resume_on_an_out_not_there_yet_starts_a_new_run_and_says_so(tmp_path, args) -> None:
    out = tmp_path / "new"
    result = invoke(*args, "--out", out, "--resume")
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())  # rich wraps long lines
    assert f"nothing to resume in {out} (it does not exist yet): starting a new run there" in said
    ref = tmp_path / "ref"
    assert invoke(*args, "--out", ref).exit_code == 0
    assert strip(read_jsonl(out / "metrics.jsonl")) == strip(read_jsonl(ref / "metrics.jsonl"))
    if (ref / "results.json").exists():
        results = [json.loads((p / "results.json").read_text()) for p in (out, ref)]
        assert strip(results[0]) == strip(results[1])
