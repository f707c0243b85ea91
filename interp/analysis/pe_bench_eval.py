"""How the positional-encoding benchmark scores a task model: fixed evaluation sets per split
(the same for every model), token and sequence error with error by scored position, CoPE's
position-only attention maps, and the mean over seeds with a 95% t-interval."""

from __future__ import annotations

import math
from typing import Any

import torch

EVAL_SEED = 20_240_528

_T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306}


def interval(values: list[float], lo: float = -math.inf, hi: float = math.inf) -> dict[str, Any]:
    """Mean over seeds with a 95% t-interval clipped to [lo, hi] (one value: zero width)."""
    n = len(values)
    mean = sum(values) / n
    half = 0.0
    if n >= 2:
        sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
        half = _T975.get(n - 1, 1.96) * sd / math.sqrt(n)
    return {
        "mean": mean,
        "lo": max(lo, mean - half),
        "hi": min(hi, mean + half),
        "n": n,
        "values": values,
    }


def eval_sets(task: Any, n_sequences: int, batch_size: int) -> dict[str, list[Any]]:
    """Fixed evaluation batches per split, the same for every model."""
    splits = getattr(task, "eval_splits", ("val",))
    out = {}
    for index, split in enumerate(splits):
        g = torch.Generator().manual_seed(EVAL_SEED + index)
        sizes = [batch_size] * (n_sequences // batch_size)
        if n_sequences % batch_size:
            sizes.append(n_sequences % batch_size)
        out[split] = [task.sample(size, g, split) for size in sizes]
    return out


@torch.no_grad()
def evaluate_errors(model: Any, batches: list[Any], device: str = "cpu") -> dict[str, Any]:
    """Token and sequence error over scored positions, and per-position (correct, count)."""
    model.eval()
    wrong_tokens = scored = wrong_seqs = seqs = 0
    by_pos_wrong: dict[int, int] = {}
    by_pos_count: dict[int, int] = {}
    for batch in batches:
        batch = batch.to(device)
        wrong = (model(batch.inputs).argmax(-1) != batch.targets) & batch.mask
        wrong_tokens += int(wrong.sum())
        scored += int(batch.mask.sum())
        wrong_seqs += int(wrong.any(dim=1).sum())
        seqs += batch.inputs.shape[0]
        for pos, w in zip(
            batch.mask.nonzero()[:, 1].tolist(), wrong[batch.mask].tolist(), strict=True
        ):
            by_pos_count[pos] = by_pos_count.get(pos, 0) + 1
            by_pos_wrong[pos] = by_pos_wrong.get(pos, 0) + int(w)
    return {
        "token_error": wrong_tokens / max(scored, 1),
        "sequence_error": wrong_seqs / max(seqs, 1),
        "scored": scored,
        "sequences": seqs,
        "by_pos": {str(p): [by_pos_wrong[p], by_pos_count[p]] for p in sorted(by_pos_count)},
    }


@torch.no_grad()
def position_only_maps(model: Any, tokens: torch.Tensor, max_len: int = 64) -> list[dict[str, Any]]:
    """For each CoPE layer and head: softmax over visible keys of ``q_i . e[p_ij] / sqrt(d)``
    (``q_i . e[p_ij]`` with ``nodiv``), the positional term alone."""
    from interp.models.positional.cope import CopeAttention, causal_mask

    tokens = tokens[:, :max_len]
    layers = [
        i for i, block in enumerate(model.blocks) if isinstance(block.attn.position, CopeAttention)
    ]
    if not layers:
        return []
    names = {f"blocks.{i}.attn.{h}" for i in layers for h in ("hook_q", "hook_cope_pos")}
    _, cache = model.run_with_cache(tokens, names_filter=lambda n: n in names)
    out = []
    for layer in layers:
        part = model.blocks[layer].attn.position
        q, positions = (
            cache[f"blocks.{layer}.attn.hook_q"],
            cache[f"blocks.{layer}.attn.hook_cope_pos"],
        )
        logits = part.position_only_logits(q, positions)
        visible = causal_mask(q.shape[1], q.shape[1], q.device)
        pattern = logits.masked_fill(~visible, float("-inf")).softmax(-1)
        for head in range(pattern.shape[1]):
            out.append(
                {
                    "layer": layer,
                    "head": head,
                    "pattern": pattern[0, head].tolist(),
                    "positions": positions[0, head].tolist(),
                }
            )
    return out


def _pooled_by_position(runs: list[dict[str, Any]], splits: list[str]) -> dict[str, Any]:
    """Error by scored position, pooled over seeds and splits, in up to 16 equal bins."""
    wrong: dict[int, int] = {}
    count: dict[int, int] = {}
    for run in runs:
        for split in splits:
            for pos, (w, c) in run["errors"][split]["by_pos"].items():
                wrong[int(pos)] = wrong.get(int(pos), 0) + w
                count[int(pos)] = count.get(int(pos), 0) + c
    if not count:
        return {"position": [], "error": [], "count": []}
    top = max(count) + 1
    width = max(1, math.ceil(top / 16))
    bins: dict[int, list[int]] = {}
    for pos, c in count.items():
        b = bins.setdefault(pos // width, [0, 0])
        b[0] += wrong[pos]
        b[1] += c
    keys = sorted(bins)
    return {
        "position": [(k + 0.5) * width for k in keys],
        "error": [100 * bins[k][0] / bins[k][1] for k in keys],
        "count": [bins[k][1] for k in keys],
    }
