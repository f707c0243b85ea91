"""interp pe-bench: the library call, the CLI end to end, one-line errors, the report section."""

from __future__ import annotations

import json
import math
import re

import pytest
import torch
from cli_helpers import invoke

from interp.analysis.pe_bench import PEBenchConfig, format_table, interval
from interp.config import ModelConfig
from interp.errors import ConfigError
from interp.experiments.pe_bench import run_pe_bench

TINY = dict(steps=4, batch_size=8, n_layers=1, d_model=16, n_heads=2, d_mlp=32, eval_sequences=8)


def test_interval_over_seeds() -> None:
    one = interval([3.0])
    assert one["mean"] == one["lo"] == one["hi"] == 3.0
    three = interval([1.0, 2.0, 3.0], 0, 100)
    assert three["mean"] == 2.0
    assert three["hi"] - 2.0 == pytest.approx(4.303 * 1.0 / 3**0.5, rel=1e-3)
    assert three["lo"] == 0.0  # clipped


def test_run_pe_bench_same_data_for_every_encoding() -> None:
    cfg = PEBenchConfig(
        task="selective-copy",
        task_options={"n_copy": 2, "length": 4, "vocab": 3},
        encodings=("rope", "cope"),
        seeds=(0,),
        **TINY,
    )
    results = run_pe_bench(cfg)["task"]
    assert results["splits"] == ["val", "ood_sparse", "ood_long"]
    assert [r["pe"] for r in results["table"]] == ["rope", "cope"]
    for run in results["runs"]:
        assert run["errors"]["val"]["scored"] == 8 * 2  # same evaluation set for each model
        assert 0 <= run["errors"]["ood_long"]["token_error"] <= 1
    maps = results["cope_maps"]
    assert {m["layer"] for m in maps} == {0} and len(maps) == 4  # 2 examples x 2 heads
    assert {m["example"] for m in maps} == {0, 1}
    pattern = maps[0]["pattern"]
    assert len(pattern) == 7 and all(abs(sum(row) - 1) < 1e-5 for row in pattern)
    assert all(v == 0 for v in pattern[0][1:])  # causal
    assert maps[0]["tokens"][-3] == "<sep>"
    assert len(format_table(results)) == 2


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"encodings": ("rope", "cop")}, "unknown positional encoding 'cop'"),
        ({"task": "flip-flop"}, "unknown task 'flip-flop'"),
        ({"positional_options": {"cope": {"p_max": 0}}}, "p_max must be >= 1"),
        ({"task": None}, "needs a task, text, or both"),
    ],
)
def test_bad_config_is_one_line(kwargs: dict, message: str) -> None:
    cfg = PEBenchConfig(**kwargs)  # inert: checked when used
    with pytest.raises(ConfigError, match=re.escape(message)) as e:
        cfg.validate()
    assert "\n" not in str(e.value)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--pe", "rope,bogus"], "unknown positional encoding 'bogus'"),
        (["--task", "nope"], "unknown task 'nope'"),
        (["--cope-option", "p_max=0"], "p_max must be >= 1"),
        (["--seeds", "a,b"], "--seeds: cannot read 'a'"),
    ],
)
def test_cli_bad_input_is_one_line_and_writes_nothing(tmp_path, args, message) -> None:
    out = tmp_path / "bench"
    result = invoke("pe-bench", *args, "--out", out)
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines
    assert not out.exists()


def test_cli_end_to_end_with_report(tmp_path) -> None:
    out = tmp_path / "bench"
    result = invoke(
        "pe-bench", "--task", "flipflop", "-o", "length=4", "--pe", "absolute,cope",
        "--seeds", "0,1", "--steps", "3", "--batch-size", "4", "--layers", "1", "--d-model", "16",
        "--heads", "2", "--d-mlp", "16", "--eval-sequences", "4", "--out", out,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "ood_sparse" in result.output and "report:" in result.output
    results = json.loads((out / "results.json").read_text())
    assert results["kind"] == "pe-bench" and results["task"]["splits"][0] == "val"
    assert (out / "models" / "cope-seed1.safetensors").is_file()
    html = (out / "report.html").read_text()
    assert "Positional encodings compared" in html and "CoPE position-only attention" in html


def test_results_and_cli_name_the_cope_variant(tmp_path) -> None:
    """The table rows, config and CLI say which CoPE was trained: ``cope`` (the public code's
    definition) or the options that make it a variant (interp's own marked as such)."""
    cfg = PEBenchConfig(
        task="flipflop", task_options={"length": 4}, encodings=("rel", "cope"), seeds=(0,),
        positional_options={"cope": {"every": 2}}, **{**TINY, "n_layers": 2},
    )  # fmt: skip
    results = run_pe_bench(cfg)
    assert results["config"]["variants"] == {"rel": "rel", "cope": "cope+rel (CoPE every 2 layers)"}
    assert [r["variant"] for r in results["task"]["table"]] == [
        "rel",
        "cope+rel (CoPE every 2 layers)",
    ]
    assert {m["layer"] for m in results["task"]["cope_maps"]} == {1}  # CoPE on layer 1 only
    out = tmp_path / "bench"
    result = invoke(
        "pe-bench", "--task", "flipflop", "-o", "length=4", "--pe", "cope", "--seeds", "0",
        "--cope-option", "per_head=true", "--steps", "2", "--batch-size", "4", "--layers", "1",
        "--d-model", "16", "--heads", "2", "--d-mlp", "16", "--eval-sequences", "4", "--out", out,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "cope: cope (interp variant: one table per head)" in result.output
    html = (out / "report.html").read_text()
    assert "CoPE here: cope (interp variant: one table per head)" in html


TEXT_TINY = dict(
    task=None,
    text=True,
    seeds=(0,),
    text_steps=2,
    batch_size=4,
    n_layers=1,
    d_model=16,
    n_heads=2,
    d_mlp=32,
    text_ctx=16,
    text_eval_ctx=(16, 32),
    text_max_chars=20_000,
    text_eval_blocks=4,
)


def test_text_data_prose_and_code_same_tokens_at_every_context() -> None:
    from interp.analysis.pe_bench import text_data
    from interp.data import ByteTokenizer

    train, val, chars = text_data(PEBenchConfig(**TEXT_TINY))
    assert set(val) == {"prose", "code"} and chars == {"prose": 10_000, "code": 10_000}
    assert train.shape[1] == 16 and len(train) > 100
    tok = ByteTokenizer()
    for kind in ("prose", "code"):
        short, long = val[kind][16], val[kind][32]
        assert len(long) == 4 and len(short) == 8  # 4 blocks of the longest context
        assert torch.equal(long.flatten(), short.flatten())  # the same held-out tokens
    code = "".join(tok.decode(b.tolist()) for b in val["code"][32])
    prose = "".join(tok.decode(b.tolist()) for b in val["prose"][32])
    assert code.count("(") + code.count("=") > prose.count("(") + prose.count("=")


def test_text_perplexity_counts_only_the_tail() -> None:
    from interp.analysis.pe_bench import text_perplexity
    from interp.models.transformer import HookedTransformer

    model = HookedTransformer(
        ModelConfig(n_layers=1, d_model=16, n_heads=2, d_mlp=32, d_vocab=11, n_ctx=8,
                    positional="cope"), seed=0,
    ).eval()  # fmt: skip
    blocks = torch.randint(0, 11, (5, 12), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        logp = model(blocks).log_softmax(-1)
    nll = -logp[:, :-1].gather(-1, blocks[:, 1:, None])[..., 0]  # prediction at t of t + 1
    assert text_perplexity(model, blocks, 2, "cpu") == pytest.approx(math.exp(nll.mean()), 1e-5)
    tail = text_perplexity(model, blocks, 3, "cpu", tail_from=8)
    assert tail == pytest.approx(math.exp(nll[:, 8:].mean()), rel=1e-5)
    assert tail != pytest.approx(math.exp(nll.mean()), rel=1e-3)


def test_text_bench_prose_code_and_longer_contexts() -> None:
    from interp.analysis.pe_bench import format_text_table

    text = run_pe_bench(PEBenchConfig(text_encodings=("absolute", "rope", "cope"), **TEXT_TINY))[
        "text"
    ]
    assert text["kinds"] == ["prose", "code"] and text["eval_ctx"] == [16, 32]
    rows = {row["pe"]: row for row in text["rows"]}
    assert rows["absolute"]["perplexity"]["code"]["32"] is None  # its table ends at 16
    for pe in ("rope", "cope"):
        for kind in ("prose", "code"):
            ppl, tail = rows[pe]["perplexity"][kind], rows[pe]["perplexity_tail"][kind]
            assert 1 < ppl["16"] < 400 and 1 < ppl["32"] < 400 and 1 < tail["32"] < 400
            assert "16" not in tail  # no tail inside the training context
    table = format_text_table(text)
    assert [r[:2] for r in table[:2]] == [["absolute", "prose"], ["absolute", "code"]]
    assert table[0][3] == "n/a" and re.fullmatch(r"[\d.]+ \([\d.]+\)", table[-1][3])


def test_cli_text_only_with_report(tmp_path) -> None:
    out = tmp_path / "text"
    result = invoke(
        "pe-bench", "--task", "none", "--text", "--text-pe", "rope,cope", "--seeds", "0",
        "--text-steps", "2", "--batch-size", "4", "--layers", "1", "--d-model", "16",
        "--heads", "2", "--d-mlp", "16", "--text-ctx", "16", "--text-eval-ctx", "16,32",
        "--text-max-chars", "20000", "--out", out,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "text perplexity" in result.output and "prose" in result.output
    html = (out / "report.html").read_text()
    assert "text: code" in html and "ppl @ 32, past training ctx" in html


# --------------------------------------------------------------------------- the experiment
def _row(pe: str, values: list[float]) -> dict:
    return {"pe": pe, "variant": pe, "val": interval(values, 0, 100)}


def test_headline_claims_a_winner_only_when_the_intervals_separate() -> None:
    from interp.experiments.pe_bench import split_verdict

    apart = [_row("rope", [10.0, 11.0, 12.0]), _row("cope", [1.0, 1.5, 2.0])]
    assert split_verdict(apart, "val").startswith("val: cope lowest, its 95% interval below")
    overlap = [_row("rope", [2.0, 6.0, 10.0]), _row("cope", [1.0, 5.0, 9.0])]
    text = split_verdict(overlap, "val")
    assert "no encoding separated" in text and "lowest" not in text
    some = [_row("abs", [50.0, 51.0, 52.0]), _row("rope", [2.0, 6.0, 10.0]),
            _row("cope", [1.0, 5.0, 9.0])]  # fmt: skip
    text = split_verdict(some, "val")
    assert text.startswith("val: cope below abs (95% intervals apart), not separated")
    one_seed = [_row("rope", [3.0]), _row("cope", [1.0])]
    text = split_verdict(one_seed, "val")
    assert "one seed, so no interval and no winner" in text and "lowest mean cope" in text
    tie = [_row("rope", [0.0]), _row("cope", [0.0])]
    assert "lowest mean rope and cope" in split_verdict(tie, "val")


def test_headline_names_encodings_that_did_not_learn_in_distribution() -> None:
    """#17: a model that never learned the task in distribution is no evidence out of it; all
    failed is inconclusive, some failed names them, none failed adds nothing."""
    from interp.experiments.pe_bench import pe_bench_headline

    def results(rope: list[float], cope: list[float]) -> dict:
        rows = [_row("rope", rope), _row("cope", cope)]
        for row in rows:
            row["ood"] = row["val"]
        return {"task": {"task": "flipflop", "splits": ["val", "ood"], "table": rows}}

    some = pe_bench_headline(results([1.0, 2.0, 3.0], [49.0, 52.0, 55.0]))
    assert "Not learned in distribution (val token error >= 50%): cope;" in some
    assert "Inconclusive" not in some
    none = pe_bench_headline(results([51.0, 52.0, 53.0], [60.0, 61.0, 62.0]))
    assert "Inconclusive: no encoding learned flipflop" in none and "Not learned" not in none
    both = pe_bench_headline(results([1.0, 2.0, 3.0], [4.0, 5.0, 6.0]))
    assert "Not learned" not in both and "Inconclusive" not in both


def test_cli_default_flipflop_length_unless_given(tmp_path) -> None:
    """#17: the command's Flip-Flop is 16 instructions (the paper's 256 is -o length=256)."""
    args = ["pe-bench", "--pe", "rope", "--seeds", "0", "--steps", "1", "--batch-size", "2",
            "--layers", "1", "--d-model", "8", "--heads", "1", "--d-mlp", "0",
            "--eval-sequences", "2", "--no-report"]  # fmt: skip
    assert invoke(*args, "--out", tmp_path / "a").exit_code == 0
    config = json.loads((tmp_path / "a" / "config.json").read_text())
    assert config["task"] == "flipflop" and config["task_options"] == {"length": 16}
    assert invoke(*args, "-o", "length=4", "--out", tmp_path / "b").exit_code == 0
    config = json.loads((tmp_path / "b" / "config.json").read_text())
    assert config["task_options"] == {"length": 4}


def test_config_reads_back_from_its_config_json(tmp_path) -> None:
    from interp.experiments import execute
    from interp.io import read_json

    cfg = PEBenchConfig(task="flipflop", task_options={"length": 4}, encodings=("rope",),
                        seeds=(3,), **TINY)  # fmt: skip
    outcome = execute("pe-bench", cfg, tmp_path / "run", report=False)
    stored = read_json(tmp_path / "run" / "config.json", "config")
    assert stored["kind"] == "pe-bench" and stored["seed"] == 3
    assert stored["variants"] == {"rope": "rope"}
    back = PEBenchConfig.from_dict(stored)
    assert back == cfg.resolved() and back.seeds == (3,)
    assert back.to_dict() == cfg.resolved().to_dict()
    results = read_json(tmp_path / "run" / "results.json", "results")
    assert list(results) == ["kind", "schema", "config", "task", "headline"]
    assert results["headline"] == outcome.results.headline
    assert results["headline"].startswith("pe-bench flipflop, token error %: val: rope ")
    assert "seed" not in results["config"]


def test_cli_json_prints_the_results(tmp_path) -> None:
    out = tmp_path / "bench"
    result = invoke(
        "pe-bench", "--task", "flipflop", "-o", "length=4", "--pe", "rope", "--seeds", "0",
        "--steps", "2", "--batch-size", "4", "--layers", "1", "--d-model", "16", "--heads", "2",
        "--d-mlp", "16", "--eval-sequences", "4", "--no-report", "--json", "--out", out,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert printed["kind"] == "pe-bench" and printed["run"] == str(out)
    assert printed["task"] == json.loads((out / "results.json").read_text())["task"]
    assert not (out / "report.html").exists()


def test_a_run_of_the_earlier_layout_resumes(tmp_path) -> None:
    """A run started before pe-bench was on the experiments layer (config.json without a
    schema, results written by the command) resumes from its cells to the same results."""
    out = tmp_path / "bench"
    args = ["pe-bench", "--task", "flipflop", "-o", "length=4", "--pe", "rope,cope", "--seeds",
            "0", "--steps", "2", "--batch-size", "4", "--layers", "1", "--d-model", "16",
            "--heads", "2", "--d-mlp", "16", "--eval-sequences", "4", "--no-report", "--out", out]  # fmt: skip
    assert invoke(*args).exit_code == 0
    done = json.loads((out / "results.json").read_text())
    config = json.loads((out / "config.json").read_text())
    old = {"kind": config.pop("kind"), "seed": config.pop("seed")}
    config.pop("schema")
    (out / "config.json").write_text(json.dumps({**old, **config}))
    (out / "results.json").unlink()
    (out / "cells" / "task-cope-seed0.json").unlink()
    result = invoke(*args, "--resume")
    assert result.exit_code == 0, result.output
    assert "rope (seed 0) already done" in result.output
    assert json.loads((out / "results.json").read_text()) == done


def test_command_task_options_is_one_table_for_every_command() -> None:
    """precache and pe-bench take their CPU task options from one table, under the ones given."""
    from interp.tasks import task_names
    from interp.tasks.defaults import COMMAND_TASK_OPTIONS, command_task_options

    assert command_task_options("pe-bench", "flipflop") == {"length": 16}
    assert command_task_options("pe-bench", "flipflop", {"length": 64}) == {"length": 64}
    assert command_task_options("precache", "precache", {"length": 8}) == {
        "frequency": 3.0, "length": 8}  # fmt: skip
    assert command_task_options("pe-bench", "copy", {"length": 5}) == {"length": 5}
    assert command_task_options("pe-bench", None) == {}
    for _, task in COMMAND_TASK_OPTIONS:  # every entry names a registered task
        assert task in task_names()


@pytest.mark.parametrize(
    ("d_model", "env", "expected"),
    [(64, {}, 1), (256, {}, 1), (768, {}, None), (64, {"OMP_NUM_THREADS": "2"}, None),
     (64, {"OMP_NUM_THREADS": " "}, 1)],
)  # fmt: skip
def test_small_model_threads(d_model: int, env: dict[str, str], expected: int | None) -> None:
    """Small models train on one thread; wide ones, or an OMP_NUM_THREADS the user set, keep
    torch's count (precache's and pe-bench's training)."""
    from interp.seed import small_model_threads

    assert small_model_threads(d_model, env) == expected
