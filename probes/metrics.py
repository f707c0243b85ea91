"""Held-out probe metrics (top-1, top-5, cross-entropy) with bootstrap intervals, and baselines.

Metrics are kept as per-sequence sums (``[seq, metric]``), so the 95% intervals come from a
bootstrap over test *sequences* (tokens within a sequence are correlated), and memory grows with
the number of test sequences only.

Baselines for the token at t+k, from counts over the fitting blocks:

* unigram: the target-token frequencies (add-one smoothed);
* bigram on the token at t: counts of (token at t, token at t+k), interpolated with the unigram
  (``p = (c(a, b) + p_uni(b)) / (c(a) + 1)``); top-k from the row counts, then unigram order;
* model (k = 1 only): the model's own next-token distribution at t.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from torch import Tensor

METRICS: tuple[str, ...] = ("top1", "top5", "ce")
METRIC_LABELS = {"top1": "top-1 accuracy", "top5": "top-5 accuracy", "ce": "cross-entropy (nats)"}


def logit_metrics(
    logits: Float[Tensor, "batch pos d_vocab"], targets: Int[Tensor, "batch pos"]
) -> Float[Tensor, "batch 3"]:
    """Per-sequence sums of (top-1 correct, top-5 correct, cross-entropy)."""
    logits = logits.float()
    top5 = logits.topk(min(5, logits.shape[-1]), dim=-1).indices
    hit = top5 == targets.unsqueeze(-1)
    ce = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="none")
    return torch.stack(
        [hit[..., 0].float().sum(1), hit.any(-1).float().sum(1), ce.view(targets.shape).sum(1)], -1
    )


@dataclass(frozen=True)
class Interval:
    value: float
    lo: float
    hi: float


def bootstrap(
    sums: np.ndarray, counts: np.ndarray, n_boot: int = 1000, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ratio estimates ``Σ sums / Σ counts`` over sequences with 95% percentile intervals.

    ``sums`` is ``[seq, ...]``; returns ``(value, lo, hi)`` each of shape ``sums.shape[1:]``.
    """
    sums = np.asarray(sums, dtype=np.float64)
    counts = np.asarray(counts, dtype=np.float64)
    n = sums.shape[0]
    flat = sums.reshape(n, -1)
    value = flat.sum(0) / counts.sum()
    rng = np.random.default_rng(seed)
    weights = rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot).astype(np.float64)  # [boot, seq]
    boots = (weights @ flat) / (weights @ counts)[:, None]
    lo, hi = np.percentile(boots, [2.5, 97.5], axis=0)
    shape = sums.shape[1:]
    return value.reshape(shape), lo.reshape(shape), hi.reshape(shape)


class NgramBaselines:
    """Unigram and skip-bigram (token at t -> token at t+k) counts over the fitting blocks."""

    merge_every = 1_000_000  # pending pair keys before they are folded into counts

    def __init__(self, d_vocab: int, horizons: int) -> None:
        self.d_vocab = d_vocab
        self.horizons = horizons
        self.unigram = np.zeros(d_vocab, dtype=np.int64)
        # per horizon: merged (pair key, count) arrays plus keys not yet merged
        self._merged: list[tuple[np.ndarray, np.ndarray]] = [
            (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)) for _ in range(horizons)
        ]
        self._pairs: list[list[np.ndarray]] = [[] for _ in range(horizons)]
        self._pending = 0
        self._built = False

    def _merge(self) -> None:
        """Fold pending pair keys into the counts (memory: distinct pairs, not tokens)."""
        for k, pieces in enumerate(self._pairs):
            keys, counts = self._merged[k]
            new = np.concatenate([keys, *pieces])
            weights = np.concatenate([counts, np.ones(len(new) - len(keys), dtype=np.int64)])
            uniq, inverse = np.unique(new, return_inverse=True)
            self._merged[k] = (uniq, np.bincount(inverse, weights=weights).astype(np.int64))
        self._pairs = [[] for _ in range(self.horizons)]
        self._pending = 0

    def update(self, tokens: Int[Tensor, "batch pos"]) -> None:
        tok = tokens.cpu().numpy().astype(np.int64)
        n_pos = tok.shape[1] - self.horizons
        for k in range(1, self.horizons + 1):
            a = tok[:, :n_pos].ravel()
            b = tok[:, k : k + n_pos].ravel()
            self._pairs[k - 1].append(a * self.d_vocab + b)
            if k == 1:
                self.unigram += np.bincount(b, minlength=self.d_vocab)
        self._pending += tok.shape[0] * n_pos
        if self._pending > self.merge_every:
            self._merge()

    def build(self) -> None:
        v = self.d_vocab
        total = self.unigram.sum()
        self.p_uni = (self.unigram + 1.0) / (total + v)
        self.uni_top5 = np.argsort(-self.p_uni, kind="stable")[:5]
        self.keys: list[np.ndarray] = []
        self.key_counts: list[np.ndarray] = []
        self.row_counts: list[np.ndarray] = []
        self.top5: list[np.ndarray] = []
        self._merge()
        for keys, counts in self._merged:
            self.keys.append(keys)
            self.key_counts.append(counts)
            rows, cols = keys // v, keys % v
            self.row_counts.append(np.bincount(rows, weights=counts, minlength=v))
            table = np.tile(self.uni_top5, (v, 1))
            # sort by row, then count descending, then unigram probability descending
            order = np.lexsort((-self.p_uni[cols], -counts, rows))
            rows_s, cols_s = rows[order], cols[order]
            starts = np.searchsorted(rows_s, np.arange(v))
            rank = np.arange(len(rows_s)) - starts[rows_s]
            keep = rank < 5
            table[rows_s[keep], rank[keep]] = cols_s[keep]
            short = np.flatnonzero((self.row_counts[-1] > 0) & (np.bincount(rows, minlength=v) < 5))
            for r in short:  # fill rows with fewer than 5 successors in unigram order
                have = list(cols_s[rows_s == r][:5])
                fill = [t for t in self.uni_top5 if t not in have]
                table[r, len(have) :] = (have + fill)[len(have) : 5]
            self.top5.append(table)
        self._built = True

    def metrics(
        self, tokens: Int[Tensor, "batch pos"], mask: Tensor | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per-sequence sums ``[batch, horizon, 3]`` for the unigram and the bigram baselines,
        over the probe positions where ``mask`` (``[batch, probe_pos]``, default all) is set."""
        if not self._built:
            self.build()
        tok = tokens.cpu().numpy().astype(np.int64)
        n_pos = tok.shape[1] - self.horizons
        batch = tok.shape[0]
        w = np.ones((batch, n_pos)) if mask is None else mask.cpu().numpy().astype(np.float64)
        uni = np.zeros((batch, self.horizons, 3))
        big = np.zeros((batch, self.horizons, 3))
        for k in range(1, self.horizons + 1):
            a = tok[:, :n_pos]
            b = tok[:, k : k + n_pos]
            uni[:, k - 1, 0] = ((b == self.uni_top5[0]) * w).sum(1)
            uni[:, k - 1, 1] = (np.isin(b, self.uni_top5) * w).sum(1)
            uni[:, k - 1, 2] = (-np.log(self.p_uni[b]) * w).sum(1)
            top = self.top5[k - 1][a]  # [batch, n_pos, 5]
            big[:, k - 1, 0] = ((top[..., 0] == b) * w).sum(1)
            big[:, k - 1, 1] = ((top == b[..., None]).any(-1) * w).sum(1)
            keys, counts = self.keys[k - 1], self.key_counts[k - 1]
            q = a * self.d_vocab + b
            idx = np.clip(np.searchsorted(keys, q), 0, len(keys) - 1)
            c_ab = np.where(keys[idx] == q, counts[idx], 0)
            p = (c_ab + self.p_uni[b]) / (self.row_counts[k - 1][a] + 1.0)
            big[:, k - 1, 2] = (-np.log(p) * w).sum(1)
        return uni, big
