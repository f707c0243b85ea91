"""A CLI that behaves like one: results on stdout (``--json``: one JSON document and nothing
else), progress and notes on stderr, ``interp --version``."""

from __future__ import annotations

import json

from cli_helpers import assert_one_line_error, invoke

from interp.version import __version__

TRAIN = ["train", "--corpus", "builtin:prose", "--max-chars", "20000", "--tokenizer", "byte",
         "--ctx", "64", "--layers", "1", "--d-model", "16", "--heads", "2", "--d-mlp", "32",
         "--batch-size", "4", "--steps", "2", "--eval-every", "2", "--checkpoint-every", "2",
         "--warmup", "1", "--no-report"]  # fmt: skip


def test_version() -> None:
    result = invoke("--version")
    assert result.exit_code == 0 and result.stdout.strip() == f"interp {__version__}"


def test_json_is_the_only_thing_on_stdout(tmp_path) -> None:
    model = tmp_path / "model"
    assert invoke(*TRAIN, "--out", model).exit_code == 0
    for args in (
        ["collapse", "--dtypes", "float32", "--lengths", "4", "--prompt", ""],
        ["squash", "--length", "5"],
        ["probe", "--horizon", "1", "--layers", "0", "--tokens", "512"],
    ):
        out = tmp_path / args[0]
        result = invoke(*args, "--model", model, "--out", out, "--json")
        assert result.exit_code == 0, result.output
        doc = json.loads(result.stdout)  # the whole of stdout parses
        assert doc["kind"] == args[0] and doc["run"] == str(out) and doc["headline"]
        assert doc == {**json.loads((out / "results.json").read_text()), "run": str(out),
                       "report": str(out / "report.html"),
                       "model_report": str(model / "report.html")}  # fmt: skip
        assert "needs ~" in result.stderr


def test_resume_says_where_it_resumes_and_the_plain_progress_shows_the_loss(tmp_path) -> None:
    """#19: ``--resume`` says "resuming from step N" and the bar starts there; the training
    progress (plain lines without a terminal) shows the loss."""
    run = tmp_path / "run"
    assert invoke(*TRAIN, "--out", run).exit_code == 0  # 2 steps
    longer = list(TRAIN)
    longer[longer.index("--steps") + 1] = "4"
    result = invoke(*longer, "--out", run, "--resume")
    assert result.exit_code == 0, result.output
    assert "resuming from step 2 of 4" in result.stderr
    last = [line for line in result.stderr.splitlines() if "4/4" in line]
    assert last and "loss " in last[-1], result.stderr
    assert "resuming" not in result.stdout  # a note, not a result


# ------------------------------------------------------------- one meaning per option name
def _commands():
    """Every command of the Typer app as ``(path, click command)``, sub-typers included (the
    ``grok`` group's own options are those of ``interp grok``)."""
    from typer.main import get_command

    from cli.main import load_app

    def walk(cmd, path):
        if path:
            yield " ".join(path), cmd
        for name, sub in (getattr(cmd, "commands", None) or {}).items():
            yield from walk(sub, (*path, name))

    return list(walk(get_command(load_app()), ()))


def _kind(param) -> str:
    """An option's type with ``None`` (no default: "decided later") left out, and flag-ness."""
    import typing

    annotation = param.type_descriptor.annotation
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    name = " | ".join(map(str, args)) if type(None) in typing.get_args(annotation) else annotation
    flags = (" (flag)" if param.is_flag else "") + (" (repeatable)" if param.multiple else "")
    return f"{name}{flags}"


# The genuine exceptions: the same name, a different type, and why that is not two meanings.
TYPE_EXCEPTIONS = {
    # probe's --layers picks which layers of an existing model to probe (0,2,4 or 1-3); every
    # other --layers is how many blocks the model a command builds has.  Not yet renamed.
    "--layers": {"probe"},
}
# Options defined once in cli/options.py: the same help (the meaning) wherever they appear.
SHARED_HELP = {"--device": "Where to compute", "--json": "Print the results as JSON",
               "--seeds": "Seeds, a list"}  # fmt: skip
# Renamed options: the old spelling still works, hidden, with one deprecation line.
RENAMED = {("grok", "--model"): "--arch", ("collapse", "--tokens"): "--token-ids"}
# Commands that compute (train or evaluate a model) take --device and a seed (--seed, or the
# --seeds list of commands that train one model per seed).
COMPUTING = ("train", "demo", "precache", "probe", "collapse", "squash", "pe-bench", "grok",
             "grok sweep", "count sweep", "count construct")  # fmt: skip
# reproduce runs a reproduction's fixed settings (its seeds are part of each claim, so no
# --seed); its --device is for --scale paper only (the cpu-scale reproductions refuse another)
COMPUTING_WITHOUT_SEED = {"reproduce"}


def test_an_option_name_has_one_type_and_meaning_across_commands() -> None:
    seen: dict[str, dict[str, tuple[str, str]]] = {}
    for path, cmd in _commands():
        for param in cmd.params:
            for name in param.opts:
                if name.startswith("--") and not param.hidden:
                    seen.setdefault(name, {})[path] = (_kind(param), param.help or "")
    problems = []
    for name, uses in sorted(seen.items()):
        allowed = TYPE_EXCEPTIONS.get(name, set())
        kinds = {kind for path, (kind, _) in uses.items() if path not in allowed}
        if len(kinds) > 1:
            problems.append(f"{name}: {', '.join(f'{p} {k}' for p, (k, _) in uses.items())}")
        if name in SHARED_HELP:
            problems += [f"{name} in {p}: {h!r}" for p, (_, h) in uses.items()
                         if not h.startswith(SHARED_HELP[name])]  # fmt: skip
    assert not problems, "the same option name means different things:\n" + "\n".join(problems)
    assert {p for name in TYPE_EXCEPTIONS for p in TYPE_EXCEPTIONS[name]} <= {
        p for name in TYPE_EXCEPTIONS for p in seen[name]
    }, "an exception names a command that no longer has the option: drop it"
    commands = dict(_commands())
    for (path, old), new in RENAMED.items():
        hidden = {o: p.hidden for p in commands[path].params for o in p.opts}
        assert hidden[old] and not hidden[new], (path, old, new)
    for path in COMPUTING:
        names = {o for p in commands[path].params for o in p.opts}
        assert "--device" in names and names & {"--seed", "--seeds"}, path
    for path in COMPUTING_WITHOUT_SEED:
        params = {o: p for p in commands[path].params for o in p.opts}
        assert "--scale paper" in params["--device"].help and not {"--seed", "--seeds"} & set(
            params
        ), path


def test_old_spellings_still_work_with_one_deprecation_line(tmp_path) -> None:
    grok = ["grok", "--task", "modadd", "--p", "5", "--steps", "2", "--log-every", "1",
            "--no-report"]  # fmt: skip
    old = invoke(*grok, "--model", "fixed", "--out", tmp_path / "old")
    assert old.exit_code == 0, old.output
    assert old.stderr.splitlines()[0] == "--model is deprecated; use --arch"
    assert "deprecated" not in old.stdout
    new = invoke(*grok, "--arch", "fixed", "--out", tmp_path / "new")
    assert new.exit_code == 0 and "deprecated" not in new.output
    arch = [_config(tmp_path / r)["grok"]["model"] for r in ("old", "new")]
    assert arch == ["fixed", "fixed"]
    both = invoke(*grok, "--model", "mlp", "--arch", "fixed", "--out", tmp_path / "both")
    assert_one_line_error(both, "give --arch, not both --arch and --model")
    assert not (tmp_path / "both").exists()


def test_seeds_is_a_list_everywhere_and_the_old_count_says_so(tmp_path) -> None:
    """--seeds is a list (0,1,2 or 0..2) in every command; where it was a count (precache,
    grok sweep) a bare N still means 0..N-1, with one line saying it is deprecated."""
    sweep = ["grok", "sweep", "--p", "5", "--widths", "4", "--weight-decays", "0",
             "--train-fractions", "0.5", "--steps", "2", "--log-every", "1", "--no-report"]  # fmt: skip
    old = invoke(*sweep, "--seeds", "2", "--out", tmp_path / "old")
    assert old.exit_code == 0, old.output
    assert old.stderr.splitlines()[0] == (
        "--seeds N (a count) is deprecated; use --seeds 0..1 (a list of seeds)"
    )
    listed = invoke(*sweep, "--seeds", "0..1", "--out", tmp_path / "list")
    one = invoke(*sweep, "--seeds", "3..3", "--out", tmp_path / "one")
    assert listed.exit_code == 0 == one.exit_code and "deprecated" not in listed.output + one.output
    seeds = [_config(tmp_path / r)["sweep"]["seeds"]
             for r in ("old", "list", "one")]  # fmt: skip
    assert seeds == [[0, 1], [0, 1], [3]]
    assert_one_line_error(invoke("pe-bench", "--seeds", "0,-1"), "seeds must be >= 0")


def _config(run) -> dict:
    return json.loads((run / "config.json").read_text())


def test_long_commands_say_what_their_defaults_cost_on_a_cpu() -> None:
    for command in (["precache"], ["grok"], ["count", "sweep"], ["pe-bench"]):
        text = " ".join(invoke(*command, "--help").stdout.split())
        assert "On a CPU the defaults" in text and "--device cuda" in text, command
