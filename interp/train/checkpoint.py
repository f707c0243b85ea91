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

from pathlib import Path
from typing import Any

import torch
from torch import nn

from interp.errors import CorruptFileError
from interp.io import read_json
from interp.safefs import Tree
from interp.weights import (  # noqa: F401  (the weight I/O lives below models and train)
    MAX_CHECKPOINT_STEP,
    Checkpoint,
    latest_checkpoint,
    load_model_weights,
    load_weights,
    save_weights,
    weights_bytes,
)


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
