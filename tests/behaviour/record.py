"""Record the behaviour fixture: ``python tests/behaviour/record.py [CASE ...]``.

Runs every case of ``cases.py`` (or the ones named, keeping the others as recorded) in a
private temp dir and interp cache, and writes ``tests/behaviour/fixture.json``:
``{"machine": <signature>, "cases": {name: extract}}``. Re-record only on purpose (a behaviour
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
    prepare_process,
    run_case,
)

FIXTURE = HERE / "fixture.json"


def main(names: list[str]) -> None:
    unknown = [n for n in names if n not in CASES_BY_NAME]
    if unknown:
        raise SystemExit(f"unknown case(s) {unknown}; known: {list(CASES_BY_NAME)}")
    prepare_process()
    recorded: dict = {}
    if names and FIXTURE.is_file():
        old = json.loads(FIXTURE.read_text())
        if old["machine"] != machine_signature():
            raise SystemExit("fixture.json was recorded on another machine; record all cases")
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
    FIXTURE.write_text(json.dumps(fixture, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {FIXTURE} ({FIXTURE.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main(sys.argv[1:])
