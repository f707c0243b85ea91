"""``interp doctor``: what this machine offers (versions, hub access, disk, memory, devices, dtypes).

Every probe is bounded in time (the hub check is one socket connect with a 2 s timeout) and never
raises: a probe that fails reports ``None`` or an ``error`` field instead.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import socket
import threading
import time
from pathlib import Path
from typing import Any

import torch

from interp.resources import free_disk, memory_info

__all__ = ["bf16_speed", "diagnose", "hub_status", "versions"]

HUB_HOST = "huggingface.co"
HUB_PORT = 443
_PACKAGES = ("torch", "transformer-lens", "transformers", "interp")
_PROBE_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def versions() -> dict[str, str | None]:
    """Installed versions of python and the packages interp relies on (None when missing)."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def _connect(timeout: float) -> dict[str, Any]:
    start = time.perf_counter()
    try:
        with socket.create_connection((HUB_HOST, HUB_PORT), timeout=timeout):
            pass
    except Exception as e:  # noqa: BLE001 - OSError, or anything odd: not reachable
        return {"offline_mode": False, "reachable": False, "note": f"{type(e).__name__}: {e}"}
    ms = (time.perf_counter() - start) * 1000
    return {"offline_mode": False, "reachable": True, "note": f"connected in {ms:.0f} ms"}


def hub_status(timeout: float = 2.0) -> dict[str, Any]:
    """Offline mode if ``HF_HUB_OFFLINE`` is on; else whether huggingface.co:443 accepts a connect.

    The connect (DNS lookup included, which ignores socket timeouts) runs in a daemon thread
    that is abandoned after ``timeout`` seconds (at most 2), so this never hangs.
    """
    if _truthy(os.environ.get("HF_HUB_OFFLINE")):
        return {"offline_mode": True, "reachable": None, "note": "HF_HUB_OFFLINE is set"}
    timeout = min(max(timeout, 0.1), 2.0)
    box: list[dict[str, Any]] = []
    thread = threading.Thread(target=lambda: box.append(_connect(timeout)), daemon=True)
    thread.start()
    thread.join(timeout + 0.1)
    if box:
        return box[0]
    return {"offline_mode": False, "reachable": False, "note": f"no answer in {timeout:g} s"}


def _dtype_works(dtype: torch.dtype, device: str) -> bool:
    try:
        a = torch.ones(4, 4, dtype=dtype, device=device)
        return bool(torch.isfinite((a @ a).float()).all())
    except Exception:  # noqa: BLE001 - any failure means "not usable here"
        return False


def devices() -> list[dict[str, Any]]:
    """CPU (threads), each CUDA device (name) and MPS, with the float dtypes a matmul runs in."""
    found: list[dict[str, Any]] = [
        {
            "device": "cpu",
            "name": platform.processor() or platform.machine(),
            "threads": torch.get_num_threads(),
            "cores": os.cpu_count(),
        }
    ]
    try:
        n_cuda = torch.cuda.device_count() if torch.cuda.is_available() else 0
    except Exception:  # noqa: BLE001
        n_cuda = 0
    for i in range(n_cuda):
        found.append({"device": f"cuda:{i}", "name": torch.cuda.get_device_name(i)})
    try:
        if torch.backends.mps.is_available():
            found.append({"device": "mps", "name": "Apple Metal"})
    except Exception:  # noqa: BLE001
        pass
    for d in found:
        d["dtypes"] = [
            str(t).removeprefix("torch.") for t in _PROBE_DTYPES if _dtype_works(t, d["device"])
        ]
    return found


def _time_matmul(dtype: torch.dtype, device: str, size: int, seconds: float) -> float:
    """Seconds per ``size x size`` matmul in ``dtype``: the best of several short rounds
    within about ``seconds`` (the minimum is robust to other processes sharing the CPU)."""
    g = torch.Generator().manual_seed(0)
    a = torch.randn(size, size, generator=g).to(device=device, dtype=dtype)
    b = torch.randn(size, size, generator=g).to(device=device, dtype=dtype)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    a @ b  # warm-up
    sync()
    best, deadline = float("inf"), time.perf_counter() + seconds
    while True:
        start = time.perf_counter()
        for _ in range(2):
            a @ b
        sync()
        now = time.perf_counter()
        best = min(best, (now - start) / 2)
        if now >= deadline:
            return best


def bf16_speed(device: str = "cpu", size: int = 256, seconds: float = 0.2) -> dict[str, Any]:
    """Time fp32 vs native bf16 matmuls; ``slowdown`` = bf16 time / fp32 time (>1: bf16 slower)."""
    from interp.analysis.precision import default_mode

    out: dict[str, Any] = {
        "device": device,
        "size": size,
        "collapse_default_mode": default_mode(device),
    }
    try:
        fp32 = _time_matmul(torch.float32, device, size, seconds)
        bf16 = _time_matmul(torch.bfloat16, device, size, seconds)
    except Exception as e:  # noqa: BLE001
        out.update(
            fp32_s=None, bf16_s=None, slowdown=None, fast=None, error=f"{type(e).__name__}: {e}"
        )
        return out
    slowdown = bf16 / fp32
    out.update(fp32_s=fp32, bf16_s=bf16, slowdown=slowdown, fast=slowdown <= 1.5)
    return out


def diagnose(hub_timeout: float = 2.0, bench_seconds: float = 0.2) -> dict[str, Any]:
    """Everything ``interp doctor`` reports, as one JSON-ready dict."""
    from interp.demo import cache_root

    cache = cache_root()
    devs = devices()
    bench_device = next((d["device"] for d in devs if d["device"].startswith("cuda")), "cpu")
    return {
        "versions": versions(),
        "hub": hub_status(hub_timeout),
        "disk": {
            "cwd": {"path": str(Path.cwd()), "free_bytes": free_disk(Path.cwd())},
            "cache": {"path": str(cache), "free_bytes": free_disk(cache)},
        },
        "memory": memory_info(),
        "devices": devs,
        "bf16": bf16_speed(bench_device, seconds=bench_seconds),
    }
