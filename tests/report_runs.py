"""One cheap run of every report kind, built once per test session (the browser test opens
them in Chromium; the report-text test reads them)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app


def _cli(*args) -> None:
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, f"interp {' '.join(map(str, args))}: {result.output}"


@pytest.fixture(scope="session")
def reports(tmp_path_factory) -> dict[str, Path]:
    """One cheap run of every report kind (about 20 s on 2 cores)."""
    root = tmp_path_factory.mktemp("reports")
    model = root / "model"
    _cli(
        "train",
        "--corpus",
        "builtin:prose",
        "--max-chars",
        "20000",
        "--tokenizer",
        "byte",
        "--ctx",
        "64",
        "--layers",
        "2",
        "--d-model",
        "16",
        "--heads",
        "2",
        "--d-mlp",
        "32",
        "--steps",
        "6",
        "--eval-every",
        "3",
        "--checkpoint-every",
        "6",
        "--out",
        model,
    )
    _cli(
        "probe",
        "--model",
        model,
        "--horizon",
        "2",
        "--tokens",
        "1500",
        "--seq-len",
        "24",
        "--probe",
        "both",
        "--top-k",
        "8",
        "--out",
        root / "probe",
    )
    _cli(
        "collapse",
        "--model",
        model,
        "--dtypes",
        "fp32,bf16",
        "--lengths",
        "2:8",
        "--family",
        "pattern",
        "--tokens",
        "50,51",
        "--out",
        root / "collapse",
    )
    _cli("squash", "--model", model, "--length", "6", "--out", root / "squash")
    _cli(
        "count",
        "construct",
        "--d",
        "6",
        "--m",
        "3,6",
        "--n",
        "12",
        "--samples",
        "50",
        "--out",
        root / "count",
    )
    _cli(
        "grok",
        "--p",
        "7",
        "--steps",
        "20",
        "--log-every",
        "10",
        "--checkpoint-every",
        "20",
        "--out",
        root / "grok",
    )
    _cli(
        "pe-bench",
        "--task",
        "flipflop",
        "-o",
        "length=4",
        "--pe",
        "absolute,rope",
        "--seeds",
        "0",
        "--steps",
        "2",
        "--batch-size",
        "4",
        "--layers",
        "1",
        "--d-model",
        "16",
        "--heads",
        "2",
        "--d-mlp",
        "16",
        "--eval-sequences",
        "4",
        "--out",
        root / "pe-bench",
    )
    _cli("precache", "-o", "length=8", "-o", "window=3", "--steps", "4", "--eval-every", "2",
         "--layers", "1", "--d-model", "16", "--heads", "2", "--d-mlp", "32", "--warmup", "1",
         "--seeds", "0,", "--out", root / "precache")  # fmt: skip
    kinds = ["probe", "collapse", "squash", "count", "grok", "pe-bench", "precache"]
    out = {"train (with analyses)": model / "report.html"}
    out.update({k: root / k / "report.html" for k in kinds})
    return {k.split()[0]: v for k, v in out.items()}
