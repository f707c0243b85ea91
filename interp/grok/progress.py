"""Nanda et al.'s progress measures for a model trained on every pair (a, b) of residues.

``logits [p*p p]`` are the model's logits on all pairs in row-major order (``a * p + b``).
For key frequencies ``K`` the directions ``cos(w_f (a + b))``, ``sin(w_f (a + b))`` over the
``(a, b)`` grid (``w_f = 2 pi f / p``) span the part of the logits the Fourier circuit uses.

* restricted loss: keep only that part (plus each class's mean); cross-entropy on all pairs.
  Low once the circuit has formed.
* excluded loss: remove that part; cross-entropy on the training pairs.  Rises as the model
  comes to rely on the circuit rather than on memorisation.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor


def sum_basis(p: int, frequencies: list[int]) -> Float[Tensor, "pair two_k"]:
    """Orthonormal directions ``cos / sin (2 pi f (a + b) / p)`` over the p*p grid."""
    a, b = torch.meshgrid(torch.arange(p), torch.arange(p), indexing="ij")
    s = (a + b).flatten().double()
    cols = []
    for f in frequencies:
        for fn in (torch.cos, torch.sin):
            col = fn(2 * math.pi * f * s / p)
            if col.norm() > 1e-9:
                cols.append(col / col.norm())
    return torch.stack(cols, 1) if cols else torch.zeros(p * p, 0, dtype=torch.float64)


@torch.no_grad()
def restricted_excluded_loss(
    logits: Float[Tensor, "pair p"], labels: Tensor, train: Tensor, p: int, frequencies: list[int]
) -> dict[str, float]:
    """Restricted loss (all pairs) and excluded loss (training pairs) for ``frequencies``."""
    L = logits.detach().double().cpu()
    B = sum_basis(p, frequencies)  # [pair two_k]
    mean = L.mean(0, keepdim=True)
    part = B @ (B.T @ (L - mean))  # the key-frequency component of every class's logits
    labels, train = labels.cpu(), train.cpu()
    restricted = F.cross_entropy(mean + part, labels)
    excluded = F.cross_entropy((L - part)[train], labels[train])
    return {"restricted_loss": float(restricted), "excluded_loss": float(excluded)}
