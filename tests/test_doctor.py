"""``interp doctor``: real versions, offline detection, a bounded hub check, bf16 timing."""

from __future__ import annotations

import importlib.metadata
import json
import platform
import socket
import time

import torch
import transformers
from typer.testing import CliRunner

import interp
from cli.main import app
from interp import doctor
from interp.analysis.precision import default_mode

runner = CliRunner()


def _doctor_json(*extra: str) -> dict:
    result = runner.invoke(app, ["doctor", "--json", "--bench-seconds", "0.05", *extra])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_doctor_json_reports_this_machine() -> None:
    info = _doctor_json()
    v = info["versions"]
    assert v["python"] == platform.python_version()
    assert v["torch"] == torch.__version__
    assert v["transformers"] == transformers.__version__
    assert v["interp"] == interp.__version__
    assert v["transformer-lens"] == importlib.metadata.version("transformer-lens")
    # tests/conftest.py sets HF_HUB_OFFLINE=1: no connection is even attempted
    assert info["hub"] == {"offline_mode": True, "reachable": None, "note": "HF_HUB_OFFLINE is set"}
    for where in ("cwd", "cache"):
        assert info["disk"][where]["free_bytes"] > 0
    mem = info["memory"]
    assert 0 < mem["available_bytes"] <= mem["total_bytes"]
    cpu = info["devices"][0]
    assert cpu["device"] == "cpu" and cpu["threads"] == torch.get_num_threads()
    assert "float32" in cpu["dtypes"] and "bfloat16" in cpu["dtypes"]
    n_cuda = torch.cuda.device_count() if torch.cuda.is_available() else 0
    assert sum(d["device"].startswith("cuda") for d in info["devices"]) == n_cuda
    bf = info["bf16"]
    assert bf["fp32_s"] > 0 and bf["bf16_s"] > 0
    assert bf["slowdown"] > 0 and abs(bf["slowdown"] - bf["bf16_s"] / bf["fp32_s"]) < 1e-9
    assert bf["fast"] == (bf["slowdown"] <= 1.5)
    assert bf["collapse_default_mode"] == default_mode(bf["device"])


def test_doctor_table_on_stderr() -> None:
    result = runner.invoke(app, ["doctor", "--bench-seconds", "0.05"])
    assert result.exit_code == 0, result.output
    assert result.stdout == ""  # the table is on stderr; stdout stays clean for --json
    for text in ("torch", torch.__version__, "offline mode", "native bf16", "collapse --mode"):
        assert text in result.output, text


def test_doctor_bad_bench_seconds_is_one_line() -> None:
    result = runner.invoke(app, ["doctor", "--bench-seconds", "-1"])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "error: --bench-seconds must be in (0, 10], got -1.0"
    ]


def test_hub_check_never_hangs(monkeypatch) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)

    def hang(*args, **kwargs):
        time.sleep(3)  # a DNS lookup that ignores the socket timeout
        raise TimeoutError("too late")

    monkeypatch.setattr(socket, "create_connection", hang)
    start = time.perf_counter()
    status = doctor.hub_status(timeout=0.3)
    assert time.perf_counter() - start < 1.5
    assert status["offline_mode"] is False and status["reachable"] is False
    assert "no answer" in status["note"]


def test_hub_check_reports_refused_and_reachable(monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")

    def refuse(*args, **kwargs):
        raise ConnectionRefusedError(111, "Connection refused")

    monkeypatch.setattr(socket, "create_connection", refuse)
    status = doctor.hub_status()
    assert status["reachable"] is False and "ConnectionRefusedError" in status["note"]

    class Conn:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    seen = []

    def connect(addr, timeout):
        seen.append((addr, timeout))
        return Conn()

    monkeypatch.setattr(socket, "create_connection", connect)
    status = doctor.hub_status(timeout=10)
    assert status["reachable"] is True and status["offline_mode"] is False
    assert seen == [(("huggingface.co", 443), 2.0)]  # the timeout is capped at 2 s
