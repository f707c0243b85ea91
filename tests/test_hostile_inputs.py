"""Hostile inputs (issue #13, items 8, 10, 11, 14 and the unclear ones): each test is an attack
that broke main before the fix.

8. resuming after the corpus changed finished on other data and said nothing; a relative
   ``--corpus`` was stored as given, so the run could not be read from another directory;
10. folder corpora: a ``*.txt`` link to ``/dev/zero`` read until memory ran out, a FIFO hung,
    and a 3 GB file was read whole before a ``--max-chars 1000`` cap;
11. a loaded model's ``config.json`` was trusted: 10^7 layers hung, huge widths ended in
    allocation failures (interp runs, local GPT-2, bridge models);
14. deeply nested JSON or huge integers (config.json, env.json, metrics.jsonl,
    tokenizer_meta.json, checkpoint state, sweep cells, ``-o KEY=VALUE``) were internal errors;
and: pickle refusals printed torch's warnings (and its ``weights_only=False`` advice on the
bridge), errors of a loaded model's config did not name the file, ``-o length=true`` was read
as 1 and ``-o length=8.5`` blamed a derived field.
Found by the fuzz test's hostile files: ``precache --resume`` trained its twins through a link
planted at ``RUN/twins`` (or ``RUN/twins/seed0-vanilla``), writing outside the run.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import re
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from cli_helpers import assert_one_line_error, invoke
from hf_fixtures import save_tiny_gpt2, save_tiny_llama

from interp import load_model
from interp.errors import CorruptFileError, LoadError

ROOT = Path(__file__).resolve().parents[1]
TINY = [
    "--layers", "1", "--d-model", "16", "--heads", "2", "--d-mlp", "32", "--batch-size", "4",
    "--eval-every", "2", "--checkpoint-every", "2", "--warmup", "1", "--no-report",
]  # fmt: skip
TEXT = [*TINY, "--tokenizer", "byte", "--ctx", "16", "--max-chars", "4000"]
TASK = ["--task", "copy", "-o", "length=4", "-o", "vocab=6", *TINY]
DEEP = "[" * 100_000 + "]" * 100_000  # valid JSON, nested 100,000 levels
HUGE_INT = "1" * 5000  # an integer literal past Python's 4300-digit conversion limit


def _ends_in_one_error(result, fragment: str) -> None:
    """Exit 2, no traceback, one ``error:`` line matching ``fragment``, last (a command's
    estimate line may come before it, as in the fuzz test)."""
    lines = result.output.strip().splitlines()
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert [line for line in lines if line.startswith("error:")] == lines[-1:], result.output
    assert re.search(fragment, lines[-1]), lines[-1]


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


@contextlib.contextmanager
def _deadline(seconds: int):
    """Fail (instead of hanging the suite) when the block runs longer than ``seconds``."""

    def expire(signum, frame):
        raise TimeoutError(f"still running after {seconds} s")

    old = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def _bounded_python(code: str, extra_memory: int = 2**30, timeout: int = 90):
    """Run ``code`` in a fresh interpreter whose address space may grow by ``extra_memory``
    bytes past its imports, killed after ``timeout`` s (a hang or a runaway read fails fast)."""
    prelude = textwrap.dedent(
        f"""
        import resource
        import interp.data, interp.data.corpus
        vm = next(int(l.split()[1]) * 1024 for l in open("/proc/self/status")
                  if l.startswith("VmSize:"))
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        resource.setrlimit(resource.RLIMIT_AS, (vm + {extra_memory}, hard))
        """
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    try:
        return subprocess.run(
            [sys.executable, "-c", prelude + textwrap.dedent(code)],
            capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT,
        )  # fmt: skip
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"still running after {timeout} s (a hang): {e.stderr!r}")


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def text_run(tmp_path_factory) -> Path:
    """A text run trained from ``BASE/a`` with the relative ``--corpus corpus.txt``."""
    base = tmp_path_factory.mktemp("text")
    (base / "a").mkdir()
    (base / "a" / "corpus.txt").write_text("the quick brown fox jumps over the lazy dog\n" * 90)
    cwd = os.getcwd()
    os.chdir(base / "a")
    try:
        result = invoke("train", "--corpus", "corpus.txt", *TEXT, "--steps", "2", "--out", "run")
    finally:
        os.chdir(cwd)
    assert result.exit_code == 0, result.output
    return base / "a" / "run"


@pytest.fixture(scope="module")
def task_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("task") / "run"
    result = invoke("train", *TASK, "--steps", "2", "--out", out)
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def gpt2_dir(tmp_path_factory) -> Path:
    return save_tiny_gpt2(tmp_path_factory.mktemp("hf") / "gpt2", n_layer=1, n_embd=16, n_head=2)


@pytest.fixture(scope="module")
def llama_dir(tmp_path_factory) -> Path:
    return save_tiny_llama(
        tmp_path_factory.mktemp("hf") / "llama", n_layer=1, n_embd=16, n_head=2, n_kv_head=1,
        d_mlp=32,
    )  # fmt: skip


def _edit_config(path: Path, section: str | None = None, **changes) -> None:
    config = json.loads((path / "config.json").read_text())
    (config[section] if section else config).update(changes)
    (path / "config.json").write_text(json.dumps(config))


# ----------------------------------------------------------------------------- 8. corpus
def _moved_text_run(tmp_path: Path, text_run: Path) -> tuple[Path, Path]:
    """A copy of the text run and its corpus under ``tmp_path/a`` (so each test may edit it)."""
    a = tmp_path / "a"
    a.mkdir()
    shutil.copy(text_run.parent / "corpus.txt", a / "corpus.txt")
    run = _copy(text_run, a / "run")
    config = json.loads((run / "config.json").read_text())
    if Path(config["data"]["corpus"]).is_absolute():  # the fix: the copy names its own corpus
        _edit_config(run, "data", corpus=str(a / "corpus.txt"))
    return run, a / "corpus.txt"


def test_a_run_records_its_corpus_fingerprint_and_absolute_path(text_run) -> None:
    from interp.data import load_corpus

    config = json.loads((text_run / "config.json").read_text())
    corpus = text_run.parent / "corpus.txt"
    assert config["data"]["corpus"] == str(corpus)
    loaded = load_corpus(str(corpus), max_chars=config["data"]["max_chars"])
    assert config["corpus"]["fingerprint"] == loaded.fingerprint
    assert config["corpus"]["chars"] == loaded.n_chars


def test_resume_after_the_corpus_changed_is_refused_in_one_line(tmp_path, text_run) -> None:
    run, corpus = _moved_text_run(tmp_path, text_run)
    corpus.write_text("an entirely different text about something else\n" * 90)
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    args = ["train", "--corpus", corpus, *TEXT, "--steps", "4", "--out", run, "--resume"]
    result = invoke(*args)
    assert_one_line_error(result, r"corpus changed.*--allow-data-change")
    after = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    assert after == before  # nothing written: no config change, no new metrics


def test_allow_data_change_resumes_and_records_the_change(tmp_path, text_run) -> None:
    from interp.data import load_corpus

    run, corpus = _moved_text_run(tmp_path, text_run)
    old = json.loads((run / "config.json").read_text())["corpus"]["fingerprint"]
    corpus.write_text("an entirely different text about something else\n" * 90)
    args = ["train", "--corpus", corpus, *TEXT, "--steps", "4", "--out", run, "--resume"]
    result = invoke(*args, "--allow-data-change")
    assert result.exit_code == 0, result.output
    config = json.loads((run / "config.json").read_text())
    new = load_corpus(str(corpus), max_chars=4000).fingerprint
    assert config["corpus"]["fingerprint"] == new != old
    [change] = config["data_changes"]
    assert (change["step"], change["from"], change["to"]) == (2, old, new)
    assert config["train"]["steps"] == 4
    # the recorded corpus is now the run's: a plain resume on it goes on
    result = invoke(*args[:-5], "--steps", "6", "--out", run, "--resume")
    assert result.exit_code == 0, result.output


def test_a_run_with_a_relative_corpus_is_read_from_another_directory(
    tmp_path, text_run, monkeypatch
) -> None:
    from probes.collect import held_out_documents

    elsewhere = tmp_path / "b"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    docs, label = held_out_documents(str(text_run), None, 200, 0)
    assert docs and "validation documents of the model's training run" in label
    # --resume from there, naming the same corpus by another relative path
    run = _copy(text_run, tmp_path / "a-run")
    rel = os.path.relpath(text_run.parent / "corpus.txt", elsewhere)
    result = invoke("train", "--corpus", rel, *TEXT, "--steps", "4", "--out", run, "--resume")
    assert result.exit_code == 0, result.output


# ----------------------------------------------------------------------------- 10. folders
def test_a_folder_corpus_skips_fifos_and_device_links(tmp_path) -> None:
    folder = tmp_path / "corpus"
    folder.mkdir()
    (folder / "a.txt").write_text("real text " * 50)
    os.mkfifo(folder / "b.txt")  # nobody ever writes to it: reading it blocks for ever
    (folder / "c.txt").symlink_to("/dev/zero")  # never ends
    (folder / "d.txt").symlink_to(folder / "a.txt")  # a link to a regular file is read
    result = _bounded_python(
        f"""
        from interp.data import load_corpus
        c = load_corpus({str(folder)!r}, max_chars=100_000)
        print([len(d) for d in c.documents])
        """
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["[500,", "500]"]
    for name in ("b.txt", "c.txt"):  # given as the corpus itself: one line
        code = f"from interp.data import load_corpus\nload_corpus({str(folder / name)!r}, 100)"
        result = _bounded_python(code)
        last = result.stderr.strip().splitlines()[-1]
        assert "LoadError" in last and "not a regular file" in last, result.stderr[-2000:]


def test_a_huge_corpus_file_is_read_only_as_far_as_the_cap(tmp_path) -> None:
    big = tmp_path / "big.txt"
    with open(big, "wb") as f:  # 3 GB, sparse: text, then a hole (never read)
        f.write(b"the quick brown fox " * 100)
        f.truncate(3 * 2**30)
    result = _bounded_python(
        f"""
        from interp.data import load_corpus
        def rss_mib():
            return next(int(l.split()[1]) // 1024 for l in open("/proc/self/status")
                        if l.startswith("VmRSS:"))
        before = rss_mib()
        c = load_corpus({str(big)!r}, max_chars=1000)
        print(c.n_chars, rss_mib() - before)
        """,
        extra_memory=2**30,  # the whole file would not fit: reading it would die here
    )
    assert result.returncode == 0, result.stderr[-2000:]
    # resident memory grew by far less than the file (ru_maxrss is no measure here: a child
    # forked from a large test process starts with the parent's high-water mark)
    chars, grown_mib = map(int, result.stdout.split())
    assert chars == 1000 and grown_mib < 256


# ----------------------------------------------------------------------------- 11. lying sizes
@pytest.mark.parametrize(
    ("field", "value"),
    [("n_layers", 10**7), ("d_model", 10**9), ("d_vocab", 10**12), ("d_head", 10**9)],
)
def test_a_run_config_with_huge_sizes_is_refused_before_building(
    tmp_path, task_run, field, value
) -> None:
    run = _copy(task_run, tmp_path / "run")
    _edit_config(run, "model", **{field: value})
    with _deadline(20), pytest.raises(LoadError) as info:
        load_model(run)
    message = str(info.value)
    assert str(run / "config.json") in message and field in message, message
    result = invoke("probe", "--model", run, "--out", tmp_path / "p", "--no-report")
    assert_one_line_error(result, rf"config\.json.*{field}")


@pytest.mark.parametrize(
    ("kind", "field", "value"),
    [
        ("gpt2", "n_layer", 10**7),
        ("gpt2", "n_embd", 10**9),
        ("gpt2", "vocab_size", 10**12),
        ("llama", "num_hidden_layers", 10**7),
        ("llama", "hidden_size", 10**9),
        ("llama", "head_dim", 10**9),
    ],
)
def test_a_hugging_face_config_with_huge_sizes_is_refused_before_building(
    tmp_path, gpt2_dir, llama_dir, kind, field, value
) -> None:
    model = _copy(gpt2_dir if kind == "gpt2" else llama_dir, tmp_path / kind)
    _edit_config(model, **{field: value})
    with _deadline(20), pytest.raises(LoadError) as info:
        load_model(model)
    message = str(info.value)
    assert str(model / "config.json") in message and field in message, message


# ----------------------------------------------------------------------------- 14. JSON
@pytest.mark.parametrize("content", [DEEP, '{"kind": "train", "seed": ' + HUGE_INT + "}"])
def test_a_hostile_run_config_is_one_line_naming_it(tmp_path, task_run, content) -> None:
    run = _copy(task_run, tmp_path / "run")
    (run / "config.json").write_text(content)
    for args in (("report", run), ("probe", "--model", run, "--out", tmp_path / "p")):
        assert_one_line_error(invoke(*args), r"config\.json")


@pytest.mark.parametrize("name", ["env.json", "metrics.jsonl"])
@pytest.mark.parametrize("content", [DEEP, '{"step": ' + HUGE_INT + "}"])
def test_hostile_env_and_metrics_are_one_line_naming_them(tmp_path, task_run, name, content):
    run = _copy(task_run, tmp_path / "run")
    (run / name).write_text(content + "\n")
    assert_one_line_error(invoke("report", run), name)


@pytest.mark.parametrize("content", [DEEP, '{"kind": "byte", "vocab_size": ' + HUGE_INT + "}"])
def test_a_hostile_tokenizer_meta_is_one_line_naming_it(tmp_path, text_run, content) -> None:
    run = _copy(text_run, tmp_path / "run")
    (run / "tokenizer" / "tokenizer_meta.json").write_text(content)
    with pytest.raises(CorruptFileError, match="tokenizer_meta.json"):
        load_model(run)


@pytest.mark.parametrize("content", [DEEP, '{"step": ' + HUGE_INT + "}"])
def test_a_hostile_checkpoint_state_is_one_line_naming_it(tmp_path, task_run, content) -> None:
    run = _copy(task_run, tmp_path / "run")
    [state] = run.glob("checkpoints/step_*/state.json")
    state.write_text(content)
    result = invoke("train", *TASK, "--steps", "4", "--out", run, "--resume")
    assert_one_line_error(result, "state.json")


@pytest.mark.parametrize("content", [DEEP, '{"d": 4, "m": 4, "accuracy": ' + HUGE_INT + "}"])
def test_a_hostile_sweep_cell_is_one_line_naming_it(tmp_path, content) -> None:
    out = tmp_path / "sweep"
    sweep = ["count", "sweep", "--d", "4", "--m", "2,4", "--steps", "1", "--eval-samples", "2"]
    result = invoke(*sweep, "--out", out)
    assert result.exit_code == 0, result.output
    cell = sorted(out.glob("cells/d*_m*.json"))[0]
    cell.write_text(content)
    _ends_in_one_error(invoke(*sweep, "--out", out, "--resume"), re.escape(cell.name))


@pytest.mark.parametrize("value", [DEEP, "[" * 100_000, HUGE_INT, "[" + HUGE_INT + "]"])
def test_a_hostile_option_value_is_one_line_naming_the_option(tmp_path, value) -> None:
    result = invoke("train", "--task", "copy", "-o", f"length={value}", "--out", tmp_path / "r")
    assert_one_line_error(result, "length")
    assert not (tmp_path / "r").exists()


# ----------------------------------------------------------------------------- unclear items
@pytest.mark.parametrize("kind", ["gpt2", "llama"])
def test_a_refused_pickle_prints_one_line_and_no_torch_advice(tmp_path, gpt2_dir, llama_dir, kind):
    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'ran'}",))

    model = _copy(gpt2_dir if kind == "gpt2" else llama_dir, tmp_path / kind)
    (model / "model.safetensors").unlink()
    with open(model / "pytorch_model.bin", "wb") as f:  # a raw pickle (protocol 4): torch warns
        pickle.dump({"w": Payload()}, f, protocol=4)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    args = ["collapse", "--model", str(model), "--out", str(tmp_path / "o"), "--lengths", "2:3"]
    proc = subprocess.run(
        [sys.executable, "-m", "cli.main", *args], capture_output=True, text=True, env=env,
        cwd=tmp_path, timeout=180,
    )  # fmt: skip
    output = (proc.stdout + proc.stderr).strip()
    assert proc.returncode == 2, output
    assert output.splitlines() == [output.splitlines()[-1]], output  # exactly one line
    assert output.startswith("error: refusing to load") and "pytorch_model.bin" in output
    assert "weights_only=False" not in output and "set to `False`" not in output
    assert not (tmp_path / "ran").exists()


def test_errors_of_a_loaded_model_config_name_the_file(tmp_path, task_run, gpt2_dir) -> None:
    run = _copy(task_run, tmp_path / "run")
    _edit_config(run, "model", n_layers="two")
    with pytest.raises(LoadError, match="n_layers") as info:
        load_model(run)
    assert str(run / "config.json") in str(info.value)
    for field, value in (("n_embd", -1), ("n_head", 3)):  # 16 is not divisible by 3
        hf = _copy(gpt2_dir, tmp_path / f"hf-{field}")
        _edit_config(hf, **{field: value})
        with pytest.raises(LoadError) as info:
            load_model(hf)
        assert str(hf / "config.json") in str(info.value), str(info.value)


@pytest.mark.parametrize(
    ("option", "fragment"),
    [("length=true", "length must be an integer"), ("length=8.5", "length must be an integer")],
)
def test_task_option_types_are_checked_naming_the_option(tmp_path, option, fragment) -> None:
    result = invoke("train", "--task", "copy", "-o", option, "--out", tmp_path / "r")
    assert_one_line_error(result, fragment)
    assert not (tmp_path / "r").exists()


# ----------------------------------------------------------------------------- found by the fuzz
PRECACHE = [
    "precache", "--task", "precache", "-o", "length=4", "--layers", "1", "--d-model", "8",
    "--heads", "1", "--d-mlp", "0", "--ctx", "8", "--steps", "1", "--batch-size", "2",
    "--eval-every", "1", "--seeds", "0,", "--probe-horizons", "1", "--probe-tokens", "50",
    "--tokenizer", "byte",
]  # fmt: skip


@pytest.mark.parametrize("planted", ["twins", "twins/seed0-vanilla"])
def test_a_link_planted_in_a_sub_run_is_refused_on_resume(tmp_path, planted) -> None:
    """precache --resume wrote its twins' runs through a planted ``RUN/twins`` link."""
    run = tmp_path / "run"
    assert invoke(*PRECACHE, "--out", run).exit_code == 0
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep.txt").write_text("not yours")
    target = run / planted
    if target.exists():
        shutil.rmtree(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.symlink_to(victim)
    assert_one_line_error(invoke(*PRECACHE, "--out", run, "--resume"), "symbolic link")
    assert sorted(p.name for p in victim.iterdir()) == ["keep.txt"]
    # a FIFO anywhere in the run (it would hang the first read or append) is refused too
    target.unlink()
    os.mkfifo(target)
    assert_one_line_error(invoke(*PRECACHE, "--out", run, "--resume"), "not a regular file")
