"""Representational collapse: the one-pass sweep against per-length passes, the synthetic check."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from helpers import tiny_model

from interp.analysis.collapse import (
    CollapseConfig,
    build_family,
    capture_states,
    collapse_lengths,
    layer_names,
    plan_passes,
    run_collapse,
)
from interp.analysis.precision import FORMATS
from interp.errors import ConfigError


@pytest.fixture(scope="module")
def model():
    return tiny_model(positional="rope", n_ctx=40, d_model=16, init_range=0.2)


def _sequences(model, cfg, lengths):
    fam = build_family(model, cfg)
    seqs = {}
    for n in lengths:
        for s in fam.pair(n):
            seqs.setdefault(tuple(s), None)
    return list(seqs)


@pytest.mark.parametrize("family", ["ones", "digits"])
def test_one_pass_equals_per_length_float32(model, family):
    cfg = CollapseConfig(family=family, prompt_tokens=(5, 6, 7))
    seqs = _sequences(model, cfg, range(1, 30))
    names = layer_names(model)
    fp32 = FORMATS["float32"]
    fast, passes = capture_states(model, seqs, names, fp32, "native", "one-pass", batch_tokens=256)
    slow, slow_passes = capture_states(model, seqs, names, fp32, "native", "per-length")
    assert slow_passes == len(seqs)
    if family == "ones":
        assert passes == 1
    else:  # digits: v*_n is a chain of its own unless the next random digit happens to be a 1
        assert 1 < passes < len(seqs)
    for name in names:
        rel = (fast[name] - slow[name]).norm(dim=-1) / slow[name].norm(dim=-1)
        assert rel.max() <= 1e-6, name


@pytest.mark.parametrize("fmt", ["bfloat16", "float16", "float8_e4m3fn", "float8_e5m2"])
def test_one_pass_same_collapse_lengths_emulated(model, fmt):
    base = dict(formats=(fmt,), prompt_tokens=(5, 6, 7), every=3, separator=9, max_length=30)
    fast = run_collapse(model, CollapseConfig(**base))
    slow = run_collapse(model, CollapseConfig(method="per-length", **base))
    for a, b in zip(fast["runs"], slow["runs"], strict=True):
        assert a["variant"] == b["variant"]
        assert a["collapse_length"] == b["collapse_length"]
        assert a["identical_length"] == b["identical_length"]
        assert a["first_collapsed"] == b["first_collapsed"]
        assert b["method"] == "per-length"
    sep = next(r for r in fast["runs"] if r["variant"] == "separator")
    assert sep["passes"] == 1  # lengths not multiples of k: v* continues the pattern
    assert sep["lengths"] and all(n % 3 for n in sep["lengths"])  # (fits the context)


def test_plan_passes_prefix_chains():
    seqs = [(1, 2), (1, 2, 3), (1, 4), (1,)]
    roots, where = plan_passes(seqs, "one-pass")
    assert sorted(roots) == [(1, 2, 3), (1, 4)]
    assert [roots[r][: p + 1] for r, p in where] == seqs
    roots, where = plan_passes(seqs, "per-length")
    assert len(roots) == 4


def test_collapse_lengths_definition():
    lengths = [1, 2, 3, 4, 5]
    assert collapse_lengths(lengths, [False, True, False, True, True]) == (4, 2)
    assert collapse_lengths(lengths, [True] * 5) == (1, 1)
    assert collapse_lengths(lengths, [True, True, True, True, False]) == (None, 1)


def test_synthetic_no_positional_collapses_sooner_in_bf16():
    """The paper's synthetic check: 1 layer, 1 head, d=64, no positional encoding, Gaussian
    weights.  The distance falls with n; bfloat16 reaches its resolution within the range,
    float32 does not (or later)."""
    m = tiny_model(
        positional="none", n_layers=1, n_heads=1, d_model=64, d_mlp=0, n_ctx=256, init_range=0.125
    )
    cfg = CollapseConfig(formats=("float32", "bfloat16"), prompt_tokens=(2, 3, 4, 5, 6, 7), every=0)
    result = run_collapse(m, cfg)
    fp32, bf16 = result["runs"]
    final = result["final_layer"]
    curve = fp32["curves"][final]["linf"]
    assert curve[199] < curve[49] < curve[9] < curve[0]
    later = [curve[i] for i in range(10, len(curve), 10)]
    assert sum(b < a for a, b in zip(later, later[1:], strict=False)) >= 0.9 * (len(later) - 1)
    assert fp32["passes"] == 1 and bf16["passes"] == 1
    c32, c16 = fp32["collapse_length"][final], bf16["collapse_length"][final]
    assert c16 is not None
    assert c32 is None or c16 < c32


def test_absolute_positions_note():
    m = tiny_model(positional="absolute", n_ctx=20)
    result = run_collapse(m, CollapseConfig(formats=("float32",), every=0))
    assert any("absolute positions" in n for n in result["notes"])


def test_bad_input_is_one_line(model):
    with pytest.raises(ConfigError, match="beyond the model context 40"):
        run_collapse(model, CollapseConfig(max_length=60))
    with pytest.raises(ConfigError, match="empty pattern"):
        run_collapse(model, CollapseConfig(family="pattern", tokens=()))
    with pytest.raises(ConfigError, match="unknown dtype"):
        run_collapse(model, CollapseConfig(formats=("float64x",)))
    with pytest.raises(ConfigError, match="unknown family"):
        run_collapse(model, CollapseConfig(family="twos"))
    with pytest.raises(ConfigError, match="outside the vocabulary"):
        run_collapse(model, CollapseConfig(family="pattern", tokens=(99,)))
    with pytest.raises(ConfigError, match="empty length range"):
        run_collapse(model, CollapseConfig(min_length=10, max_length=5))


def test_pattern_family_falls_back_for_v_star(model):
    cfg = CollapseConfig(
        family="pattern", tokens=(3, 4), formats=("float32",), every=0, max_length=10
    )
    result = run_collapse(model, cfg)
    run = result["runs"][0]
    assert run["passes"] > 1 and run["method"] == "prefix-chains"
    assert torch.isfinite(torch.tensor(run["curves"][result["final_layer"]]["linf"])).all()


# --------------------------------------------------------------------------- CLI


@pytest.fixture(scope="module")
def model_run(tmp_path_factory):
    from helpers import tiny_task_job

    from interp.train.job import run_training

    return run_training(tmp_path_factory.mktemp("collapse") / "model", tiny_task_job(steps=2))


def _invoke(*args):
    from typer.testing import CliRunner

    from cli.main import app

    return CliRunner().invoke(app, ["collapse", *args])


def test_collapse_cli_writes_run_and_model_analysis(model_run, tmp_path):
    import json

    out = tmp_path / "c"
    res = _invoke(
        "--model", str(model_run.path), "--dtypes", "fp32,bf16,e4m3",
        "--family", "pattern", "--token-ids", "2,3", "--lengths", "2:6",
        "--separator", "4", "--every", "2", "--out", str(out),
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    results = json.loads((out / "results.json").read_text())
    assert [r["format"] for r in results["runs"]][::2] == ["float32", "bfloat16", "float8_e4m3fn"]
    assert results["lengths"] == [2, 3, 4, 5, 6]
    assert {r["variant"] for r in results["runs"]} == {"plain", "separator"}
    assert json.loads((out / "config.json").read_text())["kind"] == "collapse"
    assert "Representational collapse" in (out / "report.html").read_text()
    # one folder per analysis run of the model (analyses never replace each other)
    (saved,) = (model_run.path / "analyses" / "collapse").glob("*/results.json")
    assert json.loads(saved.read_text())["kind"] == "collapse"
    assert "Representational collapse" in (model_run.path / "report.html").read_text()


def test_collapse_cli_overwrite_replaces_an_existing_run(model_run, tmp_path):
    import json

    out = tmp_path / "c"
    args = ["--model", str(model_run.path), "--dtypes", "fp32", "--family", "pattern",
            "--token-ids", "2,3", "--lengths", "2:4", "--out", str(out)]  # fmt: skip
    assert _invoke(*args).exit_code == 0
    (out / "results.json").write_text("{}")
    refused = _invoke(*args)
    assert refused.exit_code == 2 and "already exists" in refused.output
    assert "--overwrite" in refused.output and "--resume" not in refused.output
    res = _invoke(*args, "--overwrite")
    assert res.exit_code == 0, res.output
    assert json.loads((out / "results.json").read_text())["lengths"] == [2, 3, 4]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--dtype", "float12"], "unknown dtype"),
        (["--lengths", "1:500"], "beyond the model context"),
        (["--lengths", "x"], "not N or A:B"),
        (["--family", "pattern", "--token-ids", ""], "empty pattern"),
        (["--mode", "native", "--dtype", "e5m2"], "emulated only"),
        (["--model", "/nonexistent/model/dir"], "could not load model"),
    ],
)
def test_collapse_cli_errors_are_one_line(model_run, tmp_path, args, message):
    out = tmp_path / "never"
    if "--model" not in args:
        args = ["--model", str(model_run.path), *args]
    res = _invoke(*args, "--out", str(out))
    assert res.exit_code == 2, res.output
    assert res.output.count("\n") == 1 and res.output.startswith("error:")
    assert message in res.output
    assert not out.exists()


# --------------------------------------------------------------------------- HF models


@pytest.fixture(scope="module")
def hf_dirs(tmp_path_factory):
    from hf_fixtures import save_tiny_gpt2, save_tiny_llama

    root = tmp_path_factory.mktemp("hf")
    return {"llama": save_tiny_llama(root / "llama"), "gpt2": save_tiny_gpt2(root / "gpt2")}


@pytest.fixture(scope="module")
def bridge(hf_dirs):
    from interp import load_model

    m = load_model(str(hf_dirs["llama"]))
    assert type(m).__name__ == "TransformerBridge"
    return m


def _representable(x, fmt):
    finite = torch.isfinite(x)
    return torch.equal(x[finite], x[finite].to(fmt.dtype).float())


def test_bridge_emulated_rounds_weights_and_every_hook_boundary(bridge):
    """Values arriving at a bridge hook that only forwards a previous hook's output (a linear's
    input is the norm's output, a block's input the previous block's output) are already
    bf16 when emulating: the rounding propagates through the HF modules.  In float32 they
    are not, so the check can fail."""
    import warnings

    from interp.analysis.precision import _unique_hooks, precision_context

    bf16 = FORMATS["bfloat16"]
    fed = [f"blocks.{i}.attn.q.hook_in" for i in range(2)] + [
        "blocks.1.hook_in",
        "ln_final.hook_in",
        "blocks.0.mlp.gate.hook_in",
    ]
    names = [n for n, _ in _unique_hooks(bridge)]
    assert not any(n.endswith(("hook_result", "_input", "hook_mlp_in")) for n in names)
    x = torch.tensor([[0, 5, 9, 9, 9, 9, 9, 9]])
    before = [p.detach().clone() for p in bridge.parameters()]

    def run(fmt):
        arrived, left = {}, {}

        def arrive(t, hook):
            arrived[hook.name] = t.detach().clone()

        def leave(t, hook):
            left[hook.name] = t.detach().clone()

        with precision_context(bridge, fmt, "emulated") as (m, hooks), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if hooks:
                assert all(_representable(p.detach(), fmt) for p in m.parameters())
            m.run_with_hooks(
                x,
                fwd_hooks=[(n, arrive) for n in fed]
                + hooks
                + [(n, leave) for n in names if n != "embed.hook_in"],
            )
        return arrived, left

    arrived, left = run(bf16)
    for name, t in arrived.items():
        assert _representable(t, bf16), name
    assert len(left) > 50 and all(_representable(t, bf16) for t in left.values())
    arrived32, _ = run(FORMATS["float32"])
    assert not all(_representable(t, bf16) for t in arrived32.values())
    assert all(torch.equal(a, p) for a, p in zip(before, bridge.parameters(), strict=True))


def test_bridge_one_pass_equals_per_length_and_modes_agree(bridge):
    from interp.analysis.collapse import final_state_hook

    assert final_state_hook(bridge) == "ln_final.hook_out"
    base = dict(prompt="", max_length=24, separator=",", every=3)
    fast = run_collapse(bridge, CollapseConfig(formats=("float32", "bfloat16"), **base))
    slow = run_collapse(
        bridge, CollapseConfig(formats=("float32", "bfloat16"), method="per-length", **base)
    )
    final = fast["final_layer"]
    assert final == "ln_final.hook_out" and fast["model"]["bridge"]
    for a, b in zip(fast["runs"], slow["runs"], strict=True):
        assert a["variant"] == b["variant"] and b["passes"] > a["passes"]
        assert a["collapse_length"] == b["collapse_length"]
        assert a["identical_length"] == b["identical_length"]
        for name in fast["layers"]:
            fa = torch.tensor(a["curves"][name]["l2"])
            fb = torch.tensor(b["curves"][name]["l2"])
            assert torch.isfinite(fa).all()
            if a["format"] == "float32":
                assert ((fa - fb).abs() <= 1e-6 * fb.abs() + 1e-6).all(), name
            else:  # the same rounded states, whichever pass they come from
                assert torch.equal(fa, fb), name
    fp32 = fast["runs"][0]["curves"][final]["linf"]
    assert fp32[-1] < fp32[0]  # the distance falls with n on this random Llama too
    # emulated vs native bf16: the same curve to within a few bf16 steps at the state's scale
    native = run_collapse(
        bridge, CollapseConfig(formats=("bfloat16",), mode="native", **{**base, "every": 0})
    )
    emu = next(r for r in fast["runs"] if r["format"] == "bfloat16" and r["variant"] == "plain")
    emu = emu["curves"][final]
    nat = native["runs"][0]["curves"][final]
    assert native["runs"][0]["mode"] == "native"
    for e, n, r in zip(emu["linf"], nat["linf"], emu["resolution"], strict=True):
        assert abs(e - n) <= 8 * r


@pytest.mark.parametrize("kind", ["gpt2", "llama"])
def test_collapse_and_squash_cli_on_local_hf_dirs(hf_dirs, tmp_path, kind):
    import json
    import math

    from typer.testing import CliRunner

    from cli.main import app

    out = tmp_path / "c"
    res = _invoke(
        "--model", str(hf_dirs[kind]), "--dtypes", "fp32,bf16,e5m2", "--prompt", "",
        "--lengths", "1:20", "--out", str(out), "--no-report",
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    results = json.loads((out / "results.json").read_text())
    assert results["model"]["bridge"] is (kind == "llama")
    assert results["model"]["class"] == (
        "TransformerBridge" if kind == "llama" else "HookedTransformer"
    )
    final = results["final_layer"]
    assert final == ("ln_final.hook_out" if kind == "llama" else "ln_final.hook_normalized")
    assert [r["format"] for r in results["runs"] if r["variant"] == "plain"] == [
        "float32", "bfloat16", "float8_e5m2"
    ]  # fmt: skip
    for r in results["runs"]:
        assert all(math.isfinite(v) for v in r["curves"][final]["linf"])
    assert len(results["verdicts"]) == len(results["runs"])
    if kind == "gpt2":  # learned absolute positions: said plainly
        assert any("absolute positions" in n for n in results["notes"])
    sq = tmp_path / "s"
    res = CliRunner().invoke(
        app, ["squash", "--model", str(hf_dirs[kind]), "--length", "8", "--out", str(sq)]
    )
    assert res.exit_code == 0, res.output
    squash = json.loads((sq / "results.json").read_text())
    assert squash["final_layer"] == final
    for p in squash["prompts"].values():
        curve = p["sensitivity"][final]
        assert len(curve) == len(p["tokens"])
        assert all(math.isfinite(v) and v > 0 for v in curve)
    assert "Over-squashing" in (sq / "report.html").read_text()


def test_collapse_prints_an_estimated_duration_and_weights_its_bar(model):
    from interp.progress import Callbacks

    notes: list[str] = []
    seen: list[int] = []
    progress = Callbacks(
        on_start=lambda done, total: seen.append(total), on_step=seen.append, on_note=notes.append
    )
    cfg = CollapseConfig(formats=("float32", "bfloat16"), prompt_tokens=(5,), separator=9)
    result = run_collapse(model, dataclasses.replace(cfg, max_length=20), progress=progress)
    assert any(n.startswith("estimated duration ~") and "fp32 plain" in n for n in notes)
    assert seen[0] == 100 and seen[-1] == 100  # percent of the estimated work
    assert result["timing"]["estimated_seconds"] > 0


@pytest.mark.parametrize(
    ("identical", "expected"),
    [
        ([False, False, False, False, True], (None, 5)),  # one length at the end: not a collapse
        ([False, False, False, True, True], (None, 4)),  # two: still too short a run
        ([False, False, True, True, True], (3, 3)),  # three: collapsed from the first of them
        ([True, False, True, True, True], (3, 1)),  # an early blip is not the collapse
        ([True, True, True, True, False], (None, 1)),  # apart again at the longest length
        ([True] * 5, (1, 1)),
        ([False] * 5, (None, None)),
    ],
)
def test_collapse_rule_needs_a_run_of_lengths(identical, expected) -> None:
    """#16 item 4: COLLAPSED needs the distance at resolution at every length from n to the
    longest tried, and over at least MIN_RUN (3) of them."""
    from interp.analysis.collapse import MIN_RUN

    assert MIN_RUN == 3
    assert collapse_lengths([1, 2, 3, 4, 5], identical, MIN_RUN) == expected


def test_collapse_rule_with_fewer_lengths_than_the_run() -> None:
    from interp.analysis.collapse import MIN_RUN

    assert collapse_lengths([8, 16], [True, True], MIN_RUN) == (None, 8)
    assert collapse_lengths([], [], MIN_RUN) == (None, None)


def test_the_default_shows_bf16_collapsing_and_fp32_not(tmp_path, monkeypatch):
    """#17: ``interp collapse --dtype bfloat16`` with no other option, on a stand-in of the
    default model's configuration (RoPE, LayerNorm, GELU, tied embeddings; small and briefly
    trained): lengths run past its context (RoPE needs no trained positions), bf16 collapses at
    the final layer and the float32 baseline, measured beside it, does not."""
    import json

    import interp.demo
    from interp.config import DataConfig, OptimConfig, TrainConfig
    from interp.experiments.collapse import CONTEXT_FACTOR

    model = interp.demo.DEMO_MODEL.replace(n_layers=2, d_model=32, n_heads=2, d_mlp=128, n_ctx=16)
    train = TrainConfig(steps=2, batch_size=4, eval_every=2, eval_batches=1, checkpoint_every=2,
                        optim=OptimConfig(lr=1e-3, warmup_steps=1))  # fmt: skip
    data = DataConfig(source="corpus", corpus="builtin:prose", max_chars=20_000, tokenizer="byte")
    monkeypatch.setattr(interp.demo, "DEMO_MODEL", model)
    monkeypatch.setattr(interp.demo, "DEMO_TRAIN", train)
    monkeypatch.setattr(interp.demo, "DEMO_DATA", data)
    out = tmp_path / "c"
    res = _invoke("--dtype", "bfloat16", "--out", str(out))
    assert res.exit_code == 0, res.output
    results = json.loads((out / "results.json").read_text())
    assert results["lengths"][-1] > model.n_ctx  # past the trained context
    assert results["config"]["context"] == CONTEXT_FACTOR * model.n_ctx
    final = results["summary"]["collapse_length"]
    assert final["bfloat16"] is not None and final["float32"] is None
    assert results["headline"].startswith("Collapse at ln_final: bf16 from n = ")
    assert "fp32 not within" in results["headline"]
    assert any("past the 16 it was trained on" in n for n in results["notes"])
    assert any("float32 added" in n for n in results["notes"])


def test_context_past_the_model_is_refused_for_learned_positions():
    from interp.analysis.collapse import validate

    absolute = tiny_model(positional="absolute", n_ctx=16, d_model=16)
    with pytest.raises(ConfigError, match="past the model's 16 tokens"):
        validate(absolute, CollapseConfig(prompt="", context=64, formats=("float32",)))
    rope = tiny_model(positional="rope", n_ctx=16, d_model=16)
    plan = validate(rope, CollapseConfig(prompt="", context=64, formats=("float32",)))
    assert plan["lengths"][-1] == 63 - len(plan["family"].prefix)
