"""The grokking models.  Each maps every example at once to class logits ``[example class]``.

Dimension names: ``p`` residues (classes), ``d_embed`` embedding width, ``width`` hidden
neurons, ``example`` rows of the full batch.

* :class:`PairMLP` (PAIR): ``logits = ReLU((E_a + E_b) W_in) W_out E^T`` with one tied ``E``.
* :class:`FixedFourierMLP`: the same with ``E`` fixed to ``(cos, sin)(2 pi f x / p)``; five
  neurons suffice (:meth:`FixedFourierMLP.hand_set`).
* :func:`nanda_transformer`: 1 layer, d_model 128, 4 heads, d_mlp 512, ReLU, no LayerNorm,
  untied unembedding, reading ``a b =`` and scored at the last position.
* :class:`ParityMLP`: ``Linear(n_bits, width) -> ReLU -> Linear(width, 2)``.
"""

from __future__ import annotations

import math

import torch
from jaxtyping import Float, Int
from torch import Tensor, nn

from interp.config import ModelConfig
from interp.grok.variants import GrokVariant, grok_variant
from interp.models.transformer import HookedTransformer
from interp.train.stacked import StackedForward


def _normal(shape: tuple[int, ...], std: float, g: torch.Generator) -> nn.Parameter:
    return nn.Parameter(torch.randn(shape, generator=g) * std)


# scipy.stats.truncnorm.std(a=-2, b=2): haiku's VarianceScaling divides by it, so its samples
# have the asked standard deviation after truncation
TRUNCATED_STD = 0.87962566103423978


def truncated_normal(shape: tuple[int, ...], scale: float, g: torch.Generator) -> nn.Parameter:
    """haiku's ``TruncatedNormal(stddev=scale)``: N(0, scale^2) cut at +-2 scale."""
    t = torch.empty(shape)
    nn.init.trunc_normal_(t, 0.0, scale, -2 * scale, 2 * scale, generator=g)
    return nn.Parameter(t)


def _pair_init(p: int, d_embed: int, width: int, g: torch.Generator) -> list[nn.Parameter]:
    """PAIR's notebook: ``embed`` ``VarianceScaling(2)`` (fan_in = p rows: truncated normal of
    std sqrt(2 / p) after truncation); ``hk.Linear`` (no bias) weights truncated normal of scale
    1/sqrt(fan_in): ``hidden`` d_embed -> width, ``out`` width -> d_embed."""
    return [
        truncated_normal((p, d_embed), math.sqrt(2.0 / p) / TRUNCATED_STD, g),
        truncated_normal((d_embed, width), 1.0 / math.sqrt(d_embed), g),
        truncated_normal((width, d_embed), 1.0 / math.sqrt(width), g),
    ]


def _normal_init(p: int, d_embed: int, width: int, g: torch.Generator) -> list[nn.Parameter]:
    """interp's earlier MLP init: N(0, 1/fan_in) (the embedding 1/d_embed)."""
    return [
        _normal((p, d_embed), 1.0 / math.sqrt(d_embed), g),
        _normal((d_embed, width), 1.0 / math.sqrt(d_embed), g),
        _normal((width, d_embed), 1.0 / math.sqrt(width), g),
    ]


MLP_INITS = {"pair": _pair_init, "normal": _normal_init}  # GrokVariant.init -> (E, W_in, W_out)


class PairMLP(nn.Module):
    """PAIR's modular-addition MLP with a tied embedding ``E [p d_embed]``."""

    no_decay = ()  # PAIR decays every parameter, the embedding included (interp.train.optim)

    def __init__(
        self, p: int, width: int = 24, d_embed: int = 32, seed: int = 0, init: str = "normal"
    ) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.p = p
        self.E, self.W_in, self.W_out = MLP_INITS[init](p, d_embed, width, g)

    @property
    def embedding(self) -> Float[Tensor, "p d_embed"]:
        return self.E

    def hidden(self, pairs: Int[Tensor, "example 2"]) -> Float[Tensor, "example width"]:
        return torch.relu((self.embedding[pairs[:, 0]] + self.embedding[pairs[:, 1]]) @ self.W_in)

    def forward(self, pairs: Int[Tensor, "example 2"]) -> Float[Tensor, "example p"]:
        return self.hidden(pairs) @ self.W_out @ self.embedding.T

    def neuron_weights(self) -> Float[Tensor, "p width"]:
        """Each neuron's input weight as a function of one residue (``E @ W_in``)."""
        return self.embedding @ self.W_in

    def stacked_forward(self) -> StackedForward:
        """The forward of many stacked PairMLPs at once (:mod:`interp.train.stacked`)."""
        return StackedPairMLP(self.p)


class StackedPairMLP(StackedForward):
    """:meth:`PairMLP.forward` for stacked ``E [model p d_embed]``, ``W_in``, ``W_out``,
    re-associated (the same function): ``(E_a + E_b) W_in`` is ``(E W_in)_a + (E W_in)_b`` (two
    row gathers from the stacked table, no one-hot matmul) and ``h W_out E^T`` is
    ``h (W_out E^T)``.  ``bench/grok_speed.py``: ~1.7x faster than vmap."""

    def __init__(self, p: int) -> None:
        self.p = p

    def prepare(self, pairs: Int[Tensor, "model example 2"]) -> Int[Tensor, "2 rows"]:
        """Flat row indices into the ``[model*p width]`` table (row ``m p + a``)."""
        offset = (torch.arange(pairs.shape[0], device=pairs.device) * self.p)[:, None]
        return torch.stack([(pairs[..., col] + offset).reshape(-1) for col in (0, 1)])

    def __call__(
        self, params: dict[str, Tensor], inputs: Tensor, positions: Tensor | None = None
    ) -> Float[Tensor, "model example p"]:
        E, W_in, W_out = params["E"], params["W_in"], params["W_out"]  # [model p d_embed] ...
        n_models, p, _ = E.shape
        table = torch.bmm(E, W_in).reshape(n_models * p, -1)  # [model*p width]
        pre = table.index_select(0, inputs[0]) + table.index_select(0, inputs[1])
        hidden = torch.relu(pre).view(n_models, -1, table.shape[1])  # [model example width]
        return torch.bmm(hidden, torch.bmm(W_out, E.transpose(1, 2)))  # [model example p]


class FixedFourierMLP(PairMLP):
    """:class:`PairMLP` whose embedding is fixed to ``(cos, sin)(2 pi f x / p)`` (a buffer)."""

    def __init__(self, p: int, width: int = 5, frequency: int = 1, seed: int = 0) -> None:
        nn.Module.__init__(self)
        g = torch.Generator().manual_seed(seed)
        self.p = p
        angle = 2 * math.pi * frequency * torch.arange(p) / p
        self.register_buffer("E_fixed", torch.stack([torch.cos(angle), torch.sin(angle)], 1))
        self.W_in = _normal((2, width), 1.0 / math.sqrt(2), g)
        self.W_out = _normal((width, 2), 1.0 / math.sqrt(width), g)

    stacked_forward = None  # the fixed embedding is a buffer: stacked models train through vmap

    @property
    def embedding(self) -> Float[Tensor, "p 2"]:
        return self.E_fixed

    @classmethod
    def hand_set(cls, p: int, frequency: int = 1, width: int = 5) -> FixedFourierMLP:
        """Neurons at evenly spaced angles ``phi_i`` read ``E_a + E_b`` (angle ``theta / 2``) and
        write at angle ``2 phi_i``: the second harmonic of ReLU doubles the angle to ``theta``,
        the angle of ``E_{a+b}``, so the tied read-out peaks at ``c = a + b mod p``."""
        model = cls(p, width=width, frequency=frequency)
        phi = 2 * math.pi * torch.arange(width) / width
        with torch.no_grad():
            model.W_in.copy_(torch.stack([torch.cos(phi), torch.sin(phi)], 0))
            model.W_out.copy_(torch.stack([torch.cos(2 * phi), torch.sin(2 * phi)], 1))
        return model


class ParityMLP(nn.Module):
    """One hidden ReLU layer over the bits, two output classes."""

    no_decay = ()  # every parameter is decayed, the biases included, as PAIR does

    def __init__(self, n_bits: int, width: int = 64, seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.W_in = _normal((n_bits, width), 1.0 / math.sqrt(n_bits), g)
        self.b_in = nn.Parameter(torch.zeros(width))
        self.W_out = _normal((width, 2), 1.0 / math.sqrt(width), g)
        self.b_out = nn.Parameter(torch.zeros(2))

    def forward(self, bits: Float[Tensor, "example n_bits"]) -> Float[Tensor, "example 2"]:
        return torch.relu(bits @ self.W_in + self.b_in) @ self.W_out + self.b_out

    def stacked_forward(self) -> StackedForward:
        """The forward of many stacked ParityMLPs at once (:mod:`interp.train.stacked`)."""
        return StackedParityMLP()


class StackedParityMLP(StackedForward):
    """:meth:`ParityMLP.forward` for stacked parameters as two ``baddbmm`` (bias, matmul fused).
    ``bench/grok_speed.py --task sparse-parity``: faster than vmap."""

    def __call__(
        self, params: dict[str, Tensor], bits: Tensor, positions: Tensor | None = None
    ) -> Float[Tensor, "model example 2"]:
        pre = torch.baddbmm(params["b_in"][:, None], bits, params["W_in"])
        return torch.baddbmm(params["b_out"][:, None], torch.relu(pre), params["W_out"])


def nanda_config(
    p: int, d_model: int = 128, n_heads: int = 4, d_mlp: int = 512, unembed_bias: bool = True
) -> ModelConfig:
    return ModelConfig(
        n_layers=1,
        d_model=d_model,
        n_heads=n_heads,
        d_mlp=d_mlp,
        n_ctx=3,
        d_vocab=p + 1,
        act_fn="relu",
        normalization="none",
        positional="absolute",
        tied_embeddings=False,
        init_range=d_model**-0.5,
        unembed_bias=unembed_bias,
    )


ATTENTION_BIASES = ("b_Q", "b_K", "b_V", "b_O")


@torch.no_grad()
def nanda_init(model: HookedTransformer, seed: int) -> None:
    """Nanda et al.'s init (progress-measures-paper ``transformers.py``): every matrix
    ``randn / sqrt(d_model)`` except ``W_U``, ``randn / sqrt(d_vocab)``; biases zero.  Drawn
    from one generator in parameter order (their draws are torch's global RNG, another order)."""
    g = torch.Generator().manual_seed(seed)
    d_model, d_vocab = model.config.d_model, model.config.d_vocab
    for name, p in model.named_parameters():
        leaf = name.rsplit(".", 1)[-1]
        if leaf.startswith("W_"):
            std = d_vocab**-0.5 if leaf == "W_U" else d_model**-0.5
            p.copy_(torch.randn(p.shape, generator=g) * std)
        else:
            p.zero_()


class NandaTransformer(nn.Module):
    """Nanda et al.'s 1-layer transformer (our hooked family) scored at the ``=`` position.

    ``self.model`` is a plain :class:`HookedTransformer`, so hooks and caches work as usual
    (``self.model(tokens)``).  :meth:`forward` gives the same logits but runs the MLP and the
    unembedding at the ``=`` position only: in one layer the MLP outputs at ``a`` and ``b``
    never reach it, and skipping them makes a training step ~1.7x faster on CPU.
    """

    # Nanda et al. decay every parameter (AdamW over ``model.parameters()``): biases and the
    # position table too, whatever the hooked modules inside declare (interp.train.optim)
    decay_all = True

    def __init__(
        self,
        p: int,
        d_model: int = 128,
        d_mlp: int = 512,
        seed: int = 0,
        variant: GrokVariant | None = None,
    ) -> None:
        super().__init__()
        v = variant or grok_variant("transformer", None)
        self.p, self.variant = p, v.name
        self.classes = p + 1 if v.eq_logit else p  # the logits forward returns (the loss's)
        cfg = nanda_config(p, d_model=d_model, d_mlp=d_mlp, unembed_bias=v.unembed_bias)
        self.model = HookedTransformer(cfg, seed=seed)
        if not v.attn_bias:  # Nanda's Attention has no biases: held at zero, never trained
            for name, param in self.model.named_parameters():
                if name.rsplit(".", 1)[-1] in ATTENTION_BIASES:
                    param.requires_grad_(False)
        TRANSFORMER_INITS[v.init](self.model, seed)

    def forward(self, tokens: Int[Tensor, "example 3"]) -> Float[Tensor, "example classes"]:
        """The logits at ``=`` over the first :attr:`classes` tokens: the p residues, and the
        ``=`` token too where the variant keeps it in the loss (Nanda's)."""
        m = self.model
        (block,) = m.blocks
        resid = block.hook_resid_pre(m.embed_input(tokens))
        resid = resid + block.hook_attn_out(block.attn(block.ln1(resid)))
        last = block.hook_resid_mid(resid[:, -1:])
        last = last + block.hook_mlp_out(block.mlp(block.ln2(last)))
        last = block.hook_resid_post(last)
        return m.unembed(m.ln_final(last))[:, -1, : self.classes]

    @property
    def embedding(self) -> Float[Tensor, "p d_model"]:
        return self.model.W_E[: self.p]

    def neuron_weights(self) -> Float[Tensor, "p d_mlp"]:
        """Each MLP neuron's direct input weight from one residue (``W_E @ W_in``)."""
        return self.embedding @ self.model.blocks[0].mlp.W_in

    @torch.no_grad()
    def neuron_acts(self, tokens: Int[Tensor, "example 3"]) -> Float[Tensor, "example d_mlp"]:
        """The MLP neurons' activations at the ``=`` position (``blocks.0.mlp.hook_post``)."""
        name = "blocks.0.mlp.hook_post"
        _, cache = self.model.run_with_cache(tokens, names_filter=lambda n: n == name)
        return cache[name][:, -1]


# GrokVariant.init -> how the transformer's weights are drawn (gpt2: HookedTransformer's own)
TRANSFORMER_INITS = {"nanda": nanda_init, "gpt2": lambda model, seed: None}
