"""The notebook API for the training experiments (``interp.grokking``, ``interp.count_sweep``,
``interp.precache``): typed results in memory, their figures, and with ``out=`` exactly the
files the CLI writes for the same settings."""

from __future__ import annotations

import inspect
import json
from typing import Any

import pytest
from cli_helpers import invoke

import interp
from interp.errors import ConfigError

_TIMING = ("seconds", "steps_per_second", "elapsed", "wall", "created")


def _untimed(value: Any) -> Any:
    """``value`` without wall-clock fields (the only thing two equal runs may differ in)."""
    if isinstance(value, dict):
        return {k: _untimed(v) for k, v in value.items() if not any(t in k for t in _TIMING)}
    if isinstance(value, list):
        return [_untimed(v) for v in value]
    return value


def _same_files_as_cli(lib_dir, cli_dir) -> None:
    for name in ("config.json", "results.json"):
        lib = json.loads((lib_dir / name).read_text())
        cli = json.loads((cli_dir / name).read_text())
        assert _untimed(lib) == _untimed(cli), name
    assert (lib_dir / "report.html").is_file() and (lib_dir / "env.json").is_file()


GROK = {"p": 7, "steps": 6, "log_every": 3}
GROK_CLI = ["grok", "--p", "7", "--steps", "6", "--log-every", "3"]
SWEEP = {"d_values": (8,), "m_values": (3,), "steps": 4, "eval_samples": 20, "batch_size": 4}
SWEEP_CLI = ["count", "sweep", "--d", "8", "--m", "3", "--steps", "4", "--eval-samples", "20",
             "--batch-size", "4"]  # fmt: skip
PRECACHE = {
    "task_options": {"length": 4}, "n_layers": 1, "d_model": 8, "n_heads": 1, "d_mlp": 0,
    "n_ctx": 8, "steps": 1, "batch_size": 2, "eval_every": 1, "checkpoint_every": 1,
    "seeds": (0,), "token_horizons": 1, "token_probe_tokens": 50, "tokenizer": "byte",
}  # fmt: skip
PRECACHE_CLI = [
    "precache", "--task", "precache", "-o", "length=4", "--layers", "1", "--d-model", "8",
    "--heads", "1", "--d-mlp", "0", "--ctx", "8", "--steps", "1", "--batch-size", "2",
    "--eval-every", "1", "--seeds", "0,", "--probe-horizons", "1", "--probe-tokens", "50",
    "--tokenizer", "byte",
]  # fmt: skip

CASES = {
    "grok": (interp.grokking, GROK, GROK_CLI, "GrokResults"),
    "count_sweep": (interp.count_sweep, SWEEP, SWEEP_CLI, "CountSweepResults"),
    "precache": (interp.precache, PRECACHE, PRECACHE_CLI, "PrecacheResults"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_library_call_returns_typed_results_and_writes_the_cli_files(name, tmp_path) -> None:
    fn, options, cli_args, results_type = CASES[name]
    res = fn(**options)  # in memory: nothing written
    assert type(res).__name__ == results_type and res.headline
    assert res.figures(), "the report section's figures"
    lib = fn(out=tmp_path / "lib", **options)
    assert type(lib) is type(res) and _untimed(lib.to_dict()) == _untimed(res.to_dict())
    result = invoke(*cli_args, "--out", tmp_path / "cli")
    assert result.exit_code == 0, result.output
    _same_files_as_cli(tmp_path / "lib", tmp_path / "cli")
    saved = res.save(tmp_path / "saved")  # the in-memory result's run directory
    _same_files_as_cli(saved, tmp_path / "cli")


@pytest.mark.parametrize(
    ("fn", "options", "fragment"),
    [
        (interp.grokking, {"bogus": 1}, "grok has no option bogus"),
        (interp.count_sweep, {"d": 8}, "count_sweep has no option d"),
        (interp.precache, {"bogus": 1}, "precache has no option bogus"),
        (interp.precache, {"seeds": 2}, "seeds is a tuple"),
        (interp.precache, {"steps": 0}, "steps"),
    ],
)
def test_bad_options_are_one_line_errors_before_anything_runs(fn, options, fragment) -> None:
    with pytest.raises(ConfigError, match=fragment):
        fn(**options)


def test_precache_defaults_are_the_commands() -> None:
    """``PrecacheConfig.default()`` (the library's) is what ``interp precache`` builds with no
    option: every builder default equals the command's default of the same name."""
    from cli.commands_precache import precache as command
    from cli.options import parse_seeds
    from interp.experiments.precache import precache_config

    cli = inspect.signature(command).parameters
    lib = inspect.signature(precache_config).parameters
    aliases = {"bpe_vocab": None, "task_options": "task_option"}  # the CLI has no --bpe-vocab
    checked = 0
    for name, param in lib.items():
        cli_name = aliases.get(name, name)
        if cli_name is None:
            continue
        assert cli_name in cli, name
        if name == "seeds":  # the command reads a list of seeds as text
            assert parse_seeds(cli[cli_name].default) == param.default
        elif name != "task_options":
            assert cli[cli_name].default == param.default, name
            checked += 1
    assert checked >= 15


def test_precache_task_options_merge_as_the_command_merges_them(monkeypatch) -> None:
    """On the default config the precache task's options (frequency 3, length 32) stay under
    the ones given, as ``interp precache -o`` merges them; another task gets none of them."""
    import interp.api

    seen = []
    monkeypatch.setattr(interp.api, "_run", lambda kind, config, *rest: seen.append(config))
    interp.precache(task_options={"length": 4}, steps=3)
    interp.precache(task="copy", task_options={"length": 4})
    interp.precache(steps=3)
    assert [c.data.task_options for c in seen] == [
        {"frequency": 3.0, "length": 4}, {"length": 4}, {"frequency": 3.0, "length": 32}
    ]  # fmt: skip
    assert seen[0].train.steps == 3 and seen[1].data.task == "copy"
