"""Decoding probe predictions through the model's own head, only where a metric is read.

The future-lens probe predicts a final residual state; its metrics (top-1, top-5, cross-entropy
over the whole vocabulary) need that state decoded, ``unembed(ln_final(state))``, one
``d_vocab``-wide row per evaluated position and per (layer, horizon) cell: on GPT-2 (vocabulary
50257) that decoding is most of the probe's time.  :class:`Decoder` decodes rows in chunks of
at most :data:`CHUNK_BYTES` of logits, turns each chunk into its three metrics at once and keeps
nothing wider than a chunk.

Precision: ``float32`` (the model's own head), or ``bfloat16`` matmul inputs (float32 norm,
float32 accumulation inside the matmul, logits rounded to bfloat16, then float32 softmax).
Before the bfloat16 conversion the unembedding is centred over the vocabulary (``W_U`` minus its
mean column): every logit of a row moves by the same amount, which changes no softmax, top-k or
cross-entropy, and the logits to round are then small.  ``auto`` (the default) takes bfloat16
only for a large vocabulary (at least :data:`BF16_MIN_VOCAB` tokens: below it decoding is cheap
and float32 keeps small models' numbers exact) when this machine's native bfloat16 matmul is
measured faster on the decode itself (:func:`choose_dtype`), and records how far the two are
apart on the rows it timed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from torch import Tensor

DTYPES = ("auto", "float32", "bfloat16")
CHUNK_BYTES = 16 * 2**20  # float32 logits decoded at once (under glibc's 32 MiB mmap threshold:
# larger temporaries come back as fresh pages from the kernel on every chunk)
BF16_MIN_VOCAB = 8192
BF16_SPEEDUP = 1.25  # bfloat16 is taken when at least this much faster on the decode


def row_metrics(
    logits: Float[Tensor, "rows d_vocab"], targets: Int[Tensor, " rows"]
) -> Float[Tensor, "rows 3"]:
    """Per row: top-1 correct, top-5 correct, cross-entropy (nats)."""
    logits = logits.float()
    top5 = logits.topk(min(5, logits.shape[-1]), dim=-1).indices
    hit = top5 == targets.unsqueeze(-1)
    ce = F.cross_entropy(logits, targets, reduction="none")
    return torch.stack([hit[:, 0].float(), hit.any(-1).float(), ce], -1)


class Decoder:
    """``unembed(ln_final(state))`` in ``dtype``, chunked by rows (see the module docstring)."""

    def __init__(self, model: Any, dtype: torch.dtype = torch.float32) -> None:
        self.model = model
        self.dtype = dtype
        self.d_vocab = int(model.cfg.d_vocab)
        self.chunk = max(1, CHUNK_BYTES // (4 * self.d_vocab))
        self.weight: Tensor | None = None
        self.bias: Tensor | None = None
        if dtype != torch.float32:
            w = model.unembed.weight.detach().float()  # [d_model, d_vocab]
            self.weight = (w - w.mean(1, keepdim=True)).to(dtype).contiguous()
            self.bias = model.unembed.b_U.detach().float()

    @property
    def name(self) -> str:
        return str(self.dtype).removeprefix("torch.")

    @property
    def extra_bytes(self) -> int:
        """Memory the decoder holds beside the model (its converted unembedding)."""
        w = self.weight
        return 0 if w is None else w.numel() * w.element_size()

    def logits(self, state: Float[Tensor, "rows d_model"]) -> Float[Tensor, "rows d_vocab"]:
        normed = self.model.ln_final(state)
        if self.weight is None:
            return self.model.unembed(normed)
        assert self.bias is not None
        return (normed.to(self.dtype) @ self.weight).float() + self.bias

    @torch.no_grad()
    def metrics(
        self, state: Float[Tensor, "rows d_model"], targets: Int[Tensor, " rows"]
    ) -> Float[Tensor, "rows 3"]:
        """:func:`row_metrics` of the decoded rows, ``chunk`` rows at a time."""
        out = [
            row_metrics(self.logits(state[i : i + self.chunk]), targets[i : i + self.chunk])
            for i in range(0, state.shape[0], self.chunk)
        ]
        return torch.cat(out) if out else torch.zeros(0, 3)


@dataclass(frozen=True)
class DecodeChoice:
    """What the evaluation decodes in, and why."""

    dtype: torch.dtype
    reason: str
    seconds_per_row: dict[str, float]  # measured on the calibration rows, per dtype tried
    check: dict[str, float] | None = None  # bfloat16 vs float32 on the calibration rows


def _time(fn: Any, repeats: int = 2) -> float:
    fn()  # warm-up (first-call kernel selection)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


@torch.no_grad()
def choose_dtype(
    model: Any, asked: str, rows: Float[Tensor, "rows d_model"], targets: Int[Tensor, " rows"]
) -> DecodeChoice:
    """The decoding dtype for ``asked`` (``auto``, ``float32``, ``bfloat16``), timed on ``rows``
    (final states, say 256 of them) so that the evaluation's duration can be estimated."""
    d_vocab = int(model.cfg.d_vocab)
    n = max(1, rows.shape[0])
    f32 = Decoder(model, torch.float32)
    t32 = _time(lambda: f32.metrics(rows, targets)) / n
    seconds = {"float32": t32}
    if asked == "float32" or (asked == "auto" and d_vocab < BF16_MIN_VOCAB):
        why = "asked" if asked == "float32" else f"vocabulary below {BF16_MIN_VOCAB}"
        return DecodeChoice(torch.float32, why, seconds)
    try:
        b16 = Decoder(model, torch.bfloat16)
        t16 = _time(lambda: b16.metrics(rows, targets)) / n
    except (RuntimeError, TypeError, AttributeError) as e:  # no bf16 matmul, or not our head
        if asked == "bfloat16":
            raise
        return DecodeChoice(torch.float32, f"no bfloat16 matmul here ({type(e).__name__})", seconds)
    seconds["bfloat16"] = t16
    a, b = f32.logits(rows).log_softmax(-1), b16.logits(rows).log_softmax(-1)
    check = {
        "rows": float(rows.shape[0]),
        "top1_agreement": float((a.argmax(-1) == b.argmax(-1)).float().mean()),
        "max_abs_logprob_diff_at_target": float(
            (a.gather(1, targets[:, None]) - b.gather(1, targets[:, None])).abs().max()
        ),
        "mean_ce_diff": float(
            (b.gather(1, targets[:, None]) - a.gather(1, targets[:, None])).mean()
        ),
    }
    if asked == "bfloat16":
        return DecodeChoice(torch.bfloat16, "asked", seconds, check)
    if t16 * BF16_SPEEDUP <= t32:
        why = f"native bfloat16 measured {t32 / t16:.1f}x faster than float32 on the decode"
        return DecodeChoice(torch.bfloat16, why, seconds, check)
    why = f"native bfloat16 not faster here ({t32 / t16:.2f}x float32's speed on the decode)"
    return DecodeChoice(torch.float32, why, seconds, check)


__all__ = ["DTYPES", "DecodeChoice", "Decoder", "choose_dtype", "row_metrics"]
