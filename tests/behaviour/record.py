"""Record the behaviour fixture: ``python tests/behaviour/record.py [--machine] [CASE ...]``.

Runs every case of ``cases.py`` (or the ones named, keeping the others as recorded) in a
private temp dir and interp cache, and writes ``tests/behaviour/fixture.json``:
``{"machine": <signature>, "cases": {name: extract}}``.  With ``--machine`` it writes this
machine's own recording instead, ``tests/behaviour/machines/<machine>.json`` (same form), which
the test compares exactly on a machine of that signature (fixture.json's machine is one, the
others get their own file).  Re-recording cases of fixture.json drops them from every machine
file (the change is meant; record them there again on such a machine). Re-record only on purpose (a behaviour
change you mean to keep): the point of the fixture is that the numbers do not move.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # tests/, as under pytest

from behaviour.cases import (  # noqa: E402
    CASES,
    CASES_BY_NAME,
    machine_signature,
    machine_slug,
    prepare_process,
    run_case,
)

FIXTURE = HERE / "fixture.json"
MACHINES = HERE / "machines"


def main(names: list[str]) -> None:
    own = "--machine" in names
    names = [n for n in names if n != "--machine"]
    unknown = [n for n in names if n not in CASES_BY_NAME]
    if unknown:
        raise SystemExit(f"unknown case(s) {unknown}; known: {list(CASES_BY_NAME)}")
    prepare_process()
    target = MACHINES / f"{machine_slug()}.json" if own else FIXTURE
    recorded: dict = {}
    if names and target.is_file():
        old = json.loads(target.read_text())
        if old["machine"] != machine_signature():
            raise SystemExit(f"{target.name} was recorded on another machine; record all cases "
                             "(or --machine for this machine's own recording)")  # fmt: skip
        recorded = old["cases"]
    with tempfile.TemporaryDirectory(prefix="interp-behaviour-") as tmp:
        os.environ["INTERP_CACHE"] = str(Path(tmp) / "cache")
        for case in CASES:
            if names and case.name not in names:
                continue
            t0 = time.perf_counter()
            recorded[case.name] = run_case(case, Path(tmp) / "runs", Path(tmp) / "model")
            print(f"{case.name:24s} {time.perf_counter() - t0:6.1f} s", flush=True)
    ordered = {c.name: recorded[c.name] for c in CASES if c.name in recorded}
    fixture = {"machine": machine_signature(), "cases": ordered}
    target.parent.mkdir(exist_ok=True)
    target.write_text(json.dumps(fixture, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {target} ({target.stat().st_size / 1e6:.2f} MB)")
    if not own:  # a meant change: the other machines' recordings of these cases are stale
        for other in sorted(MACHINES.glob("*.json")):
            machine = json.loads(other.read_text())
            stale = [n for n in (names or list(CASES_BY_NAME)) if n in machine["cases"]]
            for n in stale:
                del machine["cases"][n]
            if stale:
                other.write_text(json.dumps(machine, indent=1, ensure_ascii=False) + "\n")
                print(f"dropped {', '.join(stale)} from {other.name}: record them there again")


if __name__ == "__main__":
    main(sys.argv[1:])
