"""Checkpoints as safetensors + JSON (never pickle), written atomically.

Layout inside a run directory::

    checkpoints/step_000200/model.safetensors   model weights
    checkpoints/step_000200/optim.safetensors   AdamW moments and step counters, torch RNG state
    checkpoints/step_000200/state.json          step, optimizer param groups, extra (written last)
    checkpoints/latest.json                     {"step": 200, "dir": "step_000200"}

A checkpoint folder is assembled under a temporary name and renamed into place, so a kill at any
moment leaves either the previous complete checkpoint or the new one.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from safetensors.torch import save as st_save
from torch import nn

from interp.errors import CorruptFileError, LoadError
from interp.io import atomic_write_bytes, atomic_write_json, fsync_dir, read_json


def save_weights(
    path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None
) -> None:
    data = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    atomic_write_bytes(path, st_save(data, metadata=metadata))


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


def load_model_weights(model: nn.Module, path: Path) -> None:
    """Load weights into ``model``, naming the first missing, unexpected or mis-shaped tensor."""
    state = load_weights(path)
    own = model.state_dict()
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


def _optim_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], list[dict]]:
    sd = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    for idx, state in sd["state"].items():
        for key, value in state.items():
            t = value if isinstance(value, torch.Tensor) else torch.tensor(value)
            tensors[f"state.{idx}.{key}"] = t
    return tensors, sd["param_groups"]


def save_checkpoint(
    run_dir: Path,
    step: int,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    extra: dict[str, Any] | None = None,
    keep: int = 2,
) -> Path:
    ckpt_root = Path(run_dir) / "checkpoints"
    name = f"step_{step:07d}"
    _sweep_debris(ckpt_root)  # leftovers of a run killed mid-save
    tmp = ckpt_root / f".tmp-{name}"
    tmp.mkdir(parents=True)
    save_weights(tmp / "model.safetensors", model.state_dict())
    optim_tensors, groups = _optim_tensors(optimizer)
    optim_tensors["rng.torch"] = torch.get_rng_state()
    save_weights(tmp / "optim.safetensors", optim_tensors)
    atomic_write_json(
        tmp / "state.json", {"step": step, "param_groups": groups, "extra": extra or {}}
    )
    final = ckpt_root / name
    if final.exists():
        _discard(final)
    tmp.rename(final)
    fsync_dir(ckpt_root)
    atomic_write_json(ckpt_root / "latest.json", {"step": step, "dir": name})
    old = sorted(p for p in ckpt_root.glob("step_*") if p.is_dir() and p.name != name)
    for p in old[: max(0, len(old) - (keep - 1))]:
        _discard(p)
    return final


def _discard(path: Path) -> None:
    """Remove a checkpoint folder: renamed out of ``step_*`` first, so a kill mid-delete never
    leaves a half-deleted folder that looks like a checkpoint."""
    trash = path.with_name(f".old-{path.name}")
    if trash.exists():
        shutil.rmtree(trash, ignore_errors=True)
    path.rename(trash)
    shutil.rmtree(trash, ignore_errors=True)


def _sweep_debris(ckpt_root: Path) -> None:
    if not ckpt_root.is_dir():
        return
    for p in list(ckpt_root.glob(".tmp-step_*")) + list(ckpt_root.glob(".old-step_*")):
        shutil.rmtree(p, ignore_errors=True)


_CHECKPOINT_FILES = ("model.safetensors", "optim.safetensors", "state.json")


def latest_checkpoint(run_dir: Path) -> Checkpoint | None:
    ckpt_root = Path(run_dir) / "checkpoints"
    candidates = []
    pointer = ckpt_root / "latest.json"
    if pointer.is_file():
        try:
            candidates.append(ckpt_root / read_json(pointer)["dir"])
        except (LoadError, KeyError, TypeError):
            pass
    candidates += sorted((p for p in ckpt_root.glob("step_*") if p.is_dir()), reverse=True)
    for path in candidates:
        if all((path / f).is_file() for f in _CHECKPOINT_FILES):
            state = read_json(path / "state.json", "checkpoint state")
            return Checkpoint(int(state["step"]), path, state.get("extra", {}))
    return None


def restore_checkpoint(
    ckpt: Checkpoint, model: nn.Module, optimizer: torch.optim.Optimizer
) -> None:
    load_model_weights(model, ckpt.path / "model.safetensors")
    state = read_json(ckpt.path / "state.json", "checkpoint state")
    tensors = load_weights(ckpt.path / "optim.safetensors")
    torch.set_rng_state(tensors.pop("rng.torch"))
    opt_state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        _, idx, name = key.split(".", 2)
        opt_state.setdefault(int(idx), {})[name] = value
    try:
        optimizer.load_state_dict({"state": opt_state, "param_groups": state["param_groups"]})
    except (KeyError, ValueError) as e:
        raise CorruptFileError(
            f"optimizer state in {ckpt.path} does not match the model ({e})"
        ) from e
