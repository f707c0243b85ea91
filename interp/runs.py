"""Run directories: one per experiment, everything needed to redo any step without retraining.

RUN/config.json     what was asked (model, train, data configs, seed, kind)
RUN/env.json        versions, device, seed, host
RUN/metrics.jsonl   one JSON row per log/eval event
RUN/checkpoints/    safetensors + JSON checkpoints (see interp.train.checkpoint)
RUN/model.safetensors  final weights
RUN/tokenizer/      the tokenizer, when the run trained on text
RUN/report.html     the interactive report, rebuilt from the files above alone
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import shutil
import socket
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from interp.errors import InterpError
from interp.io import append_jsonl, atomic_write_json, read_json, read_jsonl, truncate_jsonl


def _versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0], "platform": platform.platform()}
    for name in ("torch", "transformer_lens", "transformers", "numpy", "plotly"):
        try:
            module = __import__(name)
            out[name] = getattr(module, "__version__", "?")
        except Exception:  # noqa: BLE001 - an optional package missing is fine here
            out[name] = "not installed"
    from interp import __version__

    out["interp"] = __version__
    return out


class RunDir:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    # ------------------------------------------------------------ creation
    @staticmethod
    def check_creatable(path: Path, overwrite: bool = False) -> None:
        """Raise the error ``create`` would raise, before any expensive work starts."""
        path = Path(path)
        if path.exists() and not path.is_dir():
            raise InterpError(f"output path {path} exists and is not a directory")
        if path.is_dir() and any(path.iterdir()):
            if not overwrite:
                raise InterpError(
                    f"run directory {path} already exists; pass --resume to continue it or --overwrite to replace it"
                )
            if not (path / "config.json").is_file():
                raise InterpError(
                    f"refusing to overwrite {path}: it is not a run directory (no config.json)"
                )

    @classmethod
    def create(cls, path: Path, config: Mapping[str, Any], overwrite: bool = False) -> RunDir:
        """Create a new run directory; refuse to reuse an existing non-empty one unless asked."""
        path = Path(path)
        cls.check_creatable(path, overwrite)
        if path.is_dir() and any(path.iterdir()):
            shutil.rmtree(path)
        path.mkdir(parents=True, exist_ok=True)
        run = cls(path)
        config = dict(config)
        config.setdefault("created", _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"))
        atomic_write_json(run.config_path, config)
        return run

    @classmethod
    def open(cls, path: Path) -> RunDir:
        path = Path(path)
        if not (path / "config.json").is_file():
            raise InterpError(f"not a run directory (no config.json): {path}")
        return cls(path)

    def write_env(self, seed: int, device: str) -> None:
        env = {
            "versions": _versions(),
            "seed": seed,
            "device": device,
            "host": socket.gethostname(),
            "threads": int(os.environ.get("OMP_NUM_THREADS", 0)) or None,
        }
        atomic_write_json(self.path / "env.json", env)

    # ------------------------------------------------------------ files
    @property
    def config_path(self) -> Path:
        return self.path / "config.json"

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def weights_path(self) -> Path:
        return self.path / "model.safetensors"

    @property
    def report_path(self) -> Path:
        return self.path / "report.html"

    def config(self) -> dict[str, Any]:
        return read_json(self.config_path, "run config")

    def append_metrics(self, row: Mapping[str, Any]) -> None:
        append_jsonl(self.metrics_path, [row])

    def metrics(self) -> list[dict[str, Any]]:
        return read_jsonl(self.metrics_path)

    def truncate_metrics_after(self, step: int) -> None:
        """Drop rows logged after ``step`` (they are redone when a run resumes from ``step``)."""
        truncate_jsonl(self.metrics_path, lambda row: int(row.get("step", 0)) <= step)
