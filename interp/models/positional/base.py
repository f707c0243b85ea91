"""The positional-encoding interface.

Position can enter a transformer in three places, and an encoding may use any of them:

* ``embedding()``: a module adding a vector per position to the residual stream (absolute,
  sinusoidal); its output goes through ``hook_pos_embed``;
* ``AttentionPosition.rotate_qk``: a transform of queries and keys (RoPE);
* ``AttentionPosition.score_bias``: a term added to the attention logits (ALiBi, CoPE).

Each encoding lives in its own file and registers itself by name; the model never switches on
the name.  Options come from ``ModelConfig.positional_options`` and are validated by the
encoding's own frozen ``Options`` dataclass.

Dimensions: batch, pos (= query_pos), key_pos, head_index, d_head, d_model.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from jaxtyping import Float
from torch import Tensor, nn

from interp.errors import ConfigError
from interp.options import parse_options

if TYPE_CHECKING:
    from interp.config import ModelConfig


@dataclass(frozen=True)
class NoOptions:
    pass


class AttentionPosition(nn.Module):
    """Per-attention-layer part of a positional encoding. The default is the identity.

    ``hook_names`` lists hook points the part needs; the attention layer owns them (so they get
    TransformerLens names like ``blocks.0.attn.hook_rot_q``) and passes them in ``self.hooks``.
    """

    hook_names: ClassVar[tuple[str, ...]] = ()

    def __init__(self) -> None:
        super().__init__()
        self.hooks: dict[str, nn.Module] = {}

    @property
    def no_decay(self) -> tuple[str, ...]:
        """Every parameter of a positional part (CoPE's position embeddings and gate keys, say):
        AdamW does not shrink position information towards zero (interp.train.optim)."""
        return tuple(self._parameters)

    def rotate_qk(
        self,
        q: Float[Tensor, "batch pos head_index d_head"],
        k: Float[Tensor, "batch pos head_index d_head"],
        offset: int = 0,
    ) -> tuple[
        Float[Tensor, "batch pos head_index d_head"], Float[Tensor, "batch pos head_index d_head"]
    ]:
        return q, k

    def score_bias(
        self,
        q: Float[Tensor, "batch query_pos head_index d_head"],
        k: Float[Tensor, "batch key_pos head_index d_head"],
        scores: Float[Tensor, "batch head_index query_pos key_pos"],
    ) -> Float[Tensor, "batch head_index query_pos key_pos"]:
        """Return the (pre-mask) attention logits with the positional term added."""
        return scores

    # The attention layer calls the two methods below; their defaults defer to ``score_bias``.
    # A part that also reads the layer input ``x`` (CoPE's separate gate-key projection)
    # overrides them; the attention never asks which encoding it holds.

    def score_bias_with_input(
        self,
        x: Float[Tensor, "batch key_pos d_model"],
        q: Float[Tensor, "batch query_pos head_index d_head"],
        k: Float[Tensor, "batch key_pos head_index d_head"],
        scores: Float[Tensor, "batch head_index query_pos key_pos"],
        v: Float[Tensor, "batch key_pos head_index d_head"] | None = None,
    ) -> Float[Tensor, "batch head_index query_pos key_pos"]:
        """``score_bias`` given the attention layer's (normalised) input ``x`` and its values
        ``v`` as well (CoPE's value gates read them)."""
        return self.score_bias(q, k, scores)

    def score_bias_myopic(
        self,
        x: Float[Tensor, "batch key_pos d_model"],
        q: Float[Tensor, "batch query_pos head_index d_head"],
        k_past: Float[Tensor, "batch key_pos head_index d_head"],
        k_live: Float[Tensor, "batch key_pos head_index d_head"],
        scores: Float[Tensor, "batch head_index query_pos key_pos"],
        v_past: Float[Tensor, "batch key_pos head_index d_head"] | None = None,
        v_live: Float[Tensor, "batch key_pos head_index d_head"] | None = None,
    ) -> Float[Tensor, "batch head_index query_pos key_pos"]:
        """Myopic training (``interp.models.attention``): ``scores`` are the myopic logits (live
        diagonal), ``k_past`` / ``v_past`` the keys and values of the detached input, ``k_live``
        / ``v_live`` the live ones.  The default is exact for a bias that ignores ``k`` or reads
        only ``scores``; a part that recomputes several keys per entry must keep the diagonal
        entry live itself."""
        return self.score_bias(q, k_past, scores)


class PositionalEncoding:
    """A registry entry: builds the embedding module and the per-layer attention parts."""

    name: ClassVar[str]
    Options: ClassVar[type] = NoOptions
    #: whether positions fade with distance (collapse analyses read this to warn the user)
    relative: ClassVar[bool] = False
    #: whether its attention parts have a position-only term (``position_only_logits``) that
    #: ``pe-bench`` draws as position-only attention maps (CoPE)
    position_maps: ClassVar[bool] = False
    #: whether an earlier interp defined it differently (its weights load as
    #: ``earlier_variant``): a ``pe-bench`` run that recorded no definitions is not resumed
    redefined: ClassVar[bool] = False

    def __init__(self, cfg: ModelConfig) -> None:
        self.cfg = cfg
        self.options = parse_options(
            self.Options, cfg.positional_options, f"positional encoding {self.name!r}"
        )

    def embedding(self) -> nn.Module | None:
        """Module mapping positions [pos] -> [pos, d_model], or None."""
        return None

    def attention(self, layer: int) -> AttentionPosition:
        return AttentionPosition()

    def label(self) -> str:
        """The encoding as results and reports name it: its name, plus the options that make
        it a variant (CoPE: those that differ from the public code's defaults)."""
        return self.name

    def earlier_variant(
        self, given: Mapping[str, Tensor], expected: Mapping[str, tuple[int, ...]]
    ) -> tuple[dict[str, Any], list[str]]:
        """When saved weights ``given`` are those of an earlier definition of this encoding
        (CoPE's per-head tables): the ``positional_options`` that build them as that variant,
        and why; ``({}, [])`` otherwise.  A run's model is loaded with them
        (:func:`interp.models.loading.load_run_model`), labelled as the variant it is."""
        return {}, []

    def explain_weights(
        self, given: Mapping[str, Tensor], expected: Mapping[str, tuple[int, ...]]
    ) -> str | None:
        """Why saved weights ``given`` do not fit this config's ``expected`` shapes, when this
        encoding knows (weights of an earlier definition of it, and the options that load them
        as that variant); None otherwise (the caller names the first mismatch)."""
        return None

    def sizes(self, batch_size: int, n_ctx: int) -> tuple[int, int]:
        """``(parameters, activation bytes)`` the encoding adds beyond what
        :func:`interp.resources.transformer_params` counts (a learned ``n_ctx x d_model`` table
        is counted there), for the memory preflight: a rough upper bound."""
        return 0, 0


_REGISTRY: dict[str, type[PositionalEncoding]] = {}


def register_positional(cls: type[PositionalEncoding]) -> type[PositionalEncoding]:
    if cls.name in _REGISTRY:
        raise ValueError(f"positional encoding {cls.name!r} is registered twice")
    _REGISTRY[cls.name] = cls
    return cls


def positional_names() -> tuple[str, ...]:
    return tuple(sorted(_REGISTRY))


def build_positional(cfg: ModelConfig) -> PositionalEncoding:
    try:
        cls = _REGISTRY[cfg.positional]
    except KeyError:
        raise ConfigError(
            f"unknown positional encoding {cfg.positional!r}; choose from {', '.join(positional_names())}"
        ) from None
    return cls(cfg)
