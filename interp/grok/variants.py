"""Definitions of the grokking models, registered by name: the papers' (as their public code
has them) and interp's earlier ones, kept as named, labelled options.

A :class:`GrokVariant` says how a model of one kind is initialised, which biases it has, the
learning-rate warmup, the training objective and how the train/test split is drawn.  A
:class:`~interp.grok.config.GrokConfig` names one (``variant``; ``None`` takes the model's
default, :data:`DEFAULT_VARIANT`); the models, the trainer and the task read its fields, never
its name.

* ``transformer`` / ``nanda`` (default): mechanistic-interpretability-grokking/
  progress-measures-paper ``transformers.py``: no attention biases (``Attention`` holds W_K,
  W_Q, W_V, W_O only), no unembedding bias, MLP biases b_in / b_out; W_E, W_pos, W_Q, W_K,
  W_V, W_O, W_in, W_out ~ N(0, 1/d_model), W_U ~ N(0, 1/d_vocab); ``LambdaLR(min(step/10,
  1))`` (10-step linear warmup, lr 0 at the first step); the split ``random.seed(seed);
  random.shuffle(pairs)`` over all p*p pairs, the first ``int(frac * n)`` for training; the
  loss (``full_loss``: ``cross_entropy_high_precision(model(data)[:, -1], labels)``) is over all
  p + 1 outputs, the ``=`` token's logit included, while ``take_metrics`` analyses
  ``logits[:, -1, :-1]``.  (``helpers.cross_entropy_high_precision`` casts the logits to float32
  in the published code, whatever its comment says about float64: so does interp.)
* ``transformer`` / ``interp``: interp's earlier model: GPT-2 init (std d_model^-0.5, output
  matrices / sqrt(2)), trainable attention and unembedding biases, constant lr, torch split.
* ``mlp`` / ``pair``: PAIR-code/ai-explorables ``server-side/grokking/MLP_Modular_Addition.ipynb``:
  the embedding ``VarianceScaling(2)`` (truncated normal, std sqrt(2 / p) after truncation),
  ``hk.Linear`` weights truncated normal (+-2 sigma) of scale 1/sqrt(fan_in), the loss
  ``-mean(onehot * log_softmax)`` (averaged over the classes too: cross-entropy / p), the split
  ``np.random.seed(seed); np.random.permutation`` over the a <= b pairs, the first
  ``int(0.4 n)`` for training.
* ``mlp`` / ``interp`` (default, the CPU-scale reproduction): normal init of std
  1/sqrt(fan_in), per-example mean cross-entropy, torch split.
"""

from __future__ import annotations

from dataclasses import dataclass

from interp.errors import ConfigError


@dataclass(frozen=True)
class GrokVariant:
    model: str  # the grok model it defines ("mlp", "transformer", "fixed")
    name: str
    label: str  # how results and reports name it
    init: str  # "nanda", "gpt2", "pair", "normal": read by the model's builder
    attn_bias: bool = True
    unembed_bias: bool = True
    warmup: int = 0  # steps of linear warmup: lr * min(step / warmup, 1)
    # the "=" token's logit stays in the loss's softmax (the model scores p + 1 classes, as
    # Nanda's full_loss over d_vocab = p + 1 does); the Fourier analyses read the first p
    eq_logit: bool = False
    loss: str = "mean"  # interp.train.full_batch.LOSSES
    split: str = "randperm"  # interp.tasks.modadd.SPLITS
    tasks: tuple[str, ...] = ("modadd", "sparse-parity")  # the grok tasks it applies to
    # results.json names it (the MLPs' unchanged CPU definitions: config.json's variant does)
    in_results: bool = True


_VARIANTS: dict[tuple[str, str], GrokVariant] = {}
DEFAULT_VARIANT: dict[str, str] = {"transformer": "nanda", "mlp": "interp", "fixed": "interp"}


def register_variant(v: GrokVariant) -> GrokVariant:
    key = (v.model, v.name)
    if key in _VARIANTS:
        raise ValueError(f"grok variant {key} is registered twice")
    _VARIANTS[key] = v
    return v


def grok_variant(model: str, name: str | None) -> GrokVariant:
    name = name or DEFAULT_VARIANT.get(model, "interp")
    if (model, name) not in _VARIANTS:
        known = ", ".join(n for m, n in _VARIANTS if m == model) or "none"
        raise ConfigError(f"unknown variant {name!r} of the {model} model; choose {known}")
    return _VARIANTS[(model, name)]


register_variant(GrokVariant(
    "transformer", "nanda",
    "Nanda et al.'s code: no attention or unembedding biases, N(0, 1/d_model) init "
    "(W_U 1/d_vocab), 10-step warmup, random.shuffle split, the '=' logit in the loss",
    init="nanda", attn_bias=False, unembed_bias=False, warmup=10, split="nanda", eq_logit=True,
))  # fmt: skip
register_variant(GrokVariant(
    "transformer", "interp",
    "interp's earlier transformer (not Nanda's): trainable attention and unembedding biases, "
    "GPT-2 init, no warmup",
    init="gpt2",
))  # fmt: skip
register_variant(GrokVariant(
    "mlp", "pair",
    "PAIR's notebook: variance-scaling init, loss averaged over classes, numpy split",
    init="pair", loss="class_mean", split="pair", tasks=("modadd",),
))  # fmt: skip
register_variant(GrokVariant(
    "mlp", "interp",
    "interp's CPU variant (not PAIR's): N(0, 1/fan_in) init, per-example cross-entropy",
    init="normal", in_results=False,
))  # fmt: skip
register_variant(
    GrokVariant("fixed", "interp", "fixed (cos, sin) embedding", init="normal", in_results=False)
)

__all__ = ["DEFAULT_VARIANT", "GrokVariant", "grok_variant", "register_variant"]
