"""Nanda et al.'s progress measures for a model trained on every pair (a, b) of residues, with
the definitions of their public code (progress-measures-paper).

``logits [p*p p]`` are the model's logits on all pairs in row-major order (``a * p + b``).
For a frequency ``f`` the directions ``cos(w_f (a + b))``, ``sin(w_f (a + b))`` over the
``(a, b)`` grid (``w_f = 2 pi f / p``) span the part of the logits the Fourier circuit uses.

* key frequencies (:func:`neuron_key_frequencies`): every MLP neuron's dominant frequency, the
  ``f`` in ``1 .. p//2 - 1`` whose block ``{1, cos f, sin f} x {1, cos f, sin f}`` of the
  neuron's 2-D Fourier transform over ``(a, b)`` holds the largest share of its squared norm;
  the key frequencies are the distinct dominant frequencies (no fixed count; ``p // 2`` is never
  a candidate, as in the code's ``range(1, p // 2)``).
* restricted loss: keep only the key frequencies' part of the logits (plus each class's mean);
  cross-entropy on all pairs.  Low once the circuit has formed.
* excluded loss (``excluded_loss``): one value per key frequency, that frequency's part removed
  alone, cross-entropy on the training pairs (the code's ``calculate_excluded_loss``).  Rises as
  the model comes to rely on the circuit rather than on memorisation.
  ``excluded_loss_all_keys``: every key frequency removed at once (interp's earlier
  definition, kept under its own name).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor

KEY_FREQUENCY_RULE = "each neuron's dominant frequency (Nanda et al.'s code)"
EXCLUDED_LOSS_RULE = "one value per key frequency, removed alone (Nanda et al.'s code)"


def _unit(col: Tensor) -> Tensor | None:
    return col / col.norm() if col.norm() > 1e-9 else None


def sum_basis(p: int, frequencies: list[int]) -> Float[Tensor, "pair two_k"]:
    """Orthonormal directions ``cos / sin (2 pi f (a + b) / p)`` over the p*p grid."""
    a, b = torch.meshgrid(torch.arange(p), torch.arange(p), indexing="ij")
    s = (a + b).flatten().double()
    cols = []
    for f in frequencies:
        for fn in (torch.cos, torch.sin):
            col = _unit(fn(2 * math.pi * f * s / p))
            if col is not None:
                cols.append(col)
    return torch.stack(cols, 1) if cols else torch.zeros(p * p, 0, dtype=torch.float64)


def fourier_basis(p: int) -> Float[Tensor, "component residue"]:
    """Orthonormal rows: the constant, then ``cos f``, ``sin f`` for ``f = 1 .. p // 2`` (rows
    ``2f - 1`` and ``2f``; a zero ``sin(pi x)`` of an even ``p`` is left out)."""
    x = torch.arange(p).double()
    rows = [torch.full((p,), 1 / math.sqrt(p), dtype=torch.float64)]
    for f in range(1, p // 2 + 1):
        for fn in (torch.cos, torch.sin):
            row = _unit(fn(2 * math.pi * f * x / p))
            if row is not None:
                rows.append(row)
    return torch.stack(rows)


@torch.no_grad()
def neuron_frequency_shares(acts: Float[Tensor, "pair neuron"], p: int) -> Tensor:
    """``[frequency neuron]``: the share of each neuron's squared norm (over the p*p grid) in
    the block ``{1, cos f, sin f}^2`` of its 2-D Fourier transform, for ``f = 1 .. p//2 - 1``."""
    basis = fourier_basis(p)
    grid = acts.detach().double().cpu().reshape(p, p, -1)  # [a b neuron]
    spectrum = torch.einsum("xa,abn,yb->xyn", basis, grid, basis)  # [component component neuron]
    total = spectrum.pow(2).sum((0, 1)).clamp_min(1e-30)
    shares = []
    for f in range(1, p // 2):
        idx = torch.tensor([0, 2 * f - 1, 2 * f])
        shares.append(spectrum[idx][:, idx].pow(2).sum((0, 1)) / total)
    return torch.stack(shares) if shares else torch.zeros(0, grid.shape[-1], dtype=torch.float64)


def neuron_key_frequencies(acts: Float[Tensor, "pair neuron"], p: int) -> list[int]:
    """The distinct dominant frequencies of the neurons (see the module doc)."""
    shares = neuron_frequency_shares(acts, p)
    if shares.numel() == 0:
        return []
    return sorted({int(f) + 1 for f in shares.argmax(0).tolist()})


@torch.no_grad()
def restricted_excluded_loss(
    logits: Float[Tensor, "pair p"], labels: Tensor, train: Tensor, p: int, frequencies: list[int]
) -> dict[str, float | list[float]]:
    """Restricted loss (all pairs), excluded loss per key frequency and with all removed
    (training pairs), for ``frequencies``."""
    L = logits.detach().double().cpu()
    labels, train = labels.cpu(), train.cpu()
    mean = L.mean(0, keepdim=True)

    def part(freqs: list[int]) -> Tensor:  # the ``freqs`` component of every class's logits
        B = sum_basis(p, freqs)  # [pair two_k]
        return B @ (B.T @ (L - mean))

    keys = part(frequencies)
    restricted = F.cross_entropy(mean + keys, labels)
    excluded = [float(F.cross_entropy((L - part([f]))[train], labels[train])) for f in frequencies]
    all_keys = F.cross_entropy((L - keys)[train], labels[train])
    return {
        "restricted_loss": float(restricted),
        "excluded_loss": excluded,
        "excluded_loss_all_keys": float(all_keys),
    }
