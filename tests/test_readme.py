"""The README's set-up commands are the ones CI runs."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ci_runs_the_readme_test_command() -> None:
    ci_lines = [
        ln
        for ln in (ROOT / ".ci" / "run").read_text().splitlines()
        if ln.startswith("python3 -m venv")
    ]
    assert len(ci_lines) == 1
    readme = (ROOT / "README.md").read_text()
    assert ci_lines[0] in readme.splitlines(), "README test command and .ci/run differ"
    assert "pytest" in ci_lines[0]


def test_readme_main_job_runs_the_demo() -> None:
    readme = (ROOT / "README.md").read_text().splitlines()
    demo = [ln for ln in readme if ln.startswith("python3 -m venv") and ln.endswith("interp demo")]
    assert len(demo) == 1 and "torch==2.13.0" in demo[0]
