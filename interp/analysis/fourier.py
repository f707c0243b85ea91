"""Discrete Fourier analysis of weights indexed by a residue ``0..p-1`` (grokking, Nanda et al.).

A weight matrix ``W [p d]`` (an embedding, or the neuron pre-activations ``E @ W_in``) is
transformed along the input axis.  Frequency ``f`` (1 <= f <= p // 2) has power
``|F[f]|^2 + |F[p - f]|^2`` summed over the ``d`` columns (the two conjugate halves of a real
signal); frequency 0 is the constant.  A model that has grokked modular addition concentrates
its power on a few *key frequencies*.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from jaxtyping import Float
from torch import Tensor


@dataclass(frozen=True)
class Spectrum:
    """power[f] for f = 0..p//2 (f = 0 is the constant); ``share`` = power / total."""

    power: list[float]

    @property
    def share(self) -> list[float]:
        total = sum(self.power) or 1.0
        return [v / total for v in self.power]

    def top(self, k: int) -> list[int]:
        """The ``k`` non-constant frequencies with the most power, strongest first."""
        order = sorted(range(1, len(self.power)), key=lambda f: -self.power[f])
        return order[:k]

    def top_share(self, k: int) -> float:
        """Share of the non-constant power carried by the top ``k`` frequencies."""
        rest = sum(self.power[1:]) or 1.0
        return sum(self.power[f] for f in self.top(k)) / rest


def frequency_power(weights: Float[Tensor, "p d"]) -> Spectrum:
    """Power per frequency of ``weights`` along its first (residue) axis."""
    w = weights.detach().double().cpu()
    p = w.shape[0]
    spec = torch.fft.fft(w, dim=0).abs().pow(2).sum(1)  # [p]
    power = [float(spec[0])]
    for f in range(1, p // 2 + 1):
        twin = p - f
        power.append(float(spec[f] + (spec[twin] if twin != f else 0.0)))
    return Spectrum(power)


def fourier_basis(p: int, frequencies: list[int]) -> Float[Tensor, "p two_k"]:
    """Orthonormal columns ``cos(2 pi f x / p), sin(2 pi f x / p)`` for each frequency."""
    x = torch.arange(p, dtype=torch.float64)
    cols = []
    for f in frequencies:
        angle = 2 * math.pi * f * x / p
        for col in (torch.cos(angle), torch.sin(angle)):
            norm = col.norm()
            if norm > 1e-9:  # sin of the Nyquist frequency (even p) is identically zero
                cols.append(col / norm)
    return torch.stack(cols, dim=1) if cols else torch.zeros(p, 0, dtype=torch.float64)


def project_on_frequency(weights: Float[Tensor, "p d"], f: int) -> Float[Tensor, "p 2"]:
    """Coordinates of each residue's row of ``weights`` in the plane of frequency ``f``.

    The plane is spanned by the two directions of ``d``-space that carry frequency ``f``
    (the cos and sin Fourier coefficients); a grokked embedding puts the residues on a circle
    in this plane, in the order ``x * f mod p``.
    """
    w = weights.detach().double().cpu()
    p = w.shape[0]
    basis = fourier_basis(p, [f])  # [p 2]
    directions = basis.T @ w  # [2 d]: the cos and sin components of every column
    q, _ = torch.linalg.qr(directions.T)  # [d 2] orthonormal plane
    return (w - w.mean(0)) @ q


def planted_embedding(
    p: int, frequencies: list[int], d: int, noise: float = 0.0, seed: int = 0
) -> Float[Tensor, "p d"]:
    """A synthetic embedding made of the given frequencies (random mixing) plus noise (tests)."""
    g = torch.Generator().manual_seed(seed)
    basis = fourier_basis(p, frequencies)
    mix = torch.randn(basis.shape[1], d, generator=g, dtype=torch.float64)
    return basis @ mix + noise * torch.randn(p, d, generator=g, dtype=torch.float64)


def key_frequencies(spectrum: Spectrum, k: int | None = None, min_share: float = 0.05) -> list[int]:
    """Key frequencies: the top ``k``, or (``k=None``) every frequency above ``min_share``."""
    if k is not None:
        return sorted(spectrum.top(k))
    rest = sum(spectrum.power[1:]) or 1.0
    return [f for f in range(1, len(spectrum.power)) if spectrum.power[f] / rest >= min_share]


__all__ = [
    "Spectrum",
    "fourier_basis",
    "frequency_power",
    "key_frequencies",
    "planted_embedding",
    "project_on_frequency",
]
