"""``interp reproduce collapse --quick``: claims computed from measurements, report written."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from cli.main import app


def test_reproduce_collapse_quick_claims_are_measured(tmp_path):
    import interp.reproductions  # noqa: F401
    from interp.reproduce import reproduction_names

    assert "collapse" in reproduction_names()
    out = tmp_path / "r"
    res = CliRunner().invoke(app, ["reproduce", "collapse", "--quick", "--out", str(out)])
    assert res.exit_code == 0, res.output
    claims = json.loads((out / "claims.json").read_text())
    assert len(claims) == 4 and all(c["passed"] is not None for c in claims)
    m = json.loads((out / "measurements.json").read_text())[0]
    collapse = json.loads((out / "analyses" / "collapse" / "results.json").read_text())
    final = collapse["final_layer"]
    fp32, bf16 = collapse["runs"][0], collapse["runs"][1]
    # the numbers in the claims are the saved measurements, recomputed here from the curves
    curve = fp32["curves"][final]["linf"]
    assert m["linf_first"] == curve[0] and m["linf_last"] == curve[-1]
    assert f"{curve[-1]:.2g} at n={fp32['lengths'][-1]}" in claims[0]["ours"]
    assert m["collapse_bf16"] == bf16["collapse_length"][final]
    assert f"bf16 {m['collapse_bf16']} vs fp32 {m['collapse_fp32']}" in claims[1]["ours"]
    assert claims[1]["passed"] == (
        m["collapse_bf16"] is not None
        and (m["collapse_fp32"] is None or m["collapse_bf16"] < m["collapse_fp32"])
    )
    assert f"n={m['first_bf16_sep']}" in claims[2]["ours"]
    squash = json.loads((out / "analyses" / "squash" / "results.json").read_text())
    shares = squash["prompts"]["copy-first"]["shares"][squash["final_layer"]]
    assert f"copy-first {shares['first_quarter']:.3f}" in claims[3]["ours"]
    assert claims[3]["passed"] == all(
        s["first_quarter"] > s["last_quarter_excl_last"] for s in m["shares"].values()
    )
    html = (out / "report.html").read_text()
    assert "Representational collapse" in html and "Over-squashing" in html
    assert claims[0]["paper"] in html or "decays with n" in html
