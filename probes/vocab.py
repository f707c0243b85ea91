"""Vocabulary probe: a linear softmax classifier from h_l(t) to the token at t+k.

Over the whole vocabulary, or (``top_k`` > 0 and smaller than the vocabulary) over the ``top_k``
most frequent target tokens of the fitting blocks plus one "other" class.  For metrics the
"other" mass is spread over the remaining tokens in proportion to their unigram frequency, so
top-1 / top-5 / cross-entropy are over the full vocabulary and comparable with every other row.

Unlike the future-lens probe this one needs the fitting activations in memory (softmax has no
finite sufficient statistics): :func:`memory_bytes` says how much, before anything runs, and the
caller refuses requests beyond its budget.  Training: Adam on minibatches of standardised inputs (``epochs`` passes, at least
``MIN_STEPS`` steps),
weights from zero and biases from the closed-form optimum of a weight-free model (log class prior),
all horizons of one layer as one matrix.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from torch import Tensor

MINIBATCH = 512
MIN_STEPS = 200  # small fitting sets still get enough Adam steps


def n_classes(d_vocab: int, top_k: int) -> int:
    return d_vocab if top_k <= 0 or top_k >= d_vocab else top_k + 1


def memory_bytes(
    rows: int,
    n_layers: int,
    d_model: int,
    horizons: int,
    classes: int,
    eval_rows: int = 0,
) -> int:
    """Peak bytes held: fitting activations (and their standardised copy while a layer trains),
    targets, weights with Adam state, one minibatch, and the evaluation's class log-probabilities
    (``eval_rows`` rows at once; metrics never need the full vocabulary, see
    :meth:`VocabProbe.metrics`)."""
    activations = rows * n_layers * d_model * 4 + rows * d_model * 4
    targets = rows * horizons * 8 * 3  # the tokens, their classes, the bincounts' inputs
    weights = n_layers * (d_model + 1) * horizons * classes * 4 * 4  # w, grad, Adam m and v
    minibatch = min(rows, MINIBATCH) * horizons * classes * 4 * 4
    evaluation = eval_rows * horizons * (classes + 5) * 4 * 3
    return activations + targets + weights + minibatch + evaluation


@dataclass
class VocabProbe:
    """Trained softmax probes for a set of layers, every horizon."""

    classes: Tensor  # [C or C-1] token ids of the class set (without "other")
    has_other: bool
    d_vocab: int
    horizons: int
    mean: dict[int, Tensor]
    std: dict[int, Tensor]
    weight: dict[int, Tensor]  # layer -> [d_model, horizon * C]
    bias: dict[int, Tensor]  # layer -> [horizon * C]
    other_logshare: Tensor | None  # [d_vocab]: log p_uni(b | b not in classes), -inf for classes

    @property
    def n_classes(self) -> int:
        return self.classes.numel() + int(self.has_other)

    def class_of(self, tokens: Int[Tensor, "..."]) -> Int[Tensor, "..."]:
        lookup = torch.full((self.d_vocab,), self.classes.numel(), dtype=torch.long)
        lookup[self.classes] = torch.arange(self.classes.numel())
        return lookup[tokens.cpu()].to(tokens.device)

    @torch.no_grad()
    def metrics(
        self, layer: int, x: Float[Tensor, "rows d_model"], targets: Int[Tensor, "rows horizon"]
    ) -> Float[Tensor, "rows horizon 3"]:
        """Top-1, top-5 and cross-entropy over the full vocabulary (as :meth:`vocab_logprobs`
        would give them) computed in class space: with an "other" class, the best tokens outside
        the classes are always the same five (the largest unigram shares), so the top five of
        the vocabulary are among the classes and those five, and a target outside the classes
        has log-probability ``log p(other) + log share(target)``.  Nothing ``d_vocab`` wide is
        formed.  (Ties between equal shares are broken by token id.)"""
        z = (x - self.mean[layer]) / self.std[layer]
        logits = (z @ self.weight[layer] + self.bias[layer]).view(
            x.shape[0], self.horizons, self.n_classes
        )
        logp = logits.log_softmax(-1)
        if not self.has_other:
            cand, ids, target_logp = logp, self.classes, logp.gather(-1, targets[..., None])[..., 0]
        else:
            assert self.other_logshare is not None
            share, other_ids = self._other_top()
            cand = torch.cat([logp[..., :-1], logp[..., -1:] + share], -1)
            ids = torch.cat([self.classes, other_ids])
            cls = self.class_of(targets)
            inside = cls < self.classes.numel()
            from_class = logp.gather(-1, cls.clamp_max(self.n_classes - 1)[..., None])[..., 0]
            outside = logp[..., -1] + self.other_logshare[targets]
            target_logp = torch.where(inside, from_class, outside)
        top = ids[cand.topk(min(5, cand.shape[-1]), dim=-1).indices]  # [rows, horizon, 5]
        hit = top == targets[..., None]
        return torch.stack([hit[..., 0].float(), hit.any(-1).float(), -target_logp], -1)

    def _other_top(self) -> tuple[Tensor, Tensor]:
        """The five largest shares outside the classes and their token ids (ties: lower id)."""
        assert self.other_logshare is not None
        order = torch.sort(self.other_logshare, descending=True, stable=True)
        k = min(5, self.d_vocab - self.classes.numel())
        return order.values[:k], order.indices[:k]

    def vocab_logprobs(
        self, layer: int, x: Float[Tensor, "rows d_model"]
    ) -> Float[Tensor, "rows horizon d_vocab"]:
        """Log-probabilities over the full vocabulary for every horizon."""
        z = (x - self.mean[layer]) / self.std[layer]
        logits = (z @ self.weight[layer] + self.bias[layer]).view(
            x.shape[0], self.horizons, self.n_classes
        )
        logp = logits.log_softmax(-1)
        if not self.has_other:
            return logp
        assert self.other_logshare is not None
        full = logp[..., -1:] + self.other_logshare  # the "other" mass spread by unigram share
        full[..., self.classes] = logp[..., :-1]
        return full


def _minibatches(n: int, steps: int, g: torch.Generator) -> Iterator[Tensor]:
    """``steps`` minibatches of row indices, reshuffling at each epoch."""
    done = 0
    while True:
        for idx in torch.randperm(n, generator=g).split(MINIBATCH):
            if done == steps:
                return
            done += 1
            yield idx


def fit_vocab_probe(
    x_by_layer: dict[int, Float[Tensor, "rows d_model"]],
    targets: Int[Tensor, "rows horizon"],
    unigram: Tensor,
    top_k: int,
    epochs: int = 4,
    lr: float = 1e-2,
    seed: int = 0,
) -> VocabProbe:
    """Train one softmax probe per (layer, horizon) with cross-entropy."""
    d_vocab = unigram.numel()
    horizons = targets.shape[1]
    counts = torch.bincount(targets.flatten(), minlength=d_vocab).double()
    has_other = 0 < top_k < d_vocab
    if has_other:
        classes = counts.argsort(descending=True, stable=True)[:top_k].sort().values
        uni = unigram.double() + 1.0
        rest = uni.clone()
        rest[classes] = 0.0
        other_logshare = (rest / rest.sum()).log().float()
    else:
        classes = torch.arange(d_vocab)
        other_logshare = None
    probe = VocabProbe(
        classes=classes,
        has_other=has_other,
        d_vocab=d_vocab,
        horizons=horizons,
        mean={},
        std={},
        weight={},
        bias={},
        other_logshare=other_logshare,
    )
    y = probe.class_of(targets)  # [rows, horizon]
    c = probe.n_classes
    prior = torch.stack(
        [torch.bincount(y[:, k], minlength=c).double() + 1.0 for k in range(horizons)]
    )
    log_prior = (prior / prior.sum(1, keepdim=True)).log().float().flatten()
    g = torch.Generator().manual_seed(seed)
    n = targets.shape[0]
    for layer, x in x_by_layer.items():
        mean = x.mean(0)
        std = x.std(0).clamp_min(1e-6)
        w = torch.zeros(x.shape[1], horizons * c, requires_grad=True)
        b = log_prior.clone().requires_grad_(True)
        opt = torch.optim.Adam([w, b], lr=lr)
        steps = max(epochs * -(-n // MINIBATCH), MIN_STEPS)
        for idx in _minibatches(n, steps, g):
            z = (x[idx] - mean) / std
            logits = (z @ w + b).view(len(idx), horizons, c)
            loss = F.cross_entropy(logits.flatten(0, 1), y[idx].flatten()) * horizons
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        probe.mean[layer], probe.std[layer] = mean, std
        probe.weight[layer], probe.bias[layer] = w.detach(), b.detach()
    return probe
