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

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from safetensors.torch import save as st_save
from torch import nn

from interp.errors import CorruptFileError, LoadError
from interp.io import atomic_write_bytes, read_json
from interp.safefs import Tree, is_link


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
    """Write ``checkpoints/step_XXXXXXX`` of the run; every path is checked by the run's
    :class:`~interp.safefs.Tree` (a planted ``checkpoints`` link is refused, never written)."""
    Tree(run_dir).mkdir("checkpoints")
    tree = Tree(run_dir).sub("checkpoints")
    name = f"step_{step:07d}"
    _sweep_debris(tree)  # leftovers of a run killed mid-save
    tmp = f".tmp-{name}"
    tree.mkdir(tmp)
    save_weights(tree.path(f"{tmp}/model.safetensors"), model.state_dict())
    optim_tensors, groups = _optim_tensors(optimizer)
    optim_tensors["rng.torch"] = torch.get_rng_state()
    save_weights(tree.path(f"{tmp}/optim.safetensors"), optim_tensors)
    tree.write_json(
        f"{tmp}/state.json", {"step": step, "param_groups": groups, "extra": extra or {}}
    )
    if tree.path(name).exists():
        _discard(tree, name)
    final = tree.rename(tmp, name)
    tree.write_json("latest.json", {"step": step, "dir": name})
    old = sorted(p.name for p in tree.root.glob("step_*") if p.is_dir() and p.name != name)
    for old_name in old[: max(0, len(old) - (keep - 1))]:
        _discard(tree, old_name)
    return final


def _discard(tree: Tree, name: str) -> None:
    """Remove a checkpoint folder: renamed out of ``step_*`` first, so a kill mid-delete never
    leaves a half-deleted folder that looks like a checkpoint."""
    trash = f".old-{name}"
    tree.remove(trash)
    tree.rename(name, trash)
    tree.remove(trash)


def _sweep_debris(tree: Tree) -> None:
    for p in list(tree.root.glob(".tmp-step_*")) + list(tree.root.glob(".old-step_*")):
        tree.remove(p.name)


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


def restore_checkpoint(
    ckpt: Checkpoint, model: nn.Module, optimizer: torch.optim.Optimizer
) -> None:
    """Load weights, AdamW state and the torch RNG; any malformed content is one
    :class:`CorruptFileError` naming the file."""
    load_model_weights(model, ckpt.path / "model.safetensors")
    state_file, optim_file = ckpt.path / "state.json", ckpt.path / "optim.safetensors"
    state = read_json(state_file, "checkpoint state")
    groups = state.get("param_groups") if isinstance(state, dict) else None
    if not isinstance(groups, list) or not all(isinstance(g, dict) for g in groups):
        raise CorruptFileError(f"checkpoint state {state_file} has no list of 'param_groups'")
    tensors = load_weights(optim_file)
    rng = tensors.pop("rng.torch", None)
    if rng is None or rng.dtype != torch.uint8 or rng.dim() != 1:
        raise CorruptFileError(f"{optim_file} has no valid 'rng.torch' state")
    opt_state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        parts = key.split(".", 2)
        if len(parts) != 3 or parts[0] != "state" or not parts[1].isdigit():
            raise CorruptFileError(f"{optim_file} has an unexpected tensor {key!r}")
        opt_state.setdefault(int(parts[1]), {})[parts[2]] = value
    params = [p for g in optimizer.param_groups for p in g["params"]]
    for idx, entry in opt_state.items():
        if idx >= len(params):
            raise CorruptFileError(
                f"{optim_file} has state for parameter {idx}, the model has {len(params)}"
            )
        for name in ("exp_avg", "exp_avg_sq"):
            if name in entry and entry[name].shape != params[idx].shape:
                raise CorruptFileError(
                    f"{optim_file}: state.{idx}.{name} has shape {tuple(entry[name].shape)}, "
                    f"the parameter has {tuple(params[idx].shape)}"
                )
    try:
        optimizer.load_state_dict({"state": opt_state, "param_groups": groups})
    except (KeyError, ValueError, TypeError, RuntimeError) as e:
        raise CorruptFileError(
            f"optimizer state in {ckpt.path} does not match the model ({e})"
        ) from e
    try:
        torch.set_rng_state(rng)
    except (RuntimeError, ValueError) as e:
        raise CorruptFileError(f"{optim_file} has an invalid 'rng.torch' state ({e})") from e
