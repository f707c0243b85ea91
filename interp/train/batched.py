"""Train many small hooked models at once: one stacked forward, backward and AdamW per step.

A sweep of tiny models is dominated by Python overhead per model and step.  Models whose
configs agree on everything but ``d_vocab`` and ``n_ctx`` are trained together here, by one of
two engines:

* ``stacked`` (default where it applies, :func:`stacked_supported`): the parameters are stacked
  into [model ...] tensors and the hooked model's forward is written once with ``bmm`` over the
  model dimension (no per-model Python, no ``vmap``); Q/K/V are fused into one matmul, attention
  is the fused ``scaled_dot_product_attention``, and the last block computes queries, MLP and
  unembedding only at positions some model scores (keys and values still see every position);
* ``vmap``: ``torch.func.stack_module_state`` + ``vmap(functional_call(...))`` over the real
  hooked module, for every config of the family (RoPE, ALiBi, CoPE, tied embeddings, ...).

Both update all models with a few ``torch._foreach`` AdamW calls on the stacked tensors.

Each model gets exactly what :func:`interp.train.loop.train` would give it alone (same
initialisation, same batches from its own :class:`~interp.train.sources.DataSource`, same
warmup + cosine schedule, per-model gradient clipping, AdamW with decay on matrices only), up
to float rounding (checked <= 1e-5 in ``tests/test_batched.py``).  Differing vocabularies and
lengths are padded in ways that leave every model's scored outputs unchanged:

* ``d_vocab``: the stacked embedding / unembedding get the largest vocabulary; a model's
  unused input rows are never indexed, and its unused output classes are masked to ``-inf``
  before the loss (zero probability, zero gradient);
* sequence length: shorter batches are right-padded with token 0 and an all-False mask; with
  causal attention a position never sees later ones, so scored positions are untouched;
* ``n_ctx``: the largest is used; rows of a position table past a model's length only reach
  padded positions.

Groups: :func:`group_key` (everything but ``d_vocab``/``n_ctx``), split so no model is padded
past ``MAX_PAD_RATIO`` times its context (padding is compute spent on nothing);
:func:`train_models` trains each group of two or more together and falls back to the ordinary
loop for a lone model.
Only vanilla gradients and classification (``ce``) batches are batched.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.func import functional_call, stack_module_state, vmap

from interp.config import ModelConfig, TrainConfig
from interp.errors import ConfigError, NumericalError
from interp.models.block import ACTIVATIONS
from interp.models.transformer import HookedTransformer
from interp.tasks.base import Batch
from interp.train.schedule import lr_at
from interp.train.sources import DataSource

__all__ = ["BatchedResult", "group_key", "train_batched", "train_models"]

PADDED_FIELDS = ("d_vocab", "n_ctx")
ENGINES = ("auto", "stacked", "vmap")
MAX_PAD_RATIO = 2.0  # a model shares a group only with models at most this much longer


def group_key(cfg: ModelConfig) -> tuple:
    """Models with equal keys are trained together (they differ at most in ``d_vocab``/``n_ctx``)."""
    d = cfg.to_dict()
    return tuple(
        (k, tuple(sorted(v.items())) if isinstance(v, dict) else v)
        for k, v in sorted(d.items())
        if k not in PADDED_FIELDS
    )


@dataclass
class BatchedResult:
    """Per-model training record: final train loss and the logged (step, loss) pairs."""

    final_loss: float
    losses: list[tuple[int, float]]


def _pad_to(t: Tensor, shape: Sequence[int]) -> Tensor:
    if tuple(t.shape) == tuple(shape):
        return t.detach().clone()
    out = torch.zeros(shape, dtype=t.dtype, device=t.device)
    out[tuple(slice(0, s) for s in t.shape)] = t.detach()
    return out


def _stack_batches(batches: list[Batch]) -> tuple[Tensor, Tensor, Tensor]:
    """Right-pad every model's batch to the longest; -> inputs, targets, mask [model batch pos]."""
    for b in batches:
        if b.loss != "ce":
            raise ConfigError("batched training supports classification (ce) tasks only")
    length = max(b.inputs.shape[1] for b in batches)

    def pad(x: Tensor, value: Any) -> Tensor:
        return F.pad(x, (0, length - x.shape[1]), value=value)

    inputs = torch.stack([pad(b.inputs, 0) for b in batches])
    targets = torch.stack([pad(b.targets, 0) for b in batches])
    mask = torch.stack([pad(b.mask, False) for b in batches])
    return inputs, targets, mask


def train_batched(
    models: Sequence[HookedTransformer],
    sources: Sequence[DataSource],
    cfg: TrainConfig,
    on_step: Callable[[int], None] | None = None,
    engine: str = "auto",
) -> list[BatchedResult]:
    """Train ``models`` (same :func:`group_key`) together, in place, for ``cfg.steps`` steps.

    ``engine``: ``"stacked"`` (the hand-batched forward, :func:`stacked_supported` configs),
    ``"vmap"`` (any config of the family), or ``"auto"`` (stacked where supported).
    """
    if not models or len(models) != len(sources):
        raise ConfigError("train_batched needs one data source per model, and at least one model")
    keys = {group_key(m.config) for m in models}
    if len(keys) != 1:
        raise ConfigError("models trained together must share every config field but d_vocab/n_ctx")
    if cfg.grad_mode != "vanilla":
        raise ConfigError("batched training supports vanilla gradients only")
    if engine not in ENGINES:
        raise ConfigError(f"unknown batched engine {engine!r}; choose {', '.join(ENGINES)}")
    base = models[0].config
    if engine == "auto":
        engine = "stacked" if stacked_supported(base) else "vmap"
    elif engine == "stacked" and not stacked_supported(base):
        raise ConfigError("the stacked engine needs token input, untied embeddings, no/absolute PE")
    device = cfg.device
    padded_cfg = base.replace(
        d_vocab=max(m.config.d_vocab for m in models), n_ctx=max(m.config.n_ctx for m in models)
    )
    template = HookedTransformer(padded_cfg, seed=None).to(device)
    shapes = {name: p.shape for name, p in template.named_parameters()}
    trainable = {name for name, p in template.named_parameters() if p.requires_grad}

    if all(m.config == base for m in models):
        params, _ = stack_module_state(list(models))
    else:  # pad each parameter to the group's largest shape, then stack
        own = [dict(m.named_parameters()) for m in models]
        params = {
            name: torch.stack([_pad_to(o[name], shapes[name]) for o in own]) for name in shapes
        }
    params = {name: p.detach().clone().to(device) for name, p in params.items()}
    class_ok = torch.stack(
        [torch.arange(padded_cfg.d_vocab) < m.config.d_vocab for m in models]
    ).to(device)  # [model d_vocab]
    padded_vocab = bool((~class_ok).any())

    if engine == "stacked":
        train_params, decayed = _to_stacked(params, padded_cfg)
        trainable_names = {
            name for name in train_params if _source_names(name, padded_cfg)[0] in trainable
        }

        def loss_of(p: dict[str, Tensor], batch: tuple[Tensor, Tensor, Tensor]) -> Tensor:
            return _stacked_loss(p, padded_cfg, *batch, class_ok if padded_vocab else None)

    else:
        train_params = params
        decayed = {n for n in params if params[n].ndim - 1 >= 2 and not _positional(n)}
        trainable_names = trainable
        buffers = dict(template.named_buffers())

        def forward_one(p: dict[str, Tensor], inputs: Tensor) -> Tensor:
            # no tied tensors are registered twice in our family (Unembed hides its tie in a list)
            return functional_call(template, (p, buffers), (inputs,), tie_weights=False)

        forward_all = vmap(forward_one, in_dims=(0, 0))

        def loss_of(p: dict[str, Tensor], batch: tuple[Tensor, Tensor, Tensor]) -> Tensor:
            inputs, targets, mask = batch
            logits = forward_all(p, inputs)  # [model batch pos d_vocab]
            if padded_vocab:
                logits = logits.masked_fill(~class_ok[:, None, None, :], float("-inf"))
            return _per_model_ce(logits, targets, mask)

    names = [n for n in train_params if n in trainable_names]
    for n in names:
        train_params[n].requires_grad_(True)
    leaves = [train_params[n] for n in names]
    decay_flags = [n in decayed for n in names]
    n_models = len(models)
    o = cfg.optim
    exp_avg = [torch.zeros_like(p) for p in leaves]
    exp_avg_sq = [torch.zeros_like(p) for p in leaves]
    records = [BatchedResult(float("nan"), []) for _ in models]

    for step in range(cfg.steps):
        lr = lr_at(step, cfg.steps, o)
        batch = tuple(t.to(device) for t in _stack_batches([s.train_batch(step) for s in sources]))
        per_model = loss_of(train_params, batch)  # [model]
        values = per_model.detach().tolist()
        for i, v in enumerate(values):
            if not math.isfinite(v):
                raise NumericalError(f"loss of model {i} is {v} at step {step}; stopping")
        grads = torch.autograd.grad(per_model.sum(), leaves)
        grads = _clip_per_model(list(grads), o.grad_clip, n_models)
        _adamw_step(leaves, grads, exp_avg, exp_avg_sq, step + 1, lr, o, decay_flags)
        done = step + 1
        if done % cfg.log_every == 0 or done == cfg.steps:
            for rec, v in zip(records, values, strict=True):
                rec.losses.append((done, v))
        if on_step:
            on_step(done)
    for rec in records:
        rec.final_loss = rec.losses[-1][1] if rec.losses else float("nan")

    final = _from_stacked(train_params, padded_cfg) if engine == "stacked" else train_params
    with torch.no_grad():
        for i, model in enumerate(models):
            own = dict(model.named_parameters())
            for name, stacked in final.items():
                target = own[name]
                piece = stacked[i][tuple(slice(0, s) for s in target.shape)]
                target.copy_(piece.to(target.device))
    return records


def _positional(name: str) -> bool:
    """Parameters the ordinary loop never decays (``make_optimizer``): position tables."""
    return name.startswith("pos_embed.") or ".position." in name


def _per_model_ce(logits: Tensor, targets: Tensor, mask: Tensor) -> Tensor:
    """Masked mean cross-entropy per model: logits [model batch pos vocab] -> [model]."""
    ce = F.cross_entropy(logits.flatten(0, 2).float(), targets.flatten(), reduction="none").view(
        targets.shape
    )
    return (ce * mask).sum((1, 2)) / mask.sum((1, 2)).clamp(min=1)


# --------------------------------------------------------------------------- stacked engine
#
# The hooked model's forward written once for a stack of models: every weight carries a
# leading model dimension and every matmul is a ``bmm`` over it.  Layout differences from the
# hooked model (AdamW is elementwise and the clipping norm covers all of a model's entries, so
# the layout changes nothing but float rounding):
#
# * ``blocks.{l}.attn.W_QKV`` [model d_model (3 head d_head)] and ``b_QKV`` [model (3 head d_head)]
#   fuse W_Q, W_K, W_V and their biases (one matmul, as ``Attention.project`` does);
# * ``blocks.{l}.attn.W_O`` is viewed as [model (head d_head) d_model].
#
# Only the positions some model scores are carried through the last block's queries, MLP and
# unembedding (counting tasks score one position of ~n): keys and values still see every
# position, so the scored logits are those of the full forward.


def stacked_supported(cfg: ModelConfig) -> bool:
    """Configs the hand-batched engine implements (others use the vmap engine)."""
    return (
        cfg.input_kind == "tokens"
        and not cfg.tied_embeddings
        and cfg.unembed_bias
        and cfg.positional in ("none", "absolute")
        and not cfg.positional_options
    )


_FUSED = {"W_QKV": ("W_Q", "W_K", "W_V"), "b_QKV": ("b_Q", "b_K", "b_V")}


def _source_names(name: str, cfg: ModelConfig) -> tuple[str, ...]:
    """The hooked parameter(s) a stacked parameter is made of."""
    prefix, _, leaf = name.rpartition(".")
    if leaf in _FUSED:
        return tuple(f"{prefix}.{s}" for s in _FUSED[leaf])
    return (name,)


def _to_stacked(params: dict[str, Tensor], cfg: ModelConfig) -> tuple[dict[str, Tensor], set]:
    """Hooked layout [model ...] -> stacked-engine layout; also the names AdamW decays."""
    out: dict[str, Tensor] = {}
    decayed: set[str] = set()
    for name, p in params.items():
        prefix, _, leaf = name.rpartition(".")
        if leaf in ("W_K", "W_V", "b_K", "b_V"):
            continue
        if leaf == "W_Q":  # [model head d_model d_head] x3 -> [model d_model (3 head d_head)]
            w = torch.stack([params[f"{prefix}.{s}"] for s in _FUSED["W_QKV"]], 1)
            name, p = f"{prefix}.W_QKV", w.permute(0, 3, 1, 2, 4).flatten(2)
        elif leaf == "b_Q":  # [model head d_head] x3 -> [model (3 head d_head)]
            b = torch.stack([params[f"{prefix}.{s}"] for s in _FUSED["b_QKV"]], 1)
            name, p = f"{prefix}.b_QKV", b.flatten(1)
        elif leaf == "W_O":
            p = p.flatten(1, 2)
        out[name] = p.contiguous().clone()
        source = params[_source_names(name, cfg)[0]]
        if source.ndim - 1 >= 2 and not _positional(name):
            decayed.add(name)
    return out, decayed


def _from_stacked(stacked: dict[str, Tensor], cfg: ModelConfig) -> dict[str, Tensor]:
    """Stacked-engine layout -> hooked layout [model ...] (detached)."""
    heads, d_head, d_model = cfg.n_heads, cfg.head_dim, cfg.d_model
    out: dict[str, Tensor] = {}
    for name, p in stacked.items():
        p = p.detach()
        prefix, _, leaf = name.rpartition(".")
        if leaf == "W_QKV":
            parts = p.view(p.shape[0], d_model, 3, heads, d_head).permute(0, 2, 3, 1, 4)
            for s, w in zip(_FUSED[leaf], parts.unbind(1), strict=True):
                out[f"{prefix}.{s}"] = w
        elif leaf == "b_QKV":
            for s, b in zip(
                _FUSED[leaf], p.view(p.shape[0], 3, heads, d_head).unbind(1), strict=True
            ):
                out[f"{prefix}.{s}"] = b
        elif leaf == "W_O":
            out[name] = p.view(p.shape[0], heads, d_head, d_model)
        else:
            out[name] = p
    return out


def _norm(p: dict[str, Tensor], prefix: str, cfg: ModelConfig, x: Tensor) -> Tensor:
    """LayerNorm / RMSNorm / none with per-model gains; x [model rows d_model]."""
    if cfg.normalization == "layernorm":
        x = F.layer_norm(x, x.shape[-1:], eps=cfg.eps)
        return torch.addcmul(p[f"{prefix}.b"][:, None], x, p[f"{prefix}.w"][:, None])
    if cfg.normalization == "rmsnorm":
        scale = (x.pow(2).mean(-1, keepdim=True) + cfg.eps).sqrt()
        return x / scale * p[f"{prefix}.w"][:, None]
    return x


def _linear(p: dict[str, Tensor], w: str, b: str, x: Tensor) -> Tensor:
    return torch.baddbmm(p[b][:, None], x, p[w])


def _attend(q: Tensor, k: Tensor, v: Tensor, allowed: Tensor | None, causal: bool) -> Tensor:
    """Softmax attention of the hooked model (fused kernel); q [.. head q d_head], k/v [.. head k d_head].

    ``causal``: square causal mask; else ``allowed`` [q k] (None: every key).  Same scale
    (1/sqrt(d_head)) and masking as :class:`~interp.models.attention.Attention`; the fused kernel
    differs from its explicit softmax by float rounding only (~1e-7).
    """
    return F.scaled_dot_product_attention(q, k, v, attn_mask=allowed, is_causal=causal)


def _stacked_loss(
    p: dict[str, Tensor],
    cfg: ModelConfig,
    inputs: Tensor,
    targets: Tensor,
    mask: Tensor,
    class_ok: Tensor | None,
) -> Tensor:
    """Per-model masked cross-entropy of the stacked models; inputs/targets/mask [model batch pos]."""
    n_models, batch, n_pos = inputs.shape
    heads, d_head = cfg.n_heads, cfg.head_dim
    width = heads * d_head
    w_e = p["embed.W_E"]  # [model vocab d_model]
    vocab, d_model = w_e.shape[1:]
    offsets = torch.arange(n_models, device=inputs.device).view(-1, 1, 1) * vocab
    x = F.embedding(inputs + offsets, w_e.reshape(-1, d_model))  # [model batch pos d_model]
    if "pos_embed.W_pos" in p:
        x = x + p["pos_embed.W_pos"][:, None, :n_pos]
    x = x.reshape(n_models, batch * n_pos, d_model)

    scored = mask.any(1).any(0).nonzero()[:, 0]  # positions any model scores
    keep_all = len(scored) == n_pos
    causal = torch.ones(n_pos, n_pos, dtype=torch.bool, device=x.device).tril()
    for layer in range(cfg.n_layers):
        pre = f"blocks.{layer}"
        h = _norm(p, f"{pre}.ln1", cfg, x)
        w, b = p[f"{pre}.attn.W_QKV"], p[f"{pre}.attn.b_QKV"]
        last = layer == cfg.n_layers - 1 and not keep_all
        if not last:
            qkv = torch.baddbmm(b[:, None], h, w).view(n_models * batch, n_pos, 3, heads, d_head)
            q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # [(model batch) head pos d_head]
            allowed, square = None, True
        else:  # queries only at the scored positions; keys and values everywhere
            kv = torch.baddbmm(b[:, None, width:], h, w[:, :, width:])
            k, v = (
                kv.view(n_models * batch, n_pos, 2, heads, d_head).permute(2, 0, 3, 1, 4).unbind(0)
            )
            x = x.view(n_models, batch, n_pos, d_model)[:, :, scored].reshape(n_models, -1, d_model)
            h = h.view(n_models, batch, n_pos, d_model)[:, :, scored].reshape(n_models, -1, d_model)
            q = torch.baddbmm(b[:, None, :width], h, w[:, :, :width])
            q = q.view(n_models * batch, len(scored), heads, d_head).transpose(1, 2)
            allowed, square = causal[scored], False
            if bool(allowed.all()):
                allowed = None
        z = _attend(q, k, v, allowed, square)  # [(model batch) head pos d_head]
        z = z.transpose(1, 2).reshape(n_models, -1, width)
        x = x + _linear(p, f"{pre}.attn.W_O", f"{pre}.attn.b_O", z)
        if cfg.d_mlp > 0:
            h = _norm(p, f"{pre}.ln2", cfg, x)
            act = ACTIVATIONS[cfg.act_fn](_linear(p, f"{pre}.mlp.W_in", f"{pre}.mlp.b_in", h))
            x = x + _linear(p, f"{pre}.mlp.W_out", f"{pre}.mlp.b_out", act)
    logits = _linear(p, "unembed.W_U", "unembed.b_U", _norm(p, "ln_final", cfg, x))
    if not keep_all:
        targets, mask = targets[:, :, scored], mask[:, :, scored]
    logits = logits.view(n_models, batch, -1, vocab)
    if class_ok is not None:
        logits = logits.masked_fill(~class_ok[:, None, None, :], float("-inf"))
    return _per_model_ce(logits, targets, mask)


def _clip_per_model(grads: list[Tensor], max_norm: float, n_models: int) -> list[Tensor]:
    """``clip_grad_norm_`` applied to each model separately (norm over all its parameters)."""
    norms = torch.stack([g.reshape(n_models, -1).norm(dim=1) for g in grads])  # [param model]
    total = norms.norm(dim=0)  # [model]
    if not torch.isfinite(total).all():
        bad = int((~torch.isfinite(total)).nonzero()[0])
        raise NumericalError(f"gradient norm of model {bad} is not finite; stopping")
    if max_norm <= 0:
        return grads
    coef = (max_norm / (total + 1e-6)).clamp(max=1.0)
    return [g * coef.view(-1, *([1] * (g.ndim - 1))) for g in grads]


@torch.no_grad()
def _adamw_step(
    params: list[Tensor],
    grads: list[Tensor],
    exp_avg: list[Tensor],
    exp_avg_sq: list[Tensor],
    step: int,
    lr: float,
    o: Any,
    decayed: list[bool],
) -> None:
    """``torch.optim.AdamW`` (single-tensor algorithm) on stacked tensors; same lr for all models."""
    with_decay = [p for p, d in zip(params, decayed, strict=True) if d]
    if with_decay and o.weight_decay:
        torch._foreach_mul_(with_decay, 1 - lr * o.weight_decay)
    torch._foreach_lerp_(exp_avg, grads, 1 - o.beta1)
    torch._foreach_mul_(exp_avg_sq, o.beta2)
    torch._foreach_addcmul_(exp_avg_sq, grads, grads, value=1 - o.beta2)
    bias1 = 1 - o.beta1**step
    bias2_sqrt = (1 - o.beta2**step) ** 0.5
    denom = torch._foreach_sqrt(exp_avg_sq)
    torch._foreach_div_(denom, bias2_sqrt)
    torch._foreach_add_(denom, 1e-8)
    torch._foreach_addcdiv_(params, exp_avg, denom, value=-lr / bias1)


def train_models(
    models: Sequence[HookedTransformer],
    sources: Sequence[DataSource],
    cfg: TrainConfig,
    batched: bool = True,
    max_group: int = 64,
    on_model_done: Callable[[list[int]], None] | None = None,
    engine: str = "auto",
    labels: Sequence[str] | None = None,
) -> None:
    """Train every model in place: groups of equal :func:`group_key` together, the rest alone.

    ``on_model_done(indices)`` is called after each group (or lone model) finishes, so a caller
    can save results as they come.  ``batched=False`` trains every model with the ordinary loop.
    ``labels`` name the models in errors (a non-finite loss names the model, not its slot).
    """
    from interp.train.loop import train as train_one

    groups: dict[tuple, list[int]] = {}
    for i, m in enumerate(models):
        groups.setdefault(group_key(m.config) if batched else ("solo", i), []).append(i)
    for members in groups.values():
        for chunk in _chunks(members, [models[i].config.n_ctx for i in members], max_group):
            try:
                if len(chunk) == 1 or cfg.grad_mode != "vanilla":
                    for i in chunk:
                        current = [i]
                        train_one(models[i], sources[i], cfg)
                        models[i].eval()
                else:
                    current = chunk
                    chunk_models = [models[i] for i in chunk]
                    train_batched(chunk_models, [sources[i] for i in chunk], cfg, engine=engine)
            except NumericalError as e:
                if labels is None:
                    raise
                raise NumericalError(_name_model(str(e), current, labels)) from None
            if on_model_done:
                on_model_done(chunk)


def _name_model(message: str, members: list[int], labels: Sequence[str]) -> str:
    """``message`` with "model K" (K = slot in the trained group) replaced by the label."""
    slot = re.search(r"model (\d+)", message)
    if slot and int(slot.group(1)) < len(members):
        return message.replace(slot.group(0), labels[members[int(slot.group(1))]], 1)
    return f"{', '.join(labels[i] for i in members)}: {message}"


def _chunks(members: list[int], lengths: list[int], max_group: int) -> list[list[int]]:
    """Split a group so that no model is padded to more than ``MAX_PAD_RATIO`` x its length."""
    order = sorted(range(len(members)), key=lambda k: lengths[k])
    chunks: list[list[int]] = []
    start_len = None
    for k in order:
        if (
            not chunks
            or len(chunks[-1]) >= max_group
            or lengths[k] > MAX_PAD_RATIO * (start_len or 1)
        ):
            chunks.append([])
            start_len = lengths[k]
        chunks[-1].append(members[k])
    return chunks
