"""A run's model on disk, read and written below every layer that uses it: weights files
(safetensors, never pickle) and the reading side of the checkpoint layout
(:mod:`interp.train.checkpoint` writes it), and the training job a run's model is built from.

``interp.models`` (loading a run) and ``interp.train`` (saving one) both sit above this module,
so the model layer never imports the training layer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from safetensors.torch import save as st_save
from torch import nn

from interp.config import TrainJob
from interp.errors import ConfigError, CorruptFileError, LoadError
from interp.io import atomic_write_bytes, read_json
from interp.runs import RunDir
from interp.safefs import is_link


def weights_bytes(
    tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None
) -> bytes:
    """``tensors`` as a safetensors file (for ``Tree.write_bytes``)."""
    data = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    return st_save(data, metadata=metadata)


def save_weights(
    path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None
) -> None:
    atomic_write_bytes(path, weights_bytes(tensors, metadata))


def load_weights(path: Path) -> dict[str, torch.Tensor]:
    path = Path(path)
    if not path.is_file():
        raise LoadError(f"weights file not found: {path}")
    if path.suffix in (".pt", ".pth", ".bin", ".pkl", ".ckpt"):
        raise LoadError(
            f"refusing to load {path}: pickle checkpoints can execute code; use safetensors"
        )
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise CorruptFileError(f"{path} is not a valid safetensors file ({e})") from e


def load_model_weights(
    model: nn.Module, path: Path, state: dict[str, torch.Tensor] | None = None
) -> None:
    """Load weights into ``model``, naming the first missing, unexpected or mis-shaped tensor
    (``state``: the file's tensors when the caller has read them already)."""
    state = load_weights(path) if state is None else state
    own = model.state_dict()
    explain = getattr(model, "explain_weights", None)
    if callable(explain) and (
        set(own) != set(state) or any(t.shape != own[n].shape for n, t in state.items())
    ):
        reason = explain(state)
        if reason:
            raise LoadError(f"{path}: {reason}")
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        what = f"missing {missing[0]}" if missing else f"unexpected {unexpected[0]}"
        raise CorruptFileError(f"{path} does not match the model config ({what})")
    for name, tensor in state.items():
        if tensor.shape != own[name].shape:
            raise CorruptFileError(
                f"{path}: {name} has shape {tuple(tensor.shape)}, the config expects {tuple(own[name].shape)}"
            )
    model.load_state_dict(state)


@dataclass(frozen=True)
class Checkpoint:
    step: int
    path: Path
    extra: dict[str, Any]


_CHECKPOINT_FILES = ("model.safetensors", "optim.safetensors", "state.json")


_STEP_DIR = re.compile(r"step_(\d{7,9})")
MAX_CHECKPOINT_STEP = 10**8  # interp.resources.MAX_STEPS


def _checkpoint_dirs(ckpt_root: Path) -> list[Path]:
    """``step_*`` folders of the run itself (plain names, no links), newest first."""
    found = [
        p
        for p in ckpt_root.glob("step_*")
        if _STEP_DIR.fullmatch(p.name) and p.is_dir() and not is_link(p)
    ]
    return sorted(found, key=lambda p: int(p.name[5:]), reverse=True)


def latest_checkpoint(run_dir: Path) -> Checkpoint | None:
    """The newest complete checkpoint of the run.  ``latest.json`` is only a hint: it must name
    a ``step_NNNNNNN`` folder of this run (never a path elsewhere), and the step a checkpoint
    records must be the one its folder is named for, within ``[0, 10**8]``."""
    ckpt_root = Path(run_dir) / "checkpoints"
    if not ckpt_root.is_dir() or is_link(ckpt_root):
        return None
    candidates = []
    pointer = ckpt_root / "latest.json"
    if pointer.is_file() and not is_link(pointer):
        try:
            name = read_json(pointer, "checkpoint pointer").get("dir")
        except (LoadError, AttributeError):
            name = None
        if isinstance(name, str) and _STEP_DIR.fullmatch(name):
            candidates.append(ckpt_root / name)
    candidates += _checkpoint_dirs(ckpt_root)
    for path in candidates:
        if is_link(path) or not all(
            (path / f).is_file() and not is_link(path / f) for f in _CHECKPOINT_FILES
        ):
            continue
        state_file = path / "state.json"
        state = read_json(state_file, "checkpoint state")
        step = state.get("step") if isinstance(state, dict) else None
        if not isinstance(step, int) or isinstance(step, bool):
            raise CorruptFileError(f"checkpoint state {state_file} has no integer 'step'")
        if not 0 <= step <= MAX_CHECKPOINT_STEP or step != int(path.name[5:]):
            raise CorruptFileError(
                f"checkpoint state {state_file} says step {step}, which is not the step of "
                f"its folder {path.name}"
            )
        extra = state.get("extra", {})
        if not isinstance(extra, dict):
            raise CorruptFileError(f"checkpoint state {state_file}: 'extra' is not an object")
        return Checkpoint(step, path, extra)
    return None


def load_job(run: RunDir) -> TrainJob:
    """The job of a training run; an invalid field is one line naming its ``config.json``."""
    try:
        job = TrainJob.from_dict(run.config())
        job.validate()
        return job
    except ConfigError as e:
        raise CorruptFileError(f"run config {run.config_path}: {e}") from e
