"""Learned relative positions as the CoPE paper's public code has them (RAM ``--pos-emb rel``).

facebookresearch/RAM, ``projects/cope/src/models/relative_position.py`` (``RelPosEmb``) and
``simple_transformer.py`` (one instance handed to every layer): a single table of vectors
``r[d]``, one per distance ``d = i - j`` in ``[0, npos)``, shared by every layer and every
head, initialised ``N(0, 1 / d_head)``.  Query i gains ``q_i . r[i - j] / sqrt(d_head)`` on its
logit for key j (added to ``q . k`` before the ``1 / sqrt(d)`` scaling).  A query-dependent
relative embedding (Shaw et al. 2018 without the value term; Transformer-XL without its global
biases), not a per-distance scalar bias (T5) and not ALiBi.

Options (``ModelConfig.positional_options``):
    npos    distances with their own vector (default ``n_ctx``, the public code's block size;
            its ``--rel-pos-max``)
    extend  keys further than ``npos - 1`` use the last vector (``--rel-pos-extend``); without
            it they get no positional term (the public code fills them with zeros)

Computed as ``z = q . R`` at the ``npos`` distances [batch head_index query_pos npos] and one
gather at ``i - j`` (the public code skews ``z`` with a pad and reshape: the same values).

The table lives in layer 0's attention part (``blocks.0.attn.position.rel.emb``, [d_head npos]);
the other layers read it through a hidden reference (as ``Unembed`` reads tied embeddings), so
the state dict, the optimizer and ``torch.func.functional_call`` see one tensor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor, nn

from interp.models.positional.base import AttentionPosition, PositionalEncoding, register_positional


@dataclass(frozen=True)
class RelOptions:
    npos: int | None = None
    extend: bool = False

    def __post_init__(self) -> None:
        if self.npos is not None and (
            not isinstance(self.npos, int) or isinstance(self.npos, bool) or self.npos < 1
        ):
            raise ValueError(f"npos must be an integer >= 1, got {self.npos!r}")


class RelativeTable(nn.Module):
    """``r[d]`` for distances ``d`` in ``[0, npos)``, as ``emb`` [d_head npos]."""

    no_decay = ("emb",)  # a position table is not shrunk towards zero (interp.train.optim)

    def __init__(self, d_head: int, npos: int, extend: bool) -> None:
        super().__init__()
        self.npos, self.extend = npos, extend
        self.scale = 1.0 / math.sqrt(d_head)
        # not named W_*: the model's init zeroes it, then calls init_from (RAM's N(0, 1/d))
        self.emb = nn.Parameter(torch.zeros(d_head, npos))

    @torch.no_grad()
    def init_from(self, generator: torch.Generator) -> None:
        """The public code's initialisation: ``randn * d_head ** -0.5``."""
        d_head = self.emb.shape[0]
        self.emb.copy_(torch.randn(self.emb.shape, generator=generator) * d_head**-0.5)

    def index(self, n_q: int, n_k: int, device: torch.device) -> Tensor:
        """[query_pos key_pos] column of ``z`` padded with one zero column: ``i - j`` where it
        has a vector, ``npos`` (the zero) for future keys and, without ``extend``, for keys
        too far away; with ``extend`` far keys read ``npos - 1``."""
        q_pos = torch.arange(n_k - n_q, n_k, device=device)
        distance = q_pos[:, None] - torch.arange(n_k, device=device)[None, :]
        far = self.npos - 1 if self.extend else self.npos
        index = torch.where(distance >= self.npos, far, distance)
        return torch.where(distance < 0, self.npos, index)

    def logits(
        self, q: Float[Tensor, "batch query_pos head_index d_head"], n_k: int
    ) -> Float[Tensor, "batch head_index query_pos key_pos"]:
        """``q_i . r[i - j] / sqrt(d_head)`` (zero for future keys)."""
        batch, n_q, n_heads, _ = q.shape
        # [batch head_index query_pos npos + 1]: the last column is the zero of far/future keys
        z = F.pad(torch.matmul(q.transpose(1, 2), self.emb.to(q.dtype)), (0, 1))
        index = self.index(n_q, n_k, q.device).expand(batch, n_heads, n_q, n_k)
        return z.gather(-1, index) * self.scale


class RelativeHolder:
    """Mixin for attention parts that read the relative table: the layer that owns it
    registers it as ``rel`` (in the state dict); the others keep a hidden reference."""

    def hold_relative(self, table: RelativeTable | None, owner: bool) -> None:
        if table is None:
            return
        if owner:
            self.rel = table
        else:
            self._rel_of = [table]  # a list hides it from .modules() and the state dict

    @property
    def rel_table(self) -> RelativeTable | None:
        modules = self.__dict__.get("_modules", {})
        if "rel" in modules:
            return modules["rel"]
        held = self.__dict__.get("_rel_of")
        return held[0] if held else None


class RelativeAttention(RelativeHolder, AttentionPosition):
    """One layer's part: adds ``q_i . r[i - j] / sqrt(d)`` to the logits."""

    def __init__(self, table: RelativeTable, owner: bool) -> None:
        super().__init__()
        self.hold_relative(table, owner)

    def score_bias(
        self,
        q: Float[Tensor, "batch query_pos head_index d_head"],
        k: Float[Tensor, "batch key_pos head_index d_head"],
        scores: Float[Tensor, "batch head_index query_pos key_pos"],
    ) -> Float[Tensor, "batch head_index query_pos key_pos"]:
        table = self.rel_table
        assert table is not None
        return scores + table.logits(q, k.shape[1])


def relative_sizes(
    batch_size: int, n_heads: int, n_ctx: int, d_head: int, npos: int, layers: int
) -> tuple[int, int]:
    """One table; per layer ``z`` [batch head query npos + 1] and the gathered logits and their
    gradients [batch head query key] (float32, with the int64 index)."""
    acts = 4 * batch_size * n_heads * n_ctx * (2 * (npos + 1) + 4 * n_ctx)
    return d_head * npos, layers * acts


@register_positional
class Relative(PositionalEncoding):
    name = "rel"
    Options = RelOptions
    relative = True

    def __init__(self, cfg) -> None:  # noqa: ANN001 - ModelConfig (import cycle)
        super().__init__(cfg)
        self._table: RelativeTable | None = None

    @property
    def npos(self) -> int:
        return self.options.npos if self.options.npos is not None else self.cfg.n_ctx

    def label(self) -> str:
        extra = [f"npos {self.options.npos}"] if self.options.npos is not None else []
        extra += ["far keys use the last vector"] if self.options.extend else []
        return "rel" + (f" ({', '.join(extra)})" if extra else "")

    def sizes(self, batch_size: int, n_ctx: int) -> tuple[int, int]:
        cfg = self.cfg
        return relative_sizes(batch_size, cfg.n_heads, n_ctx, cfg.head_dim, self.npos, cfg.n_layers)

    def attention(self, layer: int) -> AttentionPosition:
        owner = self._table is None
        if owner:
            self._table = RelativeTable(self.cfg.head_dim, self.npos, self.options.extend)
        return RelativeAttention(self._table, owner)
