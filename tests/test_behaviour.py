"""Behaviour fixture: every case of ``tests/behaviour/cases.py`` recomputed and compared with
``tests/behaviour/fixture.json`` (recorded by ``python tests/behaviour/record.py``).

On the machine that recorded it (same torch, CPU capability, CPU model, ATEN_CPU_CAPABILITY and
thread count) the comparison is exact: bit-identical floats, identical strings and hashes.  A
machine of another signature may have its own recording, ``behaviour/machines/<slug>.json``
(``record.py --machine``): its cases are compared exactly there.
Elsewhere float kernels differ and training trajectories drift, so it is loose (structure,
verdicts and labels exact, numbers within each case's tolerance, chaotic numbers skipped): see
``cases.compare`` and the ``Tolerance`` of each case for the rules and the measured drift behind
them. A failure lists the paths that moved; if the change is meant, re-record the fixture and
say so in the commit.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from behaviour.cases import (
    CASES,
    CASES_BY_NAME,
    Rule,
    Tolerance,
    compare,
    machine_signature,
    normalize,
    run_case,
)

FIXTURE_PATH = Path(__file__).parent / "behaviour" / "fixture.json"
FIXTURE = json.loads(FIXTURE_PATH.read_text())
MACHINES = Path(__file__).parent / "behaviour" / "machines"
SHOWN = 25  # differences printed per failing case


def exact_mode() -> bool:
    return FIXTURE["machine"] == machine_signature()


def own_recording() -> dict | None:
    """This machine's own recording (``machines/*.json`` of this signature), if any."""
    for path in sorted(MACHINES.glob("*.json")):
        recording = json.loads(path.read_text())
        if recording["machine"] == machine_signature():
            return recording
    return None


@pytest.fixture(scope="module")
def model_base(tmp_path_factory) -> Path:
    """Where the shared tiny text run of probe/collapse/squash is trained (once per session)."""
    return tmp_path_factory.mktemp("behaviour-model")


def test_fixture_has_every_case() -> None:
    assert list(FIXTURE["cases"]) == [c.name for c in CASES]
    for path in sorted(MACHINES.glob("*.json")):  # a machine's own: a subset, in order
        names = list(json.loads(path.read_text())["cases"])
        assert names == [c.name for c in CASES if c.name in names], path.name


@pytest.mark.parametrize("name", [c.name for c in CASES])
def test_behaviour_matches_fixture(name: str, tmp_path: Path, model_base: Path) -> None:
    case = CASES_BY_NAME[name]
    ours = run_case(case, tmp_path, model_base)
    own = None if exact_mode() else own_recording()
    mine = own is not None and name in own["cases"]
    exact = exact_mode() or mine
    recorded = normalize((own if mine else FIXTURE)["cases"][name])
    problems = compare(recorded, normalize(ours), exact=exact, tol=case.tolerance)
    where = f"behaviour/machines/ ({own['machine']})" if mine else "fixture.json"
    mode = f"exact against {where}" if exact else f"loose (recorded on {FIXTURE['machine']})"
    assert not problems, (
        f"{name}: {len(problems)} difference(s), {mode}, "
        f"this machine {machine_signature()}:\n  "
        + "\n  ".join(problems[:SHOWN])
        + (f"\n  ... and {len(problems) - SHOWN} more" if len(problems) > SHOWN else "")
    )


# --------------------------------------------------------------------------- the comparison


def _set(obj, path: str, value) -> None:
    *parents, last = path.split("/")
    for p in parents:
        obj = obj[int(p)] if isinstance(obj, list) else obj[p]
    obj[int(last) if isinstance(obj, list) else last] = value


@pytest.mark.parametrize("exact", [True, False], ids=["exact", "loose"])
def test_comparison_catches_a_perturbed_fixture(exact: bool) -> None:
    """A copy of the fixture with one value changed must fail, in both modes; unchanged, pass."""
    recorded = FIXTURE["cases"]["train-task-copy"]
    tol = CASES_BY_NAME["train-task-copy"].tolerance
    assert compare(recorded, copy.deepcopy(recorded), exact, tol) == []

    rows = recorded["metrics.jsonl"]
    path, loss = "metrics.jsonl/0/loss", rows[0]["loss"]
    perturbations = {
        "a loss 1% off": (path, loss * 1.01),
        "a wrong int": ("metrics.jsonl/0/step", rows[0]["step"] + 1),
        "a missing row": ("metrics.jsonl", rows[:-1]),
        "a renamed key": ("metrics.jsonl/0", {k.upper(): v for k, v in rows[0].items()}),
        "a string": ("metrics.jsonl/0/split", "test"),
        "an int turned float": ("metrics.jsonl/0/step", float(rows[0]["step"])),
    }  # fmt: skip
    for what, (where, value) in perturbations.items():
        ours = copy.deepcopy(recorded)
        _set(ours, where, value)
        assert compare(recorded, ours, exact, tol), f"{what} at {where} went unnoticed"

    # a reproduction's claims: a verdict, the text, a number of a stable claim; a number of a
    # chaotic claim (the synthetic twins) only in exact mode
    repro = FIXTURE["cases"]["reproduce-precache"]
    rtol = CASES_BY_NAME["reproduce-precache"].tolerance
    claims = repro["claims.json"]
    assert "3.116" in claims[4]["ours"] and "0.531" in claims[0]["ours"]
    for where, value, caught in (
        ("claims.json/0/passed", not claims[0]["passed"], True),
        ("claims.json/0/ours", claims[0]["ours"].replace("vanilla", "myopic", 1), True),
        ("claims.json/4/ours", claims[4]["ours"].replace("3.116", "3.216"), True),
        ("claims.json/0/ours", claims[0]["ours"].replace("0.531", "0.631"), exact),
    ):
        ours = copy.deepcopy(repro)
        _set(ours, where, value)
        assert bool(compare(repro, ours, exact, rtol)) is caught, (where, value)

    # a hash: exact mode only
    hashed = copy.deepcopy(recorded)
    hashed["model.safetensors"]["sha256"] = "0" * 64
    assert bool(compare(recorded, hashed, exact, tol)) is exact


def test_loose_mode_allows_kernel_drift_and_exact_does_not() -> None:
    recorded = FIXTURE["cases"]["train-task-copy"]
    tol = CASES_BY_NAME["train-task-copy"].tolerance
    drifted = copy.deepcopy(recorded)
    loss = drifted["metrics.jsonl"][0]["loss"]
    drifted["metrics.jsonl"][0]["loss"] = loss * (1 + 1e-6)  # what another CPU's kernels do
    assert compare(recorded, drifted, exact=False, tol=tol) == []
    assert compare(recorded, drifted, exact=True, tol=tol)


def test_rules_chaotic_band_and_text() -> None:
    tol = Tolerance(1e-3, 1e-6, (
        Rule("band/*", "wide", 0.1, 0.0),
        Rule("chaos/*", "exact only"),
    ))  # fmt: skip
    rec = {"band": {"x": 1.0, "n": 100}, "chaos": {"x": 1.0, "n": 3, "s": "step 40", "ok": True},
           "text": "loss 0.531 at step 487", "n": 7}  # fmt: skip

    def diff(**changes):
        ours = copy.deepcopy(rec)
        for where, value in changes.items():
            _set(ours, where.replace("__", "/"), value)
        return compare(rec, ours, exact=False, tol=tol)

    assert diff(band__x=1.09, band__n=109) == []
    assert diff(band__x=1.2) and diff(band__n=111)
    assert diff(chaos__x=50.0, chaos__n=None, chaos__s="step 4000") == []
    assert diff(chaos__ok=False) and diff(chaos__s="epoch 40") and diff(chaos__x="1.0")
    assert diff(text="loss 0.532 at step 487") == []  # last printed digit
    assert diff(text="loss 0.535 at step 487") and diff(text="loss 0.531 at step 488")
    assert diff(n=8) and diff(n=7.0)
