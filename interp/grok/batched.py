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
Rows = dict[str, list[list[float]]]
BatchedCheckpoint = Callable[[int, nn.Module, torch.optim.Optimizer, Rows], None]
BatchedRestore = Callable[[nn.Module, torch.optim.Optimizer], "tuple[int, Rows] | None"]


def prepare_inputs(
    family: Family, x: Tensor, idx: Tensor, n_residues: int = 0, dtype: torch.dtype = torch.float32
) -> Tensor:
    """Each model's examples ``x[idx[m]]`` as the tensor :func:`forward_batched` reads.

    pair-mlp: flat row indices ``[2 model*example]`` into the stacked ``E W_in`` table
    (``[model*p width]``: row ``m p + a``), so ``(E_a + E_b) W_in`` is two row gathers;
    parity-mlp: the bits as [model example n_bits].
    """
    if family == "pair-mlp":
        offset = (torch.arange(idx.shape[0], device=x.device) * n_residues)[:, None]
        return torch.stack([(x[idx, col] + offset).reshape(-1) for col in (0, 1)])
    if family == "parity-mlp":
        return x[idx].to(dtype).contiguous()
    raise ValueError(f"unknown batched family {family!r}")


def forward_batched(
    family: Family, params: dict[str, Tensor], inputs: Tensor
) -> Float[Tensor, "model example class"]:
    """Logits of every stacked model on its own examples (``inputs`` from :func:`prepare_inputs`).

    The PAIR MLP is re-associated (same function): ``(E_a + E_b) W_in`` is ``(E W_in)_a +
    (E W_in)_b`` (row gathers, no one-hot matmul) and ``h W_out E^T`` is ``h (W_out E^T)``.
    """
    if family == "pair-mlp":
        E, W_in, W_out = params["E"], params["W_in"], params["W_out"]  # [model p d_embed] ...
        n_models, p, _ = E.shape
        table = torch.bmm(E, W_in).reshape(n_models * p, -1)  # [model*p width]
        pre = table.index_select(0, inputs[0]) + table.index_select(0, inputs[1])
        hidden = torch.relu(pre).view(n_models, -1, table.shape[1])  # [model example width]
        return torch.bmm(hidden, torch.bmm(W_out, E.transpose(1, 2)))  # [model example p]
    if family == "parity-mlp":
        pre = torch.baddbmm(params["b_in"][:, None], inputs, params["W_in"])
        return torch.baddbmm(params["b_out"][:, None], torch.relu(pre), params["W_out"])
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
    checkpoint_every: int | None = None,
    on_checkpoint: BatchedCheckpoint | None = None,
    restore: BatchedRestore | None = None,
) -> tuple[BatchedHistory, dict[str, Tensor]]:
    """Train ``models`` (same family and shapes) together; returns curves and final parameters.

    ``train_masks``: [model example] bool, each model's training examples (the rest is its test
    set).  ``optim.weight_decay`` is ignored in favour of ``weight_decays`` (one per model).

    Crash safety: every ``checkpoint_every`` steps (before that step is logged)
    ``on_checkpoint(step, stack, optimizer, rows)`` gets the stacked parameters (one module),
    their AdamW and the logged rows so far (``{key: [[model values] per logged step]}``);
    ``restore(stack, optimizer)`` loads such a state and returns ``(step, rows)`` (or ``None``
    to start afresh), and training continues from there with identical results.
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
            checkpoint_every,
            on_checkpoint,
            restore,
        )


class _Stack(nn.Module):
    """All groups' stacked parameters in one module (``groups.G.NAME``), for checkpoints."""

    def __init__(self, params: Sequence[dict[str, nn.Parameter]]) -> None:
        super().__init__()
        self.groups = nn.ModuleList(nn.ParameterDict(p) for p in params)


@dataclass
class _Group:
    """Models with the same number of training examples: trained together without padding."""

    members: Tensor  # [group] indices into the models
    params: dict[str, nn.Parameter]
    decay: dict[str, Tensor]
    train_in: Tensor
    train_y: Tensor  # [group*n_train]
    n_train: int
    test_in: Tensor
    test_y: Tensor  # [group n_test]


def _make_groups(
    family: Family,
    models: Sequence[nn.Module],
    x: Tensor,
    y: Tensor,
    masks: Tensor,
    weight_decays: Sequence[float],
    optim: Optim,
    device: str,
) -> list[_Group]:
    names = [name for name, _ in models[0].named_parameters()]
    n_train = masks.sum(1)
    groups = []
    for n in sorted(set(n_train.tolist())):
        members = torch.nonzero(n_train == n).flatten()
        params = {
            name: nn.Parameter(
                torch.stack(
                    [dict(models[int(i)].named_parameters())[name].detach() for i in members]
                ).to(device)
            )
            for name in names
        }
        wd = torch.tensor([weight_decays[int(i)] for i in members], dtype=torch.float64)
        decay = {
            k: (1 - optim.lr * wd).to(device, p.dtype).view(-1, *([1] * (p.ndim - 1)))
            for k, p in params.items()
        }
        # each member's own training examples, in example order
        order = torch.argsort((~masks[members]).to(torch.int8), dim=1, stable=True)
        train_idx, test_idx = order[:, :n], order[:, n:]
        n_residues = params["E"].shape[1] if family == "pair-mlp" else 0
        dtype = params[names[0]].dtype
        groups.append(
            _Group(
                members=members.to(device),
                params=params,
                decay=decay,
                train_in=prepare_inputs(family, x, train_idx, n_residues, dtype),
                train_y=y[train_idx].reshape(-1),
                n_train=int(n),
                test_in=prepare_inputs(family, x, test_idx, n_residues, dtype),
                test_y=y[test_idx],
            )
        )
    return groups


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
    checkpoint_every: int | None,
    on_checkpoint: BatchedCheckpoint | None,
    restore: BatchedRestore | None,
) -> tuple[BatchedHistory, dict[str, Tensor]]:
    n_models = len(models)
    if train_masks.shape != (n_models, len(y)) or len(weight_decays) != n_models:
        raise ValueError("need one train mask row and one weight decay per model")
    x, y, masks = x.to(device), y.to(device), train_masks.to(device)
    groups = _make_groups(family, models, x, y, masks, weight_decays, optim, device)
    # AdamW is elementwise: one optimizer over every group = one per model (decay applied below)
    stack = _Stack([g.params for g in groups])
    optimizer = torch.optim.AdamW(
        stack.parameters(), lr=optim.lr, betas=(optim.beta1, optim.beta2), weight_decay=0.0
    )
    logged = set(log_steps(steps, log_every))
    hist = BatchedHistory(steps=sorted(logged))
    keys = ("trl", "tel", "tra", "tea", "wn")
    rows: dict[str, list[Tensor]] = {k: [] for k in keys}
    start = 0
    if restore is not None and (state := restore(stack, optimizer)) is not None:
        start, saved = state
        rows = {k: [torch.tensor(r, dtype=torch.float64) for r in saved[k]] for k in keys}
    for step in range(start, steps + 1):
        if on_checkpoint is not None and checkpoint_every and step > start:
            if step % checkpoint_every == 0 or step == steps:
                on_checkpoint(
                    step, stack, optimizer, {k: [r.tolist() for r in v] for k, v in rows.items()}
                )
        log = step in logged
        if log:
            row = {k: torch.empty(n_models, dtype=torch.float64) for k in keys}
        elif step == steps:
            break
        for g in groups:
            with torch.set_grad_enabled(step < steps):
                logits = forward_batched(family, g.params, g.train_in)
                flat = logits.view(-1, logits.shape[-1])
                # one fused log-softmax + nll for the whole group; every member has n_train
                # examples, so sum / n_train is the sum over members of each one's mean loss
                if log:
                    ce = F.cross_entropy(flat, g.train_y, reduction="none")
                    loss = ce.sum() / max(g.n_train, 1)
                    _log_group(family, g, logits.detach(), ce.detach(), row)
                else:
                    loss = F.cross_entropy(flat, g.train_y, reduction="sum") / max(g.n_train, 1)
            if step == steps:
                continue
            loss.backward()
        if step < steps:
            with torch.no_grad():
                for g in groups:
                    for k, p in g.params.items():
                        p.mul_(g.decay[k])
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        if log:
            for k in keys:
                rows[k].append(row[k])
        if step == steps:
            break
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
    final = {}
    for name in groups[0].params:
        ref = groups[0].params[name]
        out = torch.empty(n_models, *ref.shape[1:], dtype=ref.dtype)
        for g in groups:
            out[g.members.cpu()] = g.params[name].detach().cpu()
        final[name] = out
    return hist, final


def _correct(logits: Tensor, targets: Tensor) -> Tensor:
    """1.0 where ``argmax(logits) == target``.  ``amax`` is much cheaper than ``argmax`` on CPU,
    so argmax runs only on rows with a tied maximum (dead-ReLU examples give all-zero logits),
    where it picks the first index."""
    is_max = logits == logits.amax(-1, keepdim=True)
    correct = is_max.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    ties = torch.count_nonzero(is_max, dim=-1) > 1
    if bool(ties.any()):
        correct[ties] = logits[ties].argmax(-1) == targets[ties]
    return correct.to(logits.dtype)


@torch.no_grad()
def _log_group(
    family: Family, g: _Group, logits: Tensor, ce: Tensor, row: dict[str, Tensor]
) -> None:
    """Fill ``row`` ([model] tensors) for the group's members: the train metrics come from this
    step's training forward pass (``logits`` [group n_train class], ``ce`` flat), the test
    metrics from one more forward pass over the test examples only."""
    size = len(g.members)
    members = g.members.cpu()
    row["trl"][members] = ce.view(size, -1).mean(1).double().cpu()
    row["tra"][members] = _correct(logits, g.train_y.view(size, -1)).mean(1).double().cpu()
    if g.test_y.shape[1]:
        test_logits = forward_batched(family, g.params, g.test_in)
        test_ce = _per_model_ce(test_logits, g.test_y)
        row["tel"][members] = test_ce.mean(1).double().cpu()
        row["tea"][members] = _correct(test_logits, g.test_y).mean(1).double().cpu()
    else:
        row["tel"][members] = 0.0
        row["tea"][members] = 0.0
    sq = sum(p.detach().double().pow(2).flatten(1).sum(1) for p in g.params.values())
    row["wn"][members] = sq.sqrt().cpu()
