"""Float formats: emulated rounding is tensor.to(format) bit for bit; emulated vs native."""

from __future__ import annotations

import pytest
import torch
from helpers import tiny_model

from interp.analysis.precision import (
    FORMATS,
    bits_equal,
    parse_format,
    parse_formats,
    precision_context,
    resolve_mode,
    round_to_format,
)
from interp.errors import ConfigError


def _probe_values() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    scales = torch.logspace(-12, 6, 37)
    x = (torch.randn(37, 200, generator=g) * scales[:, None]).flatten()
    special = torch.tensor(
        [0.0, -0.0, 1.0, -1.0, 448.0, 449.0, 464.0, 57344.0, 65504.0, 65520.0, 1e-45, 3e38, -3e38]
    )
    return torch.cat([x, special])


@pytest.mark.parametrize("name", list(FORMATS))
def test_rounding_matches_to_bit_for_bit(name):
    fmt = FORMATS[name]
    x = _probe_values()
    ours = round_to_format(x, fmt)
    ref = x.to(fmt.dtype).to(torch.float32)
    assert ours.dtype == torch.float32
    assert torch.equal(ours.view(torch.int32), ref.view(torch.int32))
    assert bits_equal(ours, x, fmt).all()
    # rounding is idempotent: a rounded value is representable
    assert torch.equal(round_to_format(ours, fmt).view(torch.int32), ours.view(torch.int32))


def test_rounding_nan_inf_and_mask():
    fmt = FORMATS["float8_e4m3fn"]
    x = torch.tensor([float("-inf"), float("inf"), float("nan"), 1e6])
    plain = round_to_format(x, fmt)
    assert plain[0] == -448 and plain[1] == 448 and plain[2].isnan()  # what torch does
    kept = round_to_format(x, fmt, keep_inf=True)
    assert kept[0] == float("-inf") and kept[1] == float("inf") and kept[3] == 448


def test_parse_formats_and_modes():
    assert parse_format("bf16").name == "bfloat16"
    assert parse_format("torch.float16").name == "float16"
    assert [f.short for f in parse_formats("fp32,e4m3,e5m2,fp32")] == ["fp32", "e4m3", "e5m2"]
    with pytest.raises(ConfigError, match="unknown dtype"):
        parse_format("float12")
    bf16, e4m3 = FORMATS["bfloat16"], FORMATS["float8_e4m3fn"]
    assert resolve_mode("auto", bf16, "cpu") == "emulated"
    assert resolve_mode("auto", bf16, "cuda") == "native"
    assert resolve_mode("auto", e4m3, "cuda") == "emulated"
    with pytest.raises(ConfigError, match="emulated only"):
        resolve_mode("native", e4m3, "cpu")


def test_auto_mode_follows_the_measured_native_speed(monkeypatch):
    """``auto`` is native where the native kernels measure fast (bf16 on an AVX-512 bf16 CPU,
    ~2x float32), emulated where slow (fp16 on most CPUs); the env var decides without timing."""
    import interp.analysis.precision as precision

    bf16, fp16 = FORMATS["bfloat16"], FORMATS["float16"]
    monkeypatch.delenv("INTERP_NATIVE_LOWP", raising=False)
    speed = {torch.bfloat16: 0.5, torch.float16: 4.0}
    monkeypatch.setattr(precision, "native_slowdown", lambda dtype, device="cpu": speed[dtype])
    assert resolve_mode("auto", bf16, "cpu") == "native"
    assert resolve_mode("auto", fp16, "cpu") == "emulated"
    speed[torch.bfloat16] = 2.0
    assert resolve_mode("auto", bf16, "cpu") == "emulated"
    assert resolve_mode("emulated", bf16, "cpu") == "emulated"  # asked: never overridden
    monkeypatch.setenv("INTERP_NATIVE_LOWP", "fast")
    assert resolve_mode("auto", fp16, "cpu") == "native"


def _final_states(model, tokens, fmt, mode):
    out = {}

    def grab(x, hook):
        out["x"] = x.float()

    with torch.no_grad(), precision_context(model, fmt, mode) as (run_model, hooks):
        names = {n for n, _ in hooks}
        fwd = [(lambda n: n in names, hooks[0][1])] if hooks else []
        run_model.run_with_hooks(tokens, fwd_hooks=[*fwd, ("ln_final.hook_normalized", grab)])
    return out["x"]


def test_emulated_rounds_every_hook_and_restores_weights():
    model = tiny_model(positional="rope")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    fmt = FORMATS["bfloat16"]
    seen = []

    def check(x, hook):
        if x.is_floating_point():
            finite = x[torch.isfinite(x)]
            seen.append(hook.name)
            assert torch.equal(finite, round_to_format(finite, fmt)), hook.name

    tokens = torch.randint(0, 20, (2, 10), generator=torch.Generator().manual_seed(1))
    with torch.no_grad(), precision_context(model, fmt, "emulated") as (m, hooks):
        names = {n for n, _ in hooks}
        for p in m.parameters():
            assert torch.equal(p, round_to_format(p, fmt))
        m.run_with_hooks(
            tokens, fwd_hooks=[(lambda n: n in names, hooks[0][1]), (lambda n: True, check)]
        )
    assert len(seen) == len(model.hook_dict)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k


@pytest.mark.parametrize("name", ["bfloat16", "float16"])
def test_emulated_close_to_native(name):
    """Emulated and native agree to a few units of the format (they round at different places)."""
    fmt = FORMATS[name]
    model = tiny_model(positional="rope", d_model=32, n_ctx=24)
    tokens = torch.randint(0, 20, (2, 24), generator=torch.Generator().manual_seed(2))
    ref = _final_states(model, tokens, FORMATS["float32"], "native")
    emu = _final_states(model, tokens, fmt, "emulated")
    nat = _final_states(model, tokens, fmt, "native")
    err_emu = (emu - ref).abs().max() / ref.abs().max()
    err_nat = (nat - ref).abs().max() / ref.abs().max()
    gap = (emu - nat).abs().max() / ref.abs().max()
    # measured: each ~1 eps of float32 (relative to the largest coordinate), 1.3 eps apart
    assert err_emu < 4 * fmt.eps and err_nat < 4 * fmt.eps
    assert gap < 4 * fmt.eps
