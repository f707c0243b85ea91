"""Contextual position encoding, CoPE (Golovneva et al. 2024, arXiv 2405.18719), as the paper's
public code computes it (facebookresearch/RAM, ``projects/cope``: ``src/cope/context_position.py``
``ContextPosSelfAttn``, and ``src/models/transformer.py`` around it).

Per head, query i gates every key j <= i with ``g_ij = sigmoid(q_i . k_j / sqrt(d_head))``;
the position of key j seen from query i is the number of gated keys between them,
``p_ij = sum_{t=j..i} g_it`` (a reversed cumulative sum), clamped to ``p_max``.  Learned
embeddings ``e[p]`` (zero-initialised) exist for integer ``p`` only; a fractional position
interpolates between ``floor(p)`` and ``ceil(p)``.  The attention logit gains
``q_i . e[p_ij] / sqrt(d_head)`` (the public code adds it before the 1/sqrt(d) scaling).  The
table is one per layer, shared by the layer's heads (the public code's ``pos_emb``
[1 d_head npos], broadcast over batch x heads); gates and positions are per head.

Efficient form (never an L x L x d tensor): ``z = q . E`` at the ``p_max + 1`` integer
positions [batch head_index query_pos n_positions], then gather ``z`` at floor / ceil of
``p_ij`` and mix with the fractional part.  Without hooks on the gates or positions, one fused
function does all of it in chunks of query rows that stay in cache (``_FusedBias``).

Hook points on the attention module, both [batch head_index query_pos key_pos]:
``hook_cope_gates`` (zero for future keys) and ``hook_cope_pos`` (the clamped positions).
Forcing the gates to 1 through the hook gives ``p_ij = i - j + 1``: relative positions.

Options (``ModelConfig.positional_options``); the public code's flag in parentheses:
    p_max       largest position (default ``n_ctx``); ``npos = p_max + 1`` embeddings
    npos        alternative spelling of ``p_max + 1`` (``--cope-npos``)
    layers      layers that use CoPE (default all; interp's own option, no relative positions
                elsewhere unless ``rel``)
    every       CoPE on every ``every``-th layer only, layers ``every - 1, 2 every - 1, ...``
                (``--cope-layers K``, which the public code allows only with ``--pos-emb
                cope+rel``: every layer also gets relative positions, see ``rel``)
    rel         the public code's learned relative positions (``rel``, ``positional/rel.py``)
                added on every layer, CoPE layers included (``--pos-emb cope+rel``); default
                true when ``every > 1``, else false.  ``every=K, rel=false`` is interp's earlier
                variant: the layers without CoPE have no positional information at all
    rel_npos, rel_extend  that table's ``npos`` (default ``n_ctx``) and ``extend`` (far keys use
                the last vector) (``--rel-pos-max``, ``--rel-pos-extend``)
    sep_gate_key  the gates read their own keys ``x W_G + b_G``, a separate projection of the
                attention layer's input (``--cope-sep-key``), instead of the attention keys; the
                attention logits then come from ``q . k`` as usual
    gate_key_bias that projection has a bias ``b_G``, as the public code's ``nn.Linear``
                (default true; trained when the model trains its biases, ``use_bias``); false
                is interp's earlier bias-free ``x W_G``
    val_gates   the gates read the attention values, ``sigmoid(q_i . v_j / sqrt(d_head))``
                (``--cope-val-gates``); the logits stay ``q . k``.  Exclusive with sep_gate_key
                (the public code then ignores its separate keys)
    nodiv       the position term is not divided by ``sqrt(d_head)``: ``q_i . e[p_ij]``
                (``--cope-nodiv``); the gates and ``q . k`` still are
    shared      one table for all CoPE layers, the first CoPE layer's (``--cope-shared``)
    per_head    one table per head (interp's earlier default; not in the public code)
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from torch import Tensor

from interp.errors import ConfigError
from interp.models.positional.base import AttentionPosition, PositionalEncoding, register_positional
from interp.models.positional.cope_attention import CopeAttention  # noqa: F401  (its old home)
from interp.models.positional.cope_kernels import causal_mask  # noqa: F401  (its old home)
from interp.models.positional.rel import (
    RelativeAttention,
    RelativeTable,
    relative_sizes,
)


def _int_or_none(name: str, value: object, least: int) -> None:
    if value is None:
        return
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < least:
        raise ValueError(f"{name} must be >= {least}, got {value}")


@dataclass(frozen=True)
class CopeOptions:
    p_max: int | None = None
    npos: int | None = None
    layers: tuple[int, ...] | None = None
    every: int | None = None
    rel: bool | None = None
    rel_npos: int | None = None
    rel_extend: bool = False
    sep_gate_key: bool = False
    gate_key_bias: bool = True
    val_gates: bool = False
    nodiv: bool = False
    shared: bool = False
    per_head: bool = False

    def __post_init__(self) -> None:
        for name in ("p_max", "npos"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
                raise ValueError(f"{name} must be an integer, got {value!r}")
        if self.p_max is not None and self.p_max < 1:
            raise ValueError(f"p_max must be >= 1, got {self.p_max}")
        if self.every is not None and (
            not isinstance(self.every, int) or isinstance(self.every, bool) or self.every < 1
        ):
            raise ValueError(f"every must be an integer >= 1, got {self.every!r}")
        if self.every is not None and self.layers is not None:
            raise ValueError("give either layers or every, not both")
        if self.npos is not None and self.npos < 2:
            raise ValueError(f"npos must be >= 2 (p_max >= 1), got {self.npos}")
        if self.p_max is not None and self.npos is not None and self.npos != self.p_max + 1:
            raise ValueError(f"npos ({self.npos}) must equal p_max + 1 ({self.p_max + 1})")
        _int_or_none("rel_npos", self.rel_npos, 1)
        if self.val_gates and self.sep_gate_key:
            raise ValueError("val_gates and sep_gate_key both choose what the gates read; give one")
        if self.layers is not None:
            layers = (self.layers,) if isinstance(self.layers, int) else tuple(self.layers)
            if not all(isinstance(x, int) and not isinstance(x, bool) for x in layers):
                raise ValueError(f"layers must be a list of layer indices, got {self.layers!r}")
            object.__setattr__(self, "layers", layers)

    @property
    def with_rel(self) -> bool:
        """Relative positions on every layer: ``rel``, by default on with ``every > 1``."""
        if self.rel is not None:
            return self.rel
        return self.every is not None and self.every > 1


@register_positional
class Cope(PositionalEncoding):
    name = "cope"
    Options = CopeOptions
    relative = True
    position_maps = True
    redefined = True  # one table per head before it followed the public code

    def __init__(self, cfg) -> None:  # noqa: ANN001 - ModelConfig (import cycle)
        super().__init__(cfg)
        layers = self.options.layers
        if layers is not None:
            bad = [x for x in layers if not 0 <= x < cfg.n_layers]
            if bad:
                raise ConfigError(
                    f"positional encoding 'cope': layers {bad} out of range for "
                    f"{cfg.n_layers} layer(s)"
                )

        if not any(self.uses_layer(layer) for layer in range(cfg.n_layers)):
            raise ConfigError(
                f"positional encoding 'cope': every={self.options.every} leaves none of the "
                f"{cfg.n_layers} layer(s) with CoPE"
            )
        # built by attention() layer by layer: the first CoPE layer (its table is the shared
        # one) and the relative table (layer 0 holds it)
        self._first: CopeAttention | None = None
        self._rel: RelativeTable | None = None

    @property
    def p_max(self) -> int:
        if self.options.p_max is not None:
            return self.options.p_max
        if self.options.npos is not None:
            return self.options.npos - 1
        return self.cfg.n_ctx

    @property
    def rel_npos(self) -> int:
        o = self.options
        return o.rel_npos if o.rel_npos is not None else self.cfg.n_ctx

    def uses_layer(self, layer: int) -> bool:
        if self.options.layers is not None:
            return layer in self.options.layers
        if self.options.every is not None:
            return (layer + 1) % self.options.every == 0
        return True

    def label(self) -> str:
        """``cope`` or ``cope+rel``, with the options that differ from the public code's
        defaults; interp's own variants say so."""
        o = self.options
        notes = []
        if o.every is not None and o.every > 1:
            notes.append(f"CoPE every {o.every} layers")
        if o.layers is not None:
            notes.append(f"CoPE on layers {', '.join(map(str, o.layers))}")
        if o.p_max is not None or o.npos is not None:
            notes.append(f"npos {self.p_max + 1}")
        if o.sep_gate_key:
            notes.append("separate gate keys" + ("" if o.gate_key_bias else " without bias"))
        if o.val_gates:
            notes.append("value gates")
        if o.nodiv:
            notes.append("position logits not divided by sqrt(d)")
        if o.shared:
            notes.append("one table for all layers")
        if o.with_rel and o.rel_npos is not None:
            notes.append(f"rel npos {o.rel_npos}")
        if o.with_rel and o.rel_extend:
            notes.append("rel far keys use the last vector")
        variant = []
        if o.per_head:
            variant.append("one table per head")
        if o.sep_gate_key and not o.gate_key_bias:
            variant.append("gate keys without bias")
        if o.every is not None and o.every > 1 and not o.with_rel:
            variant.append("no positions on the other layers")
        if variant:
            notes.append("interp variant: " + ", ".join(variant))
        base = "cope+rel" if o.with_rel else "cope"
        return base + (f" ({'; '.join(notes)})" if notes else "")

    def sizes(self, batch_size: int, n_ctx: int) -> tuple[int, int]:
        """Per CoPE layer: the position embeddings ``[1 or head_index, d_head, n_positions]``
        (once with ``shared``; and the gate keys), ``z = q . E`` ``[batch head_index query_pos
        n_positions]`` and the gates, positions and their gradients ``[batch head_index
        query_pos key_pos]`` (float32); the relative table and its per-layer tensors."""
        cfg, o = self.cfg, self.options
        heads, d_head, npos = cfg.n_heads, cfg.head_dim, self.p_max + 1
        layers = sum(self.uses_layer(layer) for layer in range(cfg.n_layers))
        tables = (1 if o.shared else layers) * (heads if o.per_head else 1) * d_head * npos
        gates = heads * d_head * (cfg.d_model + 1) if o.sep_gate_key else 0
        params = tables + layers * gates
        acts = layers * 4 * batch_size * heads * n_ctx * (2 * npos + 4 * n_ctx)
        if o.with_rel:
            rel = relative_sizes(batch_size, heads, n_ctx, d_head, self.rel_npos, cfg.n_layers)
            params, acts = params + rel[0], acts + rel[1]
        return params, acts

    def earlier_variant(
        self, given: Mapping[str, Tensor], expected: Mapping[str, tuple[int, ...]]
    ) -> tuple[dict[str, Any], list[str]]:
        """Weights ``given`` saved by interp before its CoPE followed the public code, against
        this config's ``expected`` shapes: the options that build them as the variant they are
        and why (empty when they are something else).  With one head, per-head and shared
        tables have one shape and compute the same logits: nothing to change."""
        o, fixes, reasons = self.options, {}, []
        heads = self.cfg.n_heads
        for name, tensor in given.items():
            want = expected.get(name)
            if (
                name.endswith(".position.pos_emb")
                and want is not None
                and tuple(tensor.shape) != tuple(want)
                and tensor.ndim == 3
                and tensor.shape[0] == heads
                and want[0] == 1
                and tuple(tensor.shape[1:]) == tuple(want[1:])
            ):
                reasons.append("one position table per head")
                fixes["per_head"] = True
                break

        def missing(part: str) -> bool:
            return any(part in n for n in expected) and not any(part in n for n in given)

        if o.sep_gate_key and o.gate_key_bias and missing(".position.b_G"):
            reasons.append("separate gate keys without a bias")
            fixes["gate_key_bias"] = False
        if o.with_rel and missing(".position.rel."):
            every = o.every if o.every is not None else 1
            reasons.append(
                f"no positions on the layers without CoPE (every={every})"
                if every > 1
                else "no relative positions"
            )
            fixes["rel"] = False
        return fixes, reasons

    def explain_weights(
        self, given: Mapping[str, Tensor], expected: Mapping[str, tuple[int, ...]]
    ) -> str | None:
        """Why weights saved by an earlier interp do not fit this config, and the options that
        load them as the variant they are (None when they are something else)."""
        fixes, reasons = self.earlier_variant(given, expected)
        if not fixes:
            return None
        add = ", ".join(f'"{k}": {json.dumps(v)}' for k, v in fixes.items())
        return (
            f"CoPE weights of interp's earlier variant ({'; '.join(reasons)}), not the public "
            f"code's definition that is now the default; to train on with them as that variant "
            f"add {add} to model.positional_options in the run's config.json"
        )

    def attention(self, layer: int) -> AttentionPosition:
        """Layer ``layer``'s part; called once per layer, in order (the first call builds the
        tables later layers share)."""
        cfg, o = self.cfg, self.options
        rel, rel_owner = None, False
        if o.with_rel:
            rel_owner = self._rel is None
            if rel_owner:
                self._rel = RelativeTable(cfg.head_dim, self.rel_npos, o.rel_extend)
            rel = self._rel
        if not self.uses_layer(layer):
            return RelativeAttention(rel, rel_owner) if rel is not None else AttentionPosition()
        part = CopeAttention(
            cfg.n_heads,
            cfg.head_dim,
            self.p_max,
            o.sep_gate_key,
            cfg.d_model,
            per_head=o.per_head,
            gate_key_bias=o.gate_key_bias,
            train_bias=cfg.use_bias,
            val_gates=o.val_gates,
            nodiv=o.nodiv,
            table_of=self._first if o.shared else None,
            rel=rel,
            rel_owner=rel_owner,
        )
        if self._first is None:
            self._first = part
        return part
