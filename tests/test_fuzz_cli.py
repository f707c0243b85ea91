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
    return fx, cache


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
BAD_PATH = st.one_of(st.sampled_from([Fx(n) for n in BAD_PATHS]), st.just("nowhere/at/all"))
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
MODEL = Opt(st.just(Fx("MODEL")), st.one_of(BAD_PATH, st.just("no-such-org/no-such-model")))


@dataclass
class Spec:
    options: dict[str, Opt]
    examples: int
    positional: list[tuple[st.SearchStrategy, st.SearchStrategy]] = field(default_factory=list)
    prefix: list[str] = field(default_factory=list)  # always-given tokens (e.g. a task)
    only_invalid: bool = False  # a valid case would be too slow: at least one hostile value


SPECS: dict[tuple[str, ...], Spec] = {
    ("train",): Spec(
        {
            "--out": OUT,
            "--corpus": text(
                st.sampled_from([Fx("CORPUS"), "builtin:prose", *(Fx(c) for c in CORPORA)]),
            ),
            "--task": text(choice("copy")),
            "--task-option": text(choice("length=3", "vocab=5", "length=x", "vocab", "=")),
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
        {"--out": Opt(st.just(Fx("OUT")), OUT_PATHS), "--steps": count(1, 2, always=False)},
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
            "--tokens": Opt(choice("5,7", "3"), BAD_LIST),
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
            "--task-option": text(choice("length=4", "vocab=x", "nope=1")),
            "--pe": text(choice("none", "rope", "absolute"), always=True),
            "--cope-option": text(choice("p_max=4", "npos=x")),
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
            "--out": OUT,
            "--overwrite": FLAG,
        },
        examples=14,
        only_invalid=True,  # even the smallest benchmark trains several models
    ),
    ("precache",): Spec(
        {
            "--out": OUT,
            "--task": text(choice("precache", "copy")),
            "--task-option": text(choice("length=4", "nope=1")),
            "--corpus": text(st.sampled_from([Fx(c) for c in CORPORA])),
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
            "--seeds": count(1, 1),
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
            "--dataset": text(st.sampled_from([Fx(c) for c in CORPORA])),
            "--batch-size": dim(1, 8),
            "--seq-len": dim(8, 16),
            "--seed": SEED,
            "--device": DEVICE,
            "--out": OUT,
            "--probe": text(choice("future-lens", "vocab", "both")),
            "--top-k": dim(0, 16, always=False),
            "--max-memory": dim(1, 64, always=False),
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
            "--no-batched": FLAG,
            "--out": OUT,
            "--resume": FLAG,
            "--overwrite": FLAG,
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
            "--out": Opt(st.just(Fx("OUT")), OUT_PATHS),
        },
        examples=20,
    ),
    ("grok",): Spec(
        {
            "--task": text(choice("modadd", "sparse-parity")),
            "--model": text(choice("mlp", "fixed", "transformer")),
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
            "--out": OUT,
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
            "--seeds": count(1, 2),
            "--steps": count(1, 3),
            "--log-every": count(1, 2),
            "--device": DEVICE,
            "--out": OUT,
            "--overwrite": FLAG,
            "--no-report": FLAG,
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
        if src.name in needed or src.name == "MODEL":
            copy = shutil.copytree if src.is_dir() else shutil.copy2
            copy(src, fx / src.name)
    shutil.copytree(world.cache, case / "cache")
    (case / "cwd").mkdir()
    (case / "out").mkdir()
    places = {p.name: fx / p.name for p in world.fx.iterdir()}
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


def test_the_checker_catches_tracebacks_and_stray_writes(world: World, monkeypatch) -> None:
    """The property can fail: an injected crash, a printed traceback and a stray write."""
    import interp.analysis.counting as counting

    args = ["--d", "4", "--m", "4", "--samples", "2"]
    run_case(world, ("count", "construct"), args)  # the unmodified command passes

    def crash(cfg):
        raise RuntimeError("injected")

    monkeypatch.setattr(counting, "run_construct", crash)
    with pytest.raises(AssertionError, match="raised RuntimeError: injected"):
        run_case(world, ("count", "construct"), args)

    def shout(cfg):
        from cli.progress import console

        console.print('Traceback (most recent call last):\n  File "x", line 1')
        raise SystemExit(3)

    monkeypatch.setattr(counting, "run_construct", shout)
    with pytest.raises(AssertionError, match="traceback in the output"):
        run_case(world, ("count", "construct"), args)

    def stray(cfg):
        Path("../fx/stray.txt").write_text("oops")
        return {"cells": []}

    monkeypatch.setattr(counting, "run_construct", stray)
    with pytest.raises(AssertionError, match="wrote outside the output directory"):
        run_case(world, ("count", "construct"), args)
