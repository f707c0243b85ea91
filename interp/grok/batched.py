"""Many small grokking MLPs trained at once: stacked parameters ``[model ...]`` and batched matmuls.

Each model is first built as its single-run module (same seed, so the same initial weights),
then the parameters are stacked along a leading ``model`` axis.  Every step runs all models on
every example (``[model example class]`` logits); each model's loss is the mean over *its* train
mask, so the models stay independent: the sum of their losses has block-separate gradients.
AdamW is elementwise, so one optimizer over the stacked tensors equals one per model; the
per-model weight decay is applied as AdamW does (``w <- w (1 - lr wd)`` before the Adam step).

``tests/test_grok.py`` checks this against one-at-a-time :func:`interp.grok.loop.train_full_batch`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor, nn

from interp.grok.loop import Optim, log_steps, torch_threads

Family = str  # "pair-mlp" | "parity-mlp"


def prepare_inputs(
    family: Family, x: Tensor, idx: Tensor, n_residues: int = 0, dtype: torch.dtype = torch.float32
) -> Tensor:
    """Each model's examples ``x[idx[m]]`` as the tensor :func:`forward_batched` multiplies.

    pair-mlp: ``onehot(a) + onehot(b)`` as [model p example] (so ``E_a + E_b = E^T @ it``);
    parity-mlp: the bits as [model n_bits example].
    """
    if family == "pair-mlp":
        out = torch.zeros(idx.shape[0], n_residues, idx.shape[1], device=x.device, dtype=dtype)
        for col in (0, 1):
            out.scatter_add_(1, x[idx, col].unsqueeze(1), torch.ones_like(out[:, :1]))
        return out
    if family == "parity-mlp":
        return x[idx].transpose(1, 2).to(dtype).contiguous()
    raise ValueError(f"unknown batched family {family!r}")


def forward_batched(
    family: Family, params: dict[str, Tensor], inputs: Tensor
) -> Float[Tensor, "model example class"]:
    """Logits of every stacked model on its own examples (``inputs`` from :func:`prepare_inputs`).

    Computed feature-major ([model feature example]) so every product is one ``bmm``; the PAIR
    MLP is re-associated (same function): ``(E_a + E_b) W_in`` is ``(W_in^T E^T) @ inputs`` and
    ``h W_out E^T`` is ``h (W_out E^T)``.
    """
    if family == "pair-mlp":
        E, W_in, W_out = params["E"], params["W_in"], params["W_out"]  # [model p d_embed] ...
        EW_t = torch.bmm(W_in.transpose(1, 2), E.transpose(1, 2))  # [model width p]
        hidden_t = torch.relu(torch.bmm(EW_t, inputs))  # [model width example]
        readout = torch.bmm(W_out, E.transpose(1, 2))  # [model width p]
        return torch.bmm(hidden_t.transpose(1, 2), readout)  # [model example p]
    if family == "parity-mlp":
        pre_t = torch.bmm(params["W_in"].transpose(1, 2), inputs) + params["b_in"][:, :, None]
        return (
            torch.bmm(torch.relu(pre_t).transpose(1, 2), params["W_out"]) + params["b_out"][:, None]
        )
    raise ValueError(f"unknown batched family {family!r}")


def _per_model_ce(logits: Tensor, targets: Tensor) -> Tensor:
    """Cross-entropy [model example] of logits [model example class] against targets."""
    n_models, n, c = logits.shape
    return F.cross_entropy(logits.reshape(-1, c), targets.reshape(-1), reduction="none").view(
        n_models, n
    )


@dataclass
class BatchedHistory:
    """Per-model curves at the logged steps: every array is ``[model n_logged]``."""

    steps: list[int]
    train_loss: list[list[float]] = field(default_factory=list)
    test_loss: list[list[float]] = field(default_factory=list)
    train_acc: list[list[float]] = field(default_factory=list)
    test_acc: list[list[float]] = field(default_factory=list)
    weight_norm: list[list[float]] = field(default_factory=list)


def train_batched(
    family: Family,
    models: Sequence[nn.Module],
    x: Tensor,
    y: Tensor,
    train_masks: Tensor,
    weight_decays: Sequence[float],
    steps: int,
    optim: Optim = Optim(),
    log_every: int = 100,
    on_step: Callable[[int], None] | None = None,
    device: str = "cpu",
    threads: int | None = 1,
) -> tuple[BatchedHistory, dict[str, Tensor]]:
    """Train ``models`` (same family and shapes) together; returns curves and final parameters.

    ``train_masks``: [model example] bool, each model's training examples (the rest is its test
    set).  ``optim.weight_decay`` is ignored in favour of ``weight_decays`` (one per model).
    """
    with torch_threads(threads):
        return _train_batched(
            family,
            models,
            x,
            y,
            train_masks,
            weight_decays,
            steps,
            optim,
            log_every,
            on_step,
            device,
        )


def _train_batched(
    family: Family,
    models: Sequence[nn.Module],
    x: Tensor,
    y: Tensor,
    train_masks: Tensor,
    weight_decays: Sequence[float],
    steps: int,
    optim: Optim,
    log_every: int,
    on_step: Callable[[int], None] | None,
    device: str,
) -> tuple[BatchedHistory, dict[str, Tensor]]:
    n_models = len(models)
    if train_masks.shape != (n_models, len(y)) or len(weight_decays) != n_models:
        raise ValueError("need one train mask row and one weight decay per model")
    names = [name for name, _ in models[0].named_parameters()]
    params = {
        name: nn.Parameter(
            torch.stack([dict(m.named_parameters())[name].detach() for m in models]).to(device)
        )
        for name in names
    }
    x, y, masks = x.to(device), y.to(device), train_masks.to(device)
    # each model's own training examples, padded to the longest; padding has weight 0
    n_train = masks.sum(1)
    n_max = int(n_train.max())
    order = torch.argsort((~masks).to(torch.int8), dim=1, stable=True)  # train examples first
    train_idx = order[:, :n_max]  # [model n_max]
    valid = torch.arange(n_max, device=device)[None] < n_train[:, None]
    train_w = valid.float() / n_train[:, None].clamp(min=1)  # mean over own train set
    train_y = y[train_idx]
    all_idx = torch.arange(len(y), device=device).expand(n_models, -1)
    n_residues = params["E"].shape[1] if family == "pair-mlp" else 0
    dtype = next(iter(params.values())).dtype
    train_in = prepare_inputs(family, x, train_idx, n_residues, dtype)
    all_in = prepare_inputs(family, x, all_idx[:1], n_residues, dtype).expand(n_models, -1, -1)
    y_all = y.expand(n_models, -1)
    test_mask = (~masks).float()
    n_test = test_mask.sum(1).clamp(min=1)
    own_w = masks.float() / n_train[:, None].clamp(min=1)
    wd = torch.tensor(list(weight_decays), dtype=torch.float64, device=device)
    decay = {
        k: (1 - optim.lr * wd).to(p.dtype).view(-1, *([1] * (p.ndim - 1)))
        for k, p in params.items()
    }
    optimizer = torch.optim.AdamW(
        params.values(), lr=optim.lr, betas=(optim.beta1, optim.beta2), weight_decay=0.0
    )
    logged = set(log_steps(steps, log_every))
    hist = BatchedHistory(steps=sorted(logged))
    rows: dict[str, list[Tensor]] = {k: [] for k in ("trl", "tel", "tra", "tea", "wn")}
    for step in range(steps + 1):
        if step in logged:
            with torch.no_grad():
                logits = forward_batched(family, params, all_in)  # [model example class]
                ce = _per_model_ce(logits, y_all)
                correct = (logits.argmax(-1) == y_all).float()
                rows["trl"].append((ce * own_w).sum(1))
                rows["tel"].append((ce * test_mask).sum(1) / n_test)
                rows["tra"].append((correct * own_w).sum(1))
                rows["tea"].append((correct * test_mask).sum(1) / n_test)
                sq = sum(p.detach().double().pow(2).flatten(1).sum(1) for p in params.values())
                rows["wn"].append(sq.sqrt())
        if step == steps:
            break
        logits = forward_batched(family, params, train_in)
        loss = (_per_model_ce(logits, train_y) * train_w).sum()  # sum of own means
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        with torch.no_grad():
            for k, p in params.items():
                p.mul_(decay[k])
        optimizer.step()
        if on_step is not None:
            on_step(step + 1)
    for key, attr in (
        ("trl", "train_loss"),
        ("tel", "test_loss"),
        ("tra", "train_acc"),
        ("tea", "test_acc"),
        ("wn", "weight_norm"),
    ):
        setattr(hist, attr, torch.stack(rows[key], 1).tolist())
    return hist, {k: v.detach().cpu() for k, v in params.items()}
