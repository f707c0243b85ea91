"""Hostile input: hypothesis drives every ``interp`` command with random and malformed arguments.

Every case must end with exit 0, or with exactly one ``error: ...`` line and a non-zero exit:
never a traceback, never an "internal error" (``INTERP_DEBUG=1`` makes those raise, so they
fail here instead of hiding behind the CLI's last line of defence), and never a write outside
the requested output directory.  Each case runs with its cwd and ``INTERP_CACHE`` inside its own
temporary directory; the file tree of that directory (and of ``~/.cache/interp``) is compared
before and after, and only these may change: ``--out`` paths, ``./runs`` (default outputs), the
cache (where the default model lives), ``MODEL/analyses`` + ``MODEL/report.html`` of a run given
as ``--model``, and ``RUN/report.html`` for ``interp report RUN``.

Commands are enumerated from the Typer app, so a new command fails
``test_every_command_has_a_strategy`` until it gets a strategy in ``SPECS``.  Valid values are
drawn from small ranges (every valid case finishes in about a second); huge values are drawn for
sizes, work counts (steps, samples, seeds, tokens) and list/range options, which must be refused
(memory preflight, or the limits of ``interp/resources.py``) before anything is allocated.  The
default model is replaced by a tiny one (built once per session), so a command without ``--model``
never trains the real demo.
Hostile files (``test_hostile_files``): copies of real runs with one hostile part each (a link
into a VICTIM folder in every sub-folder a command writes: checkpoints, analyses, tokenizer,
cells, models, twins; FIFOs and ``/dev/zero`` links where it reads; nested or huge JSON in every
JSON it reads; lying model sizes in interp, GPT-2 and Llama configs; pickled weights), folder
corpora holding a FIFO or a device link, a 3 GB corpus file, and hostile ``-o`` values, each run
once by every command that reads or writes it.  They are drawn by the random cases too.
Fixed seed (``derandomize``); the number of cases is printed at the end of the module.
"""

from __future__ import annotations

import os
import random
import resource
import shutil
import signal
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import click
import pytest
import typer
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from cli.main import app

SCALE = float(os.environ.get("INTERP_FUZZ_SCALE", "1"))  # more cases: INTERP_FUZZ_SCALE=10
CASE_SECONDS = 30  # one case running longer than this is a finding (a valid case takes ~1 s)
MEMORY_HEADROOM = 3 * 2**30  # address space a case may add: an unrefused huge size fails fast


# --------------------------------------------------------------------------- input fixtures


@dataclass(frozen=True)
class Fx:
    """A placeholder for a fixture path, resolved inside each case's directory."""

    name: str

    def __repr__(self) -> str:
        return f"<{self.name}>"


RUN_FIXTURES = (
    "MODEL",
    "BAD_JSON_RUN",
    "LIST_JSON_RUN",
    "WRONG_TYPES_RUN",
    "TRUNCATED_WEIGHTS_RUN",
    "GARBAGE_WEIGHTS_RUN",
    "PICKLE_WEIGHTS_RUN",
    "EMPTY_WEIGHTS_RUN",
    "NO_WEIGHTS_RUN",
    "CORRUPT_METRICS_RUN",
    "TRUNCATED_CHECKPOINT_RUN",
)
BAD_PATHS = (
    "MISSING",
    "UNREADABLE_FILE",
    "UNREADABLE_DIR",
    "EMPTY_DIR",
    "EXISTING_FILE",
    "NONRUN_DIR",
    "HF_BAD_CONFIG",
    "UNKNOWN_KIND_RUN",
    "CORRUPT_RESULTS_RUN",
    *RUN_FIXTURES[1:],
)
CORPORA = ("CORPUS", "EMPTY_CORPUS", "BLANK_CORPUS", "BINARY_CORPUS", "TINY_CORPUS")

# Hostile run directories and files (issue #13): built once by _build_hostile, copied per case
# with their links and FIFOs as they are.  VICTIM is a folder outside every --out: a link planted
# in a run points at it, and any write there is caught as a write outside the output directory.
DEEP = "[" * 100_000 + "]" * 100_000  # valid JSON nested 100,000 levels
HUGE_INT = "7" * 5000  # an integer literal past Python's 4300-digit limit
# what a tiny text run was trained with (its --resume must match, to reach the files below)
TRAIN_RUN_ARGS = [
    "--corpus", "builtin:prose", "--tokenizer", "byte", "--max-chars", "3000", "--layers", "1",
    "--d-model", "16", "--heads", "2", "--d-mlp", "16", "--ctx", "64", "--batch-size", "2",
    "--eval-every", "2", "--checkpoint-every", "2", "--warmup", "1", "--no-report",
]  # fmt: skip
# TRAIN_RUN copies, each with one hostile part: links into VICTIM where interp writes, FIFOs and
# /dev/zero links where it reads, deep or huge JSON in every JSON it reads, lying sizes
HOSTILE_RUNS = {
    "LINK_CKPT_RUN": ("link", "checkpoints", "../VICTIM"),
    "LINK_STEP_RUN": ("link", "checkpoints/step_0000001", "../../VICTIM"),
    "LINK_LATEST_RUN": ("link", "checkpoints/latest.json", "../../VICTIM/keep.json"),
    "LINK_TOKENIZER_RUN": ("link", "tokenizer", "../VICTIM"),
    "LINK_ANALYSES_RUN": ("link", "analyses", "../VICTIM"),
    "LINK_ANALYSIS_RUN": ("link", "analyses/probe", "../../VICTIM"),
    "LINK_METRICS_RUN": ("link", "metrics.jsonl", "../VICTIM/keep.json"),
    "LINK_ENV_RUN": ("link", "env.json", "../VICTIM/keep.json"),
    "LINK_WEIGHTS_RUN": ("link", "model.safetensors", "../VICTIM/keep.json"),
    "LINK_REPORT_RUN": ("link", "report.html", "../VICTIM/keep.json"),
    "FIFO_CONFIG_RUN": ("fifo", "config.json", None),
    "FIFO_ENV_RUN": ("fifo", "env.json", None),
    "FIFO_METRICS_RUN": ("fifo", "metrics.jsonl", None),
    "FIFO_WEIGHTS_RUN": ("fifo", "model.safetensors", None),
    "FIFO_TOKMETA_RUN": ("fifo", "tokenizer/tokenizer_meta.json", None),
    "FIFO_STATE_RUN": ("fifo", "checkpoints/step_0000002/state.json", None),
    "ZERO_CONFIG_RUN": ("link", "config.json", "/dev/zero"),
    "ZERO_WEIGHTS_RUN": ("link", "model.safetensors", "/dev/zero"),
    "ZERO_METRICS_RUN": ("link", "metrics.jsonl", "/dev/zero"),
    "DEEP_CONFIG_RUN": ("text", "config.json", DEEP),
    "HUGE_CONFIG_RUN": ("json", "config.json", ("seed", HUGE_INT)),
    "NEST99_CONFIG_RUN": ("json", "config.json", ("note", "[" * 98 + "]" * 98)),
    "DEEP_TASKOPT_RUN": ("json", "config.json", ("data.task_options", DEEP)),
    "DEEP_ENV_RUN": ("text", "env.json", DEEP),
    "HUGE_ENV_RUN": ("text", "env.json", '{"seed": ' + HUGE_INT + "}"),
    "DEEP_METRICS_RUN": ("append", "metrics.jsonl", DEEP + "\n"),
    "HUGE_METRICS_RUN": ("append", "metrics.jsonl", '{"step": ' + HUGE_INT + "}\n"),
    "LIST_METRICS_RUN": ("append", "metrics.jsonl", "[1, 2]\n"),
    "DEEP_TOKMETA_RUN": ("text", "tokenizer/tokenizer_meta.json", DEEP),
    "HUGE_TOKMETA_RUN": ("text", "tokenizer/tokenizer_meta.json", '{"kind": "byte", "vocab_size": ' + HUGE_INT + "}"),
    "DEEP_STATE_RUN": ("text", "checkpoints/step_0000002/state.json", DEEP),
    "HUGE_STATE_RUN": ("text", "checkpoints/step_0000002/state.json", '{"step": ' + HUGE_INT + "}"),
    "DEEP_LATEST_RUN": ("text", "checkpoints/latest.json", DEEP),
    "DEEP_RESULTS_RUN": ("text", "analyses/probe/results.json", DEEP),
    "HUGE_RESULTS_RUN": ("text", "analyses/probe/results.json", '{"horizon": ' + HUGE_INT + "}"),
    "LYING_LAYERS_RUN": ("json", "config.json", ("model.n_layers", "10000000")),
    "LYING_DMODEL_RUN": ("json", "config.json", ("model.d_model", "1000000000")),
    "LYING_VOCAB_RUN": ("json", "config.json", ("model.d_vocab", "1000000000000")),
    "LYING_DHEAD_RUN": ("json", "config.json", ("model.d_head", "1000000000")),
    "LYING_CTX_RUN": ("json", "config.json", ("model.n_ctx", "1000000000000")),
    "LYING_MLP_RUN": ("json", "config.json", ("model.d_mlp", str(10**40))),
}  # fmt: skip
# tiny Hugging Face directories (GPT-2: imported; Llama: TransformerBridge), then hostile copies
HOSTILE_HF = {
    "HF_LYING_LAYERS": ("gpt2", "json", "config.json", ("n_layer", "10000000")),
    "HF_LYING_EMBD": ("gpt2", "json", "config.json", ("n_embd", "1000000000")),
    "HF_LYING_VOCAB": ("gpt2", "json", "config.json", ("vocab_size", "1000000000000")),
    "HF_LYING_POSITIONS": ("gpt2", "json", "config.json", ("n_positions", "1000000000000")),
    "HF_DEEP_CONFIG": ("gpt2", "text", "config.json", DEEP),
    "HF_HUGE_CONFIG": ("gpt2", "json", "config.json", ("n_layer", HUGE_INT)),
    "HF_FIFO_CONFIG": ("gpt2", "fifo", "config.json", None),
    "HF_ZERO_CONFIG": ("gpt2", "link", "config.json", "/dev/zero"),
    "HF_FIFO_WEIGHTS": ("gpt2", "fifo", "model.safetensors", None),
    "HF_DEEP_TOKENIZER": ("gpt2", "text", "tokenizer.json", DEEP),
    "HF_PICKLE": ("gpt2", "pickle", "pytorch_model.bin", None),
    "LLAMA_LYING_LAYERS": ("llama", "json", "config.json", ("num_hidden_layers", "10000000")),
    "LLAMA_LYING_HIDDEN": ("llama", "json", "config.json", ("hidden_size", "1000000000")),
    "LLAMA_LYING_HEAD_DIM": ("llama", "json", "config.json", ("head_dim", "1000000000")),
    "LLAMA_LYING_VOCAB": ("llama", "json", "config.json", ("vocab_size", "1000000000000")),
    "LLAMA_DEEP_CONFIG": ("llama", "text", "config.json", DEEP),
    "LLAMA_FIFO_CONFIG": ("llama", "fifo", "config.json", None),
    "LLAMA_PICKLE": ("llama", "pickle", "pytorch_model.bin", None),
}  # fmt: skip
# folder corpora with a FIFO or a /dev/zero link named *.txt, and both given as the corpus itself;
# BIG_CORPUS (3 GB, sparse) is not copied per case: it is only ever read
HOSTILE_CORPORA = (
    "FIFO_FOLDER_CORPUS", "ZERO_FOLDER_CORPUS", "FIFO_CORPUS", "ZERO_CORPUS", "BIG_CORPUS",
)  # fmt: skip
# experiment runs a --resume reopens (made with these arguments), and their hostile copies
RESUMABLE = {
    "COUNT_SWEEP": (
        ("count", "sweep"),
        ["--d", "4", "--m", "2", "--steps", "1", "--eval-samples", "2", "--layers", "1",
         "--heads", "1"],
    ),
    "GROK_RUN": (
        ("grok",),
        ["--task", "modadd", "--p", "5", "--steps", "2", "--log-every", "1",
         "--checkpoint-every", "1", "--width", "4", "--no-report"],
    ),
    "GROK_SWEEP": (
        ("grok", "sweep"),
        ["--task", "modadd", "--p", "5", "--weight-decays", "0", "--train-fractions", "0.5",
         "--widths", "4", "--seeds", "0,", "--steps", "2", "--log-every", "1", "--no-report"],
    ),
    "PE_RUN": (
        ("pe-bench",),
        ["--task", "copy", "-o", "length=4", "--pe", "none", "--seeds", "0", "--steps", "1",
         "--batch-size", "2", "--layers", "1", "--d-model", "8", "--heads", "1", "--d-mlp", "0",
         "--eval-sequences", "2"],
    ),
    "PRECACHE_RUN": (
        ("precache",),
        ["--task", "precache", "-o", "length=4", "--layers", "1", "--d-model", "8", "--heads",
         "1", "--d-mlp", "0", "--ctx", "8", "--steps", "1", "--batch-size", "2", "--eval-every",
         "1", "--seeds", "0,", "--probe-horizons", "1", "--probe-tokens", "50", "--tokenizer",
         "byte"],
    ),
}  # fmt: skip
HOSTILE_RESUMABLE = {
    "LINK_COUNT_CELLS": ("COUNT_SWEEP", "link", "cells", "../VICTIM"),
    "DEEP_COUNT_CELL": ("COUNT_SWEEP", "text", "cells/d0004_m0002.json", DEEP),
    "HUGE_COUNT_CELL": ("COUNT_SWEEP", "text", "cells/d0004_m0002.json", '{"d": ' + HUGE_INT + "}"),
    "FIFO_COUNT_CELL": ("COUNT_SWEEP", "fifo", "cells/d0004_m0002.json", None),
    "DEEP_COUNT_PENDING": ("COUNT_SWEEP", "text", "cells/.pending.json", DEEP),
    "DEEP_COUNT_CONFIG": ("COUNT_SWEEP", "text", "config.json", DEEP),
    "LINK_GROK_CKPT": ("GROK_RUN", "link", "checkpoints", "../VICTIM"),
    "DEEP_GROK_STATE": ("GROK_RUN", "text", "checkpoints/step_0000002/state.json", DEEP),
    "DEEP_GROK_CONFIG": ("GROK_RUN", "text", "config.json", DEEP),
    "LINK_GROK_CELLS": ("GROK_SWEEP", "link", "cells", "../VICTIM"),
    "DEEP_GROK_CELL": ("GROK_SWEEP", "text", "cells/group_000.json", DEEP),
    "HUGE_GROK_CELL": ("GROK_SWEEP", "text", "cells/group_000.json", '{"group": ' + HUGE_INT + "}"),
    "LINK_PE_CELLS": ("PE_RUN", "link", "cells", "../VICTIM"),
    "LINK_PE_MODELS": ("PE_RUN", "link", "models", "../VICTIM"),
    "DEEP_PE_CELL": ("PE_RUN", "text", "cells/task-none-seed0.json", DEEP),
    "LINK_PRECACHE_TWINS": ("PRECACHE_RUN", "link", "twins", "../VICTIM"),
    "LINK_PRECACHE_TWIN_CKPT": ("PRECACHE_RUN", "link", "twins/seed0-vanilla/checkpoints", "../../../VICTIM"),
    "DEEP_PRECACHE_TWIN": ("PRECACHE_RUN", "text", "twins/seed0-vanilla/config.json", DEEP),
    "DEEP_PRECACHE_RESULTS": ("PRECACHE_RUN", "text", "results.json", DEEP),
}  # fmt: skip
HOSTILE_OPTIONS = (
    f"length={DEEP}", "length=" + "[" * 100_000, f"length={HUGE_INT}", f"length=[{HUGE_INT}]",
    "length=true", "length=8.5", "length=1e999", "length=NaN", "vocab=-Infinity",
)  # fmt: skip


def _tiny_demo_configs():
    from interp.config import DataConfig, ModelConfig, OptimConfig, TrainConfig

    model = ModelConfig(n_layers=1, d_model=16, n_heads=2, d_mlp=32, n_ctx=64, positional="rope")
    train = TrainConfig(
        steps=2,
        batch_size=4,
        eval_every=2,
        eval_batches=1,
        checkpoint_every=2,
        log_every=1,
        seed=0,
        optim=OptimConfig(lr=1e-3, warmup_steps=1),
    )
    data = DataConfig(source="corpus", corpus="builtin:prose", max_chars=20_000, tokenizer="byte")
    return model, train, data


def _corrupt_run(src: Path, dst: Path, edit: Callable[[Path], None]) -> None:
    shutil.copytree(src, dst)
    edit(dst)


def _build_template(root: Path) -> tuple[Path, Path]:
    """Fixture files (``root/fx``) and a cache holding the tiny default model (``root/cache``)."""
    import torch

    from interp.demo import ensure_demo_model

    fx, cache = root / "fx", root / "cache"
    os.environ["INTERP_CACHE"] = str(cache)
    run, _ = ensure_demo_model()
    model = fx / "MODEL"
    shutil.copytree(run.path, model, ignore=shutil.ignore_patterns("report.html"))
    rng = random.Random(0)
    weights = (model / "model.safetensors").read_bytes()

    def write(name: str, data: bytes | str) -> Callable[[Path], None]:
        def edit(path: Path) -> None:
            target = path / name
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(data, str):
                target.write_text(data, encoding="utf-8")
            else:
                target.write_bytes(data)

        return edit

    pickle_path = root / "pickle.pt"
    torch.save({"W_E": torch.zeros(2, 2)}, pickle_path)
    edits = {
        "BAD_JSON_RUN": write("config.json", '{"kind": "train", "model": {"n_layers": 1,'),
        "LIST_JSON_RUN": write("config.json", "[1, 2, 3]"),
        "WRONG_TYPES_RUN": write(
            "config.json", '{"kind": "train", "model": {"n_layers": "two", "d_model": -4}}'
        ),
        "TRUNCATED_WEIGHTS_RUN": write("model.safetensors", weights[: len(weights) // 2]),
        "GARBAGE_WEIGHTS_RUN": write("model.safetensors", rng.randbytes(4096)),
        "PICKLE_WEIGHTS_RUN": write("model.safetensors", pickle_path.read_bytes()),
        "EMPTY_WEIGHTS_RUN": write("model.safetensors", b""),
        "NO_WEIGHTS_RUN": lambda p: (p / "model.safetensors").unlink(),
        "CORRUPT_METRICS_RUN": write("metrics.jsonl", '{"step": 1, "loss": 2}\n{"step": 2, "lo'),
        "UNKNOWN_KIND_RUN": write("config.json", '{"kind": "no-such-kind"}'),
        "CORRUPT_RESULTS_RUN": lambda p: (
            write("config.json", '{"kind": "probe"}')(p),
            write("results.json", '{"probes": {"future_lens": ')(p),
        ),
    }
    for name, edit in edits.items():
        _corrupt_run(model, fx / name, edit)
    checkpoints = sorted((fx / "TRUNCATED_CHECKPOINT_RUN").glob("checkpoints/step_*"))
    if not checkpoints:
        shutil.copytree(model, fx / "TRUNCATED_CHECKPOINT_RUN")
        checkpoints = sorted((fx / "TRUNCATED_CHECKPOINT_RUN").glob("checkpoints/step_*"))
    for f in checkpoints[-1].glob("*.safetensors"):
        f.write_bytes(f.read_bytes()[:100])
    (fx / "EMPTY_DIR").mkdir()
    (fx / "NONRUN_DIR").mkdir()
    (fx / "NONRUN_DIR" / "notes.txt").write_text("not a run")
    (fx / "HF_BAD_CONFIG").mkdir()
    (fx / "HF_BAD_CONFIG" / "config.json").write_text('{"model_type": "gpt2", "n_embd": -1}')
    (fx / "EXISTING_FILE").write_text("just a file\n")
    (fx / "CORPUS").write_text(("the quick brown fox jumps over the lazy dog. " * 80) + "\n")
    (fx / "EMPTY_CORPUS").write_text("")
    (fx / "BLANK_CORPUS").write_text(" \n\t\n  \n")
    (fx / "BINARY_CORPUS").write_bytes(rng.randbytes(3000) + b"\x00\xff\xfe" * 100)
    (fx / "TINY_CORPUS").write_text("ab")
    _build_hostile(root, fx)
    return fx, cache


def _invoke_ok(*args: object) -> None:
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, f"building a fixture: interp {args}: {result.output[-2000:]}"


def _plant(base: Path, kind: str, rel: str, data) -> None:
    """One hostile part in the copy ``base``: a link, a FIFO, a file's text, appended text, a
    JSON field set to raw JSON text (``data = ("a.b", text)``), or a pickle for the weights."""
    target = base / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    if kind in ("link", "fifo") and (target.exists() or target.is_symlink()):
        shutil.rmtree(target) if target.is_dir() and not target.is_symlink() else target.unlink()
    if kind == "link":
        os.symlink(data, target)
    elif kind == "fifo":
        os.mkfifo(target)
    elif kind == "text":
        target.write_text(data)
    elif kind == "append":
        with open(target, "a") as f:
            f.write(data)
    elif kind == "json":
        import json

        key, raw = data
        config = json.loads(target.read_text())
        *parents, leaf = key.split(".")
        node = config
        for part in parents:
            node = node[part]
        node[leaf] = "@@RAW@@"
        target.write_text(json.dumps(config).replace('"@@RAW@@"', raw))
    elif kind == "pickle":
        import pickle

        class Payload:  # unpickling it would create VICTIM/ran: a write outside --out
            def __reduce__(self):
                return (os.system, ("touch ../VICTIM/ran",))

        for weights in base.glob("*.safetensors"):
            weights.unlink()
        target.write_bytes(pickle.dumps({"w": Payload()}, protocol=4))
    else:  # pragma: no cover
        raise ValueError(kind)


def _build_hostile(root: Path, fx: Path) -> None:
    """The hostile run directories, Hugging Face directories, resumable runs and corpora."""
    from hf_fixtures import save_tiny_gpt2, save_tiny_llama

    (fx / "VICTIM").mkdir()
    (fx / "VICTIM" / "keep.json").write_text('{"not": "yours"}\n')
    _invoke_ok("train", *TRAIN_RUN_ARGS, "--steps", "2", "--out", fx / "TRAIN_RUN")
    _invoke_ok("probe", "--model", fx / "TRAIN_RUN", "--tokens", "50", "--horizon", "1",
               "--seq-len", "8", "--batch-size", "2", "--out", root / "probe-of-train-run",
               "--no-report", "--dataset", "builtin:prose")  # fmt: skip
    for name, (kind, rel, data) in HOSTILE_RUNS.items():
        shutil.copytree(fx / "TRAIN_RUN", fx / name)
        _plant(fx / name, kind, rel, data)
    save_tiny_gpt2(fx / "HF_GPT2", n_layer=1, n_embd=16, n_head=2)
    save_tiny_llama(fx / "HF_LLAMA", n_layer=1, n_embd=16, n_head=2, n_kv_head=1, d_mlp=32)
    for name, (base, kind, rel, data) in HOSTILE_HF.items():
        shutil.copytree(fx / ("HF_GPT2" if base == "gpt2" else "HF_LLAMA"), fx / name)
        _plant(fx / name, kind, rel, data)
    for name, (path, args) in RESUMABLE.items():
        _invoke_ok(*path, *args, "--out", fx / name)
    for name, (base, kind, rel, data) in HOSTILE_RESUMABLE.items():
        shutil.copytree(fx / base, fx / name)
        _plant(fx / name, kind, rel, data)
    text = "a folder corpus beside a FIFO and a link to /dev/zero. " * 40
    for name, plant in (("FIFO_FOLDER_CORPUS", os.mkfifo), ("ZERO_FOLDER_CORPUS", None)):
        (fx / name).mkdir()
        (fx / name / "good.txt").write_text(text)
        plant(fx / name / "a.txt") if plant else os.symlink("/dev/zero", fx / name / "a.txt")
    os.mkfifo(fx / "FIFO_CORPUS")
    os.symlink("/dev/zero", fx / "ZERO_CORPUS")
    big = root / "big" / "BIG_CORPUS.txt"  # 3 GB, sparse: text, then a hole
    big.parent.mkdir()
    with open(big, "wb") as f:
        f.write(("a 3 GB corpus file read only as far as the cap. " * 40_000).encode())
        f.truncate(3 * 2**30)


def _copy_entry(src: str, dst: str) -> None:
    if stat.S_ISFIFO(os.lstat(src).st_mode):
        os.mkfifo(dst)
    else:
        shutil.copy2(src, dst, follow_symlinks=False)


def _copy_fixture(src: Path, dst: Path) -> None:
    """Copy a fixture as it is: links stay links (never followed: /dev/zero), FIFOs stay FIFOs."""
    mode = os.lstat(src).st_mode
    if stat.S_ISLNK(mode):
        os.symlink(os.readlink(src), dst)
    elif stat.S_ISDIR(mode):
        shutil.copytree(src, dst, symlinks=True, copy_function=_copy_entry)
    else:
        _copy_entry(str(src), str(dst))


@pytest.fixture(scope="module")
def world(tmp_path_factory, request):
    """The template fixtures, with the demo model swapped for a tiny one and debug errors on."""
    import torch

    import interp.demo
    import interp.resources

    model, train, data = _tiny_demo_configs()
    saved_env = {k: os.environ.get(k) for k in ("INTERP_CACHE", "INTERP_DEBUG")}
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(interp.demo, "DEMO_MODEL", model)
        mp.setattr(interp.demo, "DEMO_TRAIN", train)
        mp.setattr(interp.demo, "DEMO_DATA", data)
        from helpers import tiny_tour

        import interp.experiments.demo

        mp.setattr(interp.experiments.demo, "TOUR", tiny_tour())  # the tour at test size
        # preflight checks see the address space a case may use: what does not fit is refused
        mp.setattr(interp.resources, "available_memory", lambda: MEMORY_HEADROOM // 2)
        torch.set_num_threads(1)
        root = tmp_path_factory.mktemp("fuzz-template")
        fx, cache = _build_template(root)
        yield World(fx=fx, cache=cache, cases=tmp_path_factory.mktemp("fuzz-cases"))
    for k, v in saved_env.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    _print_count(request.config.pluginmanager.get_plugin("capturemanager"))


@dataclass
class World:
    fx: Path
    cache: Path
    cases: Path
    counter: int = 0


# --------------------------------------------------------------------------- value strategies

SMALL_TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
GARBAGE = st.one_of(
    st.sampled_from(["", " ", "abc", "--", "-", "None", "null", "[]", "{}", "%s", "\\", "é"]),
    SMALL_TEXT,
)
BAD_COUNT = st.sampled_from(["0", "-1", "-7", "nan", "inf", "-inf", "1.5", "1e3", "0x10", ""])
HUGE = st.sampled_from(["1000000", "1000000000", str(2**40), str(2**63), str(2**70)])
# a count of work (steps, samples, tokens, seeds): a huge one is refused by the limits of
# interp/resources.py (all at most 10**8) or is harmless (--eval-every), never run for ever
HUGE_COUNT = st.sampled_from(["1000000000", str(2**40), str(2**63), str(2**70)])
BAD_DIM = st.one_of(BAD_COUNT, HUGE)
BAD_SEED = st.sampled_from(["-1", str(2**63), str(2**64), str(2**70), "nan", "1.5", "x"])
BAD_FLOAT = st.sampled_from(
    ["nan", "inf", "-inf", "-1", "0", "1e308", "-1e308", "1e-320", "abc", "", "1,5", "2"]
)
BAD_DEVICE = st.sampled_from(["cuda", "cuda:7", "mps", "meta", "tpu", "cpu:3", "", "xla", "CPU"])
BAD_LIST = st.one_of(
    st.sampled_from(
        [
            "",
            ",",
            ",,",
            "1..",
            "..4",
            "8..4",
            "4..8:0",
            "4..8:-1",
            "0",
            "-4",
            "1..1000000000",
            "0..1099511627776:2",
            "1.." + str(2**70),
            ",".join(["3"] * 1500),
            "4,x",
            "nan",
            "inf",
            "1e9",
            "99999999999999999999",
            "4:8",
            " 4 , 8 ",
        ]
    ),
    st.text(alphabet="0123456789,.:-x ", max_size=10),
)
BAD_PATH = st.one_of(
    st.sampled_from([Fx(n) for n in BAD_PATHS]),
    st.just("nowhere/at/all"),
    st.sampled_from([Fx(n) for n in (*HOSTILE_RUNS, *HOSTILE_HF)]),
)
OUT_PATHS = st.sampled_from(
    [
        Fx("OUT"),
        Fx("OUT_NESTED"),
        Fx("EXISTING_FILE"),
        Fx("EXISTING_RUN"),
        Fx("NONRUN_DIR"),
        Fx("EMPTY_DIR"),
        Fx("UNREADABLE_DIR"),
        "",
        "rel-out",
    ]
)
# --out of a command that resumes or overwrites: also the hostile runs
RUN_OUT_PATHS = st.one_of(
    OUT_PATHS, st.sampled_from([Fx(n) for n in (*HOSTILE_RUNS, *HOSTILE_RESUMABLE)])
)


def ints(lo: int, hi: int) -> st.SearchStrategy[str]:
    return st.integers(lo, hi).map(str)


def choice(*values: str) -> st.SearchStrategy[str]:
    return st.sampled_from(values)


@dataclass
class Opt:
    """One option: how to draw a valid (cheap) value, and how to draw a hostile one."""

    valid: st.SearchStrategy | None  # None: a flag (no value)
    bad: st.SearchStrategy = GARBAGE
    always: bool = False  # always given (its default would be slow)


def count(lo: int, hi: int, always: bool = True) -> Opt:
    return Opt(ints(lo, hi), st.one_of(BAD_COUNT, HUGE_COUNT, GARBAGE), always)


def dim(lo: int, hi: int, always: bool = True) -> Opt:
    return Opt(ints(lo, hi), st.one_of(BAD_DIM, GARBAGE), always)


def flt(valid: st.SearchStrategy[str]) -> Opt:
    return Opt(valid, st.one_of(BAD_FLOAT, GARBAGE))


def text(valid: st.SearchStrategy[str], always: bool = False) -> Opt:
    return Opt(valid, GARBAGE, always)


SEED = Opt(ints(0, 5), BAD_SEED)
DEVICE = Opt(st.just("cpu"), BAD_DEVICE)
FLAG = Opt(None)
OUT = Opt(st.just(Fx("OUT")), OUT_PATHS, always=True)
RUN_OUT = Opt(st.just(Fx("OUT")), RUN_OUT_PATHS, always=True)
# the sweeps' executor: local only when valid (a Ray start takes ~10 s; tests/test_ray.py runs
# it); --ray-address without --executor ray is refused in one line
EXECUTOR = Opt(choice("local"), st.one_of(GARBAGE, choice("dask", "", "RAY", "local,ray")))
RAY_ADDRESS = Opt(choice("127.0.0.1:6379", "ray://head:10001"), GARBAGE)
HOSTILE_OPTION = st.one_of(GARBAGE, st.sampled_from(HOSTILE_OPTIONS))
MODEL = Opt(st.just(Fx("MODEL")), st.one_of(BAD_PATH, st.just("no-such-org/no-such-model")))


@dataclass
class Spec:
    options: dict[str, Opt]
    examples: int
    positional: list[tuple[st.SearchStrategy, st.SearchStrategy]] = field(default_factory=list)
    prefix: list[str] = field(default_factory=list)  # always-given tokens (e.g. a task)
    only_invalid: bool = False  # a valid case would be too slow: at least one hostile value
    explicit: list[list] = field(default_factory=list)  # fixed cases: test_hostile_files


SPECS: dict[tuple[str, ...], Spec] = {
    ("train",): Spec(
        {
            "--out": RUN_OUT,
            "--corpus": text(
                st.sampled_from(
                    [Fx("CORPUS"), "builtin:prose", *(Fx(c) for c in (*CORPORA, *HOSTILE_CORPORA))]
                ),
            ),
            "--task": text(choice("copy")),
            "--task-option": Opt(
                choice("length=3", "vocab=5", "length=x", "vocab", "="), HOSTILE_OPTION
            ),
            "--layers": dim(1, 1),
            "--d-model": dim(8, 16),
            "--heads": dim(1, 2),
            "--d-mlp": dim(0, 16),
            "--ctx": dim(8, 16),
            "--pe": text(choice("absolute", "sinusoidal", "rope", "alibi", "none")),
            "--norm": text(choice("layernorm", "rmsnorm", "none")),
            "--act": text(choice("gelu", "gelu_new", "relu", "silu")),
            "--tied": FLAG,
            "--no-unembed-bias": FLAG,
            "--tokenizer": text(choice("byte"), always=True),
            "--bpe-vocab": dim(260, 300, always=False),
            "--max-chars": count(200, 4000),
            "--steps": count(1, 2),
            "--batch-size": dim(1, 4),
            "--lr": flt(choice("0.001", "0.01")),
            "--weight-decay": flt(choice("0", "0.1")),
            "--warmup": count(0, 2),
            "--eval-every": count(1, 2),
            "--checkpoint-every": count(1, 2),
            "--seed": SEED,
            "--device": DEVICE,
            "--grad": text(choice("vanilla", "myopic")),
            "--resume": FLAG,
            "--overwrite": FLAG,
            "--allow-data-change": FLAG,
            "--no-report": Opt(None, always=True),
        },
        examples=30,
    ),
    ("report",): Spec(
        {"--out": Opt(st.just(Fx("OUT_HTML")), OUT_PATHS)},
        examples=14,
        positional=[(st.just(Fx("MODEL")), BAD_PATH)],
    ),
    ("demo",): Spec(
        {
            "--out": Opt(st.just(Fx("OUT")), OUT_PATHS),
            "--steps": count(1, 2, always=False),
            "--seed": SEED,
            "--device": DEVICE,
        },
        examples=8,
    ),
    ("collapse",): Spec(
        {
            "--model": MODEL,
            "--dtype": text(choice("float32", "bfloat16", "e4m3", "fp16")),
            "--dtypes": text(choice("float32,bfloat16", "fp32", "e5m2,float16")),
            "--mode": text(choice("auto", "emulated", "native")),
            "--family": text(choice("ones", "digits", "pattern")),
            "--prompt": text(choice("", "x", "count: ")),
            "--pattern": text(choice("ab", "1")),
            "--token-ids": Opt(choice("5,7", "3"), BAD_LIST),
            "--lengths": Opt(choice("2:4", "3", "1:5"), st.one_of(BAD_LIST, HUGE), always=True),
            "--separator": text(choice(",", "4", " ")),
            "--every": dim(0, 3, always=False),
            "--method": text(choice("auto", "per-length")),
            "--seed": SEED,
            "--device": DEVICE,
            "--out": OUT,
            "--overwrite": FLAG,
            "--no-report": FLAG,
        },
        examples=25,
    ),
    ("squash",): Spec(
        {
            "--model": MODEL,
            "--prompts": text(choice("copy-first", "copy-last,counting", "counting")),
            "--length": dim(2, 6),
            "--estimator": text(choice("auto", "exact", "random")),
            "--probes": dim(1, 8, always=False),
            "--seed": SEED,
            "--device": DEVICE,
            "--out": OUT,
            "--overwrite": FLAG,
            "--no-report": FLAG,
        },
        examples=18,
    ),
    ("pe-bench",): Spec(
        {
            "--task": text(choice("flipflop", "copy"), always=True),
            "--task-option": Opt(choice("length=4", "vocab=x", "nope=1"), HOSTILE_OPTION),
            "--pe": text(choice("none", "rope", "absolute"), always=True),
            "--cope-option": Opt(
                choice(
                    "p_max=4",
                    "npos=x",
                    "every=2",
                    "val_gates=true",
                    "sep_gate_key=true",
                    "shared=true",
                    "per_head=yes",
                    "rel_npos=0",
                ),  # fmt: skip
                st.one_of(
                    GARBAGE,
                    st.sampled_from([o.replace("length", "p_max") for o in HOSTILE_OPTIONS]),
                ),
            ),
            "--seeds": Opt(choice("0"), BAD_LIST, always=True),
            "--steps": count(1, 2),
            "--batch-size": dim(1, 4),
            "--lr": flt(choice("0.001")),
            "--layers": dim(1, 1),
            "--d-model": dim(8, 16),
            "--heads": dim(1, 2),
            "--d-mlp": dim(0, 16),
            "--eval-sequences": count(1, 4),
            "--text": FLAG,
            "--text-pe": text(choice("rope")),
            "--text-ctx": dim(8, 16, always=False),
            "--text-eval-ctx": Opt(choice("16", "8,16"), BAD_LIST),
            "--text-steps": count(1, 2),
            "--device": DEVICE,
            "--out": RUN_OUT,
            "--resume": FLAG,
            "--overwrite": FLAG,
            "--executor": EXECUTOR,
            "--ray-address": RAY_ADDRESS,
        },
        examples=14,
        only_invalid=True,  # even the smallest benchmark trains several models
    ),
    ("precache",): Spec(
        {
            "--out": RUN_OUT,
            "--task": text(choice("precache", "copy")),
            "--task-option": Opt(choice("length=4", "nope=1"), HOSTILE_OPTION),
            "--corpus": text(st.sampled_from([Fx(c) for c in (*CORPORA, *HOSTILE_CORPORA)])),
            "--layers": dim(1, 2),
            "--d-model": dim(8, 16),
            "--heads": dim(1, 2),
            "--d-mlp": dim(0, 16),
            "--ctx": dim(8, 16),
            "--pe": text(choice("rope", "none")),
            "--steps": count(1, 2),
            "--batch-size": dim(1, 4),
            "--lr": flt(choice("0.003")),
            "--warmup": count(0, 1),
            "--eval-every": count(1, 2),
            "--seeds": text(choice("0,"), always=True),
            "--device": DEVICE,
            "--probe-layer": dim(0, 1, always=False),
            "--probe-horizons": count(1, 2),
            "--probe-tokens": count(50, 200),
            "--tokenizer": text(choice("byte"), always=True),
            "--max-chars": count(500, 3000),
            "--val-fraction": flt(choice("0.1", "0.5")),
            "--resume": FLAG,
            "--overwrite": FLAG,
        },
        examples=14,
    ),
    ("probe",): Spec(
        {
            "--model": MODEL,
            "--horizon": dim(1, 3),
            "--layers": Opt(
                choice("0,1", "1", "0-1"),
                st.one_of(GARBAGE, BAD_LIST, choice("0-1000000000", "0-" + str(2**70))),
            ),
            "--tokens": count(200, 600),
            "--dataset": text(st.sampled_from([Fx(c) for c in (*CORPORA, *HOSTILE_CORPORA)])),
            "--batch-size": dim(1, 8),
            "--seq-len": dim(8, 16),
            "--seed": SEED,
            "--device": DEVICE,
            "--out": OUT,
            "--probe": text(choice("future-lens", "vocab", "both")),
            "--top-k": dim(0, 16, always=False),
            "--max-memory": dim(1, 64, always=False),
            "--test-positions": count(0, 64, always=False),
            "--decode-dtype": text(choice("auto", "float32", "bfloat16")),
            "--overwrite": FLAG,
            "--no-report": Opt(None, always=True),
        },
        examples=25,
    ),
    ("reproduce",): Spec(
        {"--out": OUT, "--quick": FLAG, "--list": FLAG},
        examples=10,
        positional=[(choice("no-such-finding", ""), GARBAGE)],
        only_invalid=True,  # a real reproduction trains for minutes
    ),
    ("count", "sweep"): Spec(
        {
            "--task": text(choice("qc", "mfc")),
            "--d": Opt(choice("4", "4,8"), st.one_of(BAD_LIST, HUGE), always=True),
            "--m": Opt(choice("4", "2,4"), st.one_of(BAD_LIST, HUGE), always=True),
            "--n": dim(4, 12, always=False),
            "--n-factor": dim(1, 3),
            "--sampling": text(choice("uniform", "dirichlet")),
            "--query": text(choice("uniform", "present")),
            "--layers": dim(1, 1),
            "--heads": dim(1, 1),
            "--mlp-ratio": dim(0, 2),
            "--pe": text(choice("none", "rope")),
            "--steps": count(1, 2),
            "--batch-size": dim(1, 4),
            "--lr": flt(choice("0.001")),
            "--weight-decay": flt(choice("0")),
            "--warmup": count(0, 1),
            "--eval-samples": count(1, 8),
            "--threshold": flt(choice("0.8", "0.5")),
            "--seed": SEED,
            "--device": DEVICE,
            "--no-batched": FLAG,
            "--out": RUN_OUT,
            "--resume": FLAG,
            "--overwrite": FLAG,
            "--executor": EXECUTOR,
            "--ray-address": RAY_ADDRESS,
        },
        examples=25,
    ),
    ("count", "construct"): Spec(
        {
            "--d": Opt(choice("4", "4,8"), st.one_of(BAD_LIST, HUGE), always=True),
            "--m": Opt(choice("4", "2,6"), st.one_of(BAD_LIST, HUGE), always=True),
            "--n": dim(4, 12, always=False),
            "--beta": flt(choice("20", "1")),
            "--samples": count(1, 10),
            "--seed": SEED,
            "--device": DEVICE,
            "--out": Opt(st.just(Fx("OUT")), OUT_PATHS),
        },
        examples=20,
    ),
    ("grok",): Spec(
        {
            "--task": text(choice("modadd", "sparse-parity")),
            "--arch": text(choice("mlp", "fixed", "transformer")),
            "--p": dim(3, 7),
            "--pairs": text(choice("ordered", "all")),
            "--train-fraction": flt(choice("0.5", "0.3")),
            "--n-bits": dim(4, 6),
            "--k": dim(1, 3),
            "--n-train": count(8, 32),
            "--width": dim(4, 8),
            "--weight-decay": flt(choice("1", "0")),
            "--lr": flt(choice("0.001")),
            "--steps": count(1, 3),
            "--log-every": count(1, 2),
            "--checkpoint-every": count(1, 3),
            "--seed": SEED,
            "--device": DEVICE,
            "--out": RUN_OUT,
            "--resume": FLAG,
            "--overwrite": FLAG,
            "--no-report": FLAG,
        },
        examples=22,
    ),
    ("grok", "sweep"): Spec(
        {
            "--task": text(choice("modadd", "sparse-parity")),
            "--p": dim(3, 7),
            "--weight-decays": Opt(choice("0", "0,1"), BAD_LIST, always=True),
            "--train-fractions": Opt(choice("0.5", "0.3,0.6"), BAD_LIST, always=True),
            "--train-sizes": Opt(choice("16", "8,16"), st.one_of(BAD_LIST, HUGE), always=True),
            "--widths": Opt(choice("4", "4,8"), st.one_of(BAD_LIST, HUGE), always=True),
            "--seeds": text(choice("0,", "0..1"), always=True),
            "--steps": count(1, 3),
            "--log-every": count(1, 2),
            "--device": DEVICE,
            "--out": RUN_OUT,
            "--resume": FLAG,
            "--overwrite": FLAG,
            "--no-report": FLAG,
            "--executor": EXECUTOR,
            "--ray-address": RAY_ADDRESS,
        },
        examples=18,
    ),
    ("doctor",): Spec({}, examples=4, only_invalid=True),
    ("export",): Spec(
        {"--format": text(choice("hf")), "--overwrite": FLAG},
        examples=14,
        positional=[(st.just(Fx("MODEL")), BAD_PATH), (st.just(Fx("OUT")), OUT_PATHS)],
    ),
}


def _add_explicit_cases() -> None:
    """Every hostile fixture, run deterministically by the commands that read or write it."""

    def add(path: tuple[str, ...], *cases: list) -> None:
        SPECS[path].explicit.extend(cases)

    out = ["--out", Fx("OUT")]
    probe = ["--tokens", "200", "--horizon", "1", "--seq-len", "8", "--batch-size", "4"]
    resume = ["--steps", "3", *TRAIN_RUN_ARGS, "--resume", "--out"]
    for name in ("TRAIN_RUN", *HOSTILE_RUNS):
        run = Fx(name)
        add(("report",), [run])
        add(("probe",), ["--model", run, *probe, *out, "--no-report"])
        add(("train",), [*resume, run])
    for name in ("TRAIN_RUN", "LINK_CKPT_RUN", "LINK_TOKENIZER_RUN", "LINK_METRICS_RUN"):
        add(("train",), ["--steps", "1", *TRAIN_RUN_ARGS, "--overwrite", "--out", Fx(name)])
    for name in ("LINK_ANALYSES_RUN", "LINK_ANALYSIS_RUN", "LYING_LAYERS_RUN", "LYING_VOCAB_RUN",
                 "FIFO_CONFIG_RUN", "ZERO_WEIGHTS_RUN"):  # fmt: skip
        add(("collapse",), ["--model", Fx(name), "--lengths", "2:3", *out, "--no-report"])
        add(("squash",), ["--model", Fx(name), "--length", "3", *out, "--no-report"])
    for name in ("HF_GPT2", "HF_LLAMA", *HOSTILE_HF):
        add(("probe",), ["--model", Fx(name), *probe, *out, "--no-report"])
        add(("collapse",), ["--model", Fx(name), "--lengths", "2:3", *out, "--no-report"])
    for name in HOSTILE_CORPORA:
        args = ["--steps", "1", *TRAIN_RUN_ARGS[2:], "--corpus", Fx(name), *out]
        add(("train",), args, [*args[:-2], "--max-chars", "1000000", *out])
        add(("probe",), ["--model", Fx("MODEL"), "--dataset", Fx(name), *probe, *out])
    for value in HOSTILE_OPTIONS:
        add(("train",), ["--task", "copy", "-o", value, "--steps", "1", *out, "--no-report"])
        add(("precache",), ["--task", "copy", "-o", value, "--steps", "1", *out])
        cope = ["--pe", "cope", "--cope-option", value.replace("length", "p_max")]
        add(("pe-bench",), ["--task", "copy", "--seeds", "0", *cope, "--steps", "1", *out])
    for name, (path, args) in RESUMABLE.items():
        add(path, [*args, "--resume", "--out", Fx(name)])
        add(("report",), [Fx(name)])
    for name, (base, *_edit) in HOSTILE_RESUMABLE.items():
        path, args = RESUMABLE[base]
        add(path, [*args, "--resume", "--out", Fx(name)])
        add(path, [*args, "--overwrite", "--out", Fx(name)])
        add(("report",), [Fx(name)])


_add_explicit_cases()


@st.composite
def _case(draw, spec: Spec) -> list:
    """Small valid values for every costly option, then hostile mutations."""
    args: list = []
    names = list(spec.options)
    hostile = (
        set(draw(st.lists(st.sampled_from(names), min_size=1, max_size=3))) if names else set()
    )
    if draw(st.integers(0, 4)) == 0:  # one case in five: only valid values (plus extras below)
        hostile = set()
    for name in names:
        opt = spec.options[name]
        if name in hostile:
            if opt.valid is None:  # a flag given a value
                args.append(f"{name}={draw(choice('1', 'yes', ''))}")
            else:
                args += [name, draw(opt.bad)]
        elif opt.always or draw(st.integers(0, 3)) == 0:
            args += [name] if opt.valid is None else [name, draw(opt.valid)]
    for valid, bad in spec.positional:
        args.append(draw(bad) if draw(st.booleans()) else draw(valid))
    extra = draw(st.integers(0, 7))
    if extra == 1:  # an unknown option
        args.insert(draw(st.integers(0, len(args))), draw(choice("--bogus", "--bogus=3", "-Z")))
    elif extra == 2:  # a stray positional
        args.append(draw(choice("stray", "--", "-")))
    elif extra == 3 and names:  # an option that needs a value, given none
        valued = [n for n in names if spec.options[n].valid is not None]
        if valued:
            args.append(draw(st.sampled_from(valued)))
    elif extra == 4 and names:  # an option given twice, the second time hostile
        name = draw(st.sampled_from(names))
        if spec.options[name].valid is not None:
            args += [name, draw(spec.options[name].bad)]
    mutated = bool(hostile) or extra in (1, 2, 3, 4)
    if spec.only_invalid and not mutated:
        args.append("--bogus-option")
    return args


# --------------------------------------------------------------------------- running one case


def _commands() -> list[tuple[str, ...]]:
    """Every runnable command path of the Typer app (groups that run themselves included)."""
    found: list[tuple[str, ...]] = []

    def walk(cmd: click.Command, path: tuple[str, ...]) -> None:
        subs = getattr(cmd, "commands", None)
        if subs is None or (path and getattr(cmd, "invoke_without_command", False)):
            found.append(path)
        for name, sub in (subs or {}).items():
            walk(sub, (*path, name))

    walk(typer.main.get_command(app), ())
    return sorted(found)


COMMANDS = _commands()
CASES: dict[str, int] = {}
FAILURES: list[str] = []


def _print_count(capture) -> None:
    total = sum(CASES.values())
    per = ", ".join(f"{k} {v}" for k, v in sorted(CASES.items()))
    line = f"fuzz CLI: {total} cases ran ({per})"
    if capture is None:
        print(f"\n{line}")  # noqa: T201
    else:  # shown without -s too: the issue asks to report how many cases ran
        with capture.global_and_fixture_disabled():
            print(f"\n{line}")  # noqa: T201
    summary = os.environ.get("INTERP_FUZZ_SUMMARY")
    if summary:
        Path(summary).write_text(line + "\n")


def _snapshot(roots: list[Path]) -> dict[str, tuple]:
    files: dict[str, tuple] = {}
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            for name in dirnames + filenames:
                p = os.path.join(dirpath, name)
                try:
                    s = os.lstat(p)
                except OSError:
                    continue
                kind = "d" if stat.S_ISDIR(s.st_mode) else "f"
                # a directory counts by its existence and mode (its mtime moves with its children)
                files[p] = (kind, s.st_mode) if kind == "d" else (kind, s.st_size, s.st_mtime_ns)
    return files


def _allowed(path: str, allowed: list[Path]) -> bool:
    p = Path(path)
    return any(p == a or a in p.parents for a in allowed)


def _resolve(token, places: dict[str, Path]) -> str:
    return str(places[token.name]) if isinstance(token, Fx) else token


def _prepare_case(world: World, needed: set[str]) -> tuple[Path, dict[str, Path]]:
    """A fresh case directory holding copies of the fixtures the case names (and the cache)."""
    world.counter += 1
    case = world.cases / f"c{world.counter:05d}"
    fx = case / "fx"
    fx.mkdir(parents=True)
    for src in world.fx.iterdir():
        if src.name in needed or src.name in ("MODEL", "VICTIM"):
            _copy_fixture(src, fx / src.name)
    shutil.copytree(world.cache, case / "cache")
    (case / "cwd").mkdir()
    (case / "out").mkdir()
    places = {p.name: fx / p.name for p in world.fx.iterdir()}
    places["BIG_CORPUS"] = world.fx.parent / "big" / "BIG_CORPUS.txt"  # only read: not copied
    places.update(
        OUT=case / "out" / "run",
        OUT_NESTED=case / "out" / "a" / "b" / "run",
        OUT_HTML=case / "out" / "report.html",
        EXISTING_RUN=fx / "MODEL",
        MISSING=case / "missing" / "nowhere",
        UNREADABLE_FILE=fx / "unreadable.txt",
        UNREADABLE_DIR=fx / "locked",
    )
    places["UNREADABLE_FILE"].write_text("secret text\n")
    places["UNREADABLE_DIR"].mkdir()
    (places["UNREADABLE_DIR"] / "config.json").write_text('{"kind": "train"}')
    for p in (places["UNREADABLE_FILE"], places["UNREADABLE_DIR"]):
        p.chmod(0)  # as root this blocks nothing: the case then reads them like any file
    return case, places


def _allowed_writes(path: tuple[str, ...], argv: list[str], case: Path) -> list[Path]:
    cwd = case / "cwd"
    allowed = [case / "out", cwd / "runs", case / "cache"]
    for i, token in enumerate(argv):
        value = None
        if token.startswith("--out="):
            value = token.split("=", 1)[1]
        elif token == "--out" and i + 1 < len(argv):
            value = argv[i + 1]
        elif token == "--model" and i + 1 < len(argv):
            model = Path(cwd, argv[i + 1])
            allowed += [model / "analyses", model / "report.html"]
        if value is not None:
            allowed.append(Path(os.path.normpath(Path(cwd, value))))
    if path == ("report",):
        allowed += [Path(cwd, a) / "report.html" for a in argv[1:] if not a.startswith("-")]
    if path == ("export",):  # export RUN OUT: OUT, the second positional, is the output
        positionals, tokens = [], iter(argv[1:])
        for token in tokens:
            if token == "--format":
                next(tokens, None)
            elif not token.startswith("-"):
                positionals.append(token)
        if len(positionals) >= 2:
            allowed.append(Path(os.path.normpath(Path(cwd, positionals[1]))))
    return allowed


class CaseTimeout(Exception):
    pass


def _on_alarm(signum, frame) -> None:
    raise CaseTimeout(f"the case ran past {CASE_SECONDS} s")


def _vm_size() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    return 0


def _invoke_isolated(argv: list[str], case: Path):
    """Run ``interp ARGV`` in the case's cwd and cache, time- and address-space-limited."""
    saved_env = {k: os.environ.get(k) for k in ("INTERP_CACHE", "INTERP_DEBUG")}
    old_cwd = os.getcwd()
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = _vm_size() + MEMORY_HEADROOM
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    old_handler = signal.signal(signal.SIGALRM, _on_alarm)
    os.environ["INTERP_CACHE"] = str(case / "cache")
    os.environ["INTERP_DEBUG"] = "1"  # internal errors raise: they are findings
    os.chdir(case / "cwd")
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    signal.alarm(CASE_SECONDS)
    try:
        return CliRunner().invoke(app, argv)
    finally:
        signal.alarm(0)
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
        signal.signal(signal.SIGALRM, old_handler)
        os.chdir(old_cwd)
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _problems(result) -> list[str]:
    """What is wrong with how a case ended (empty: exit 0, or one error line and non-zero)."""
    out = result.output
    problems = []
    if "Traceback" in out:
        problems.append("a traceback in the output")
    if result.exit_code == 0:
        return problems
    exc = result.exception
    if not isinstance(exc, SystemExit):
        problems.append(f"raised {type(exc).__name__}: {str(exc)[:300]}")
    # progress printed before the failure (a preflight estimate, the model used) may stay; the
    # error itself is one line, the last one
    lines = [line for line in out.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    if len(errors) != 1 or not lines[-1].startswith("error: "):
        problems.append(f"not one 'error: ...' line at the end ({len(errors)} error lines)")
    if "internal error" in out:
        problems.append("an internal error")
    return problems


def run_case(world: World, path: tuple[str, ...], raw_args: list) -> None:
    """Run one case and assert the property; clean its directory up when it holds."""
    case, places = _prepare_case(world, {a.name for a in raw_args if isinstance(a, Fx)})
    argv = [*path, *(_resolve(a, places) for a in raw_args)]
    roots = [case] + [p for p in (Path.home() / ".cache" / "interp",) if p.is_dir()]
    before = _snapshot(roots)
    start = time.monotonic()
    result = _invoke_isolated(argv, case)
    seconds = time.monotonic() - start
    after = _snapshot(roots)
    allowed = _allowed_writes(path, argv, case)
    strays = sorted(
        p
        for p in set(before) | set(after)
        if before.get(p) != after.get(p) and not _allowed(p, allowed)
    )
    CASES[" ".join(path)] = CASES.get(" ".join(path), 0) + 1
    problems = _problems(result)
    if strays:
        problems.append(f"wrote outside the output directory: {strays[:5]}")
    if problems:
        import traceback

        tb = ""
        if result.exc_info and not isinstance(result.exception, SystemExit):
            tb = "".join(traceback.format_exception(*result.exc_info)[-6:])
        log = os.environ.get("INTERP_FUZZ_LOG")  # every failing case as it happens (shrinking)
        if log:
            with open(log, "a") as f:
                f.write(f"{' '.join(path)}: {argv[len(path) :]!r}: {'; '.join(problems)}\n")
        raise AssertionError(
            f"interp {' '.join(map(repr, argv))}\n  -> exit {result.exit_code} after "
            f"{seconds:.1f}s: {'; '.join(problems)}\n--- output (tail) ---\n"
            f"{result.output[-1500:]}\n{tb}"
        )
    for p in (places["UNREADABLE_FILE"], places["UNREADABLE_DIR"]):
        if p.exists():
            p.chmod(0o700)
    shutil.rmtree(case, ignore_errors=True)


# --------------------------------------------------------------------------- the tests


def test_every_command_has_a_strategy() -> None:
    missing = [" ".join(c) for c in COMMANDS if c not in SPECS]
    stale = [" ".join(c) for c in SPECS if c not in COMMANDS]
    assert not missing, f"no fuzz strategy for `interp {missing}`: add one to SPECS in {__file__}"
    assert not stale, f"SPECS names commands that no longer exist: {stale}"


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_hostile_arguments(world: World, path: tuple[str, ...]) -> None:
    spec = SPECS.get(path)
    if spec is None:
        pytest.fail(f"no fuzz strategy for `interp {' '.join(path)}`: add one to SPECS")

    @settings(
        max_examples=max(1, round(spec.examples * SCALE)),
        derandomize=True,
        deadline=None,
        database=None,
        print_blob=False,
        phases=(Phase.explicit, Phase.generate, Phase.shrink),
        suppress_health_check=list(HealthCheck),
    )
    @given(args=_case(spec))
    def check(args: list) -> None:
        run_case(world, path, args)

    check()


@pytest.mark.parametrize(
    "path", [c for c in COMMANDS if c in SPECS and SPECS[c].explicit], ids=" ".join
)
def test_hostile_files(world: World, path: tuple[str, ...]) -> None:
    """Each hostile fixture once, by every command that reads or writes it: planted links in
    the folders a command writes, FIFOs and /dev/zero links where it reads, deep or huge JSON
    in every JSON it reads, lying model sizes, hostile folder corpora and option values."""
    failures = []
    for args in SPECS[path].explicit:
        try:
            run_case(world, path, args)
        except AssertionError as e:
            failures.append(str(e)[:2500])
    assert not failures, f"{len(failures)} case(s) failed:\n" + "\n\n".join(failures)


def test_the_checker_catches_tracebacks_and_stray_writes(world: World, monkeypatch) -> None:
    """The property can fail: an injected crash, a printed traceback and a stray write."""
    import interp.analysis.counting as counting

    args = ["--d", "4", "--m", "4", "--samples", "2"]
    run_case(world, ("count", "construct"), args)  # the unmodified command passes

    def crash(cfg, **_):
        raise RuntimeError("injected")

    monkeypatch.setattr(counting, "run_construct", crash)
    with pytest.raises(AssertionError, match="raised RuntimeError: injected"):
        run_case(world, ("count", "construct"), args)

    def shout(cfg, **_):
        from cli.progress import console

        console.print('Traceback (most recent call last):\n  File "x", line 1')
        raise SystemExit(3)

    monkeypatch.setattr(counting, "run_construct", shout)
    with pytest.raises(AssertionError, match="traceback in the output"):
        run_case(world, ("count", "construct"), args)

    def stray(cfg, **_):
        Path("../fx/stray.txt").write_text("oops")
        return {"cells": []}

    monkeypatch.setattr(counting, "run_construct", stray)
    with pytest.raises(AssertionError, match="wrote outside the output directory"):
        run_case(world, ("count", "construct"), args)
