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
  ``int(0.4 n)`` for training; the notebook's ``hyper`` setting is embed_size 500 and seed 165
  (with hidden_size 24, percent_train 0.4, lr 1e-3, weight_decay 1, 50,000 steps), which are
  this variant's defaults.  The default for modular addition: at these settings it groks on a
  CPU (measured, ``interp grok --task modadd --p 67``: memorised at step 300, test accuracy
  >= 0.95 at step 35,000 of 50,000, final train/test accuracy 1.000/0.999, label grok; 15 min
  at 56 steps/s on 1 thread of 2 shared cores).
* ``mlp`` / ``interp`` (the default for sparse parity; the CPU-scale reproduction's and the
  sweeps' modular-addition MLP): normal init of std 1/sqrt(fan_in), per-example mean
  cross-entropy, torch split; embedding width 32, seed 0.  With the single-run defaults (p 67,
  24 neurons, lr 1e-3, wd 1, 50,000 steps) it memorises and does not generalise (train/test
  accuracy 1.000/0.146), which is why it is no longer the modular-addition default.
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
    d_embed: int = 32  # GrokConfig.d_embed where it is None (the MLPs' embedding width)
    seed: int = 0  # GrokConfig.seed where it is None


_VARIANTS: dict[tuple[str, str], GrokVariant] = {}
DEFAULT_VARIANT: dict[str, str] = {"transformer": "nanda", "mlp": "interp", "fixed": "interp"}
# (model, task) -> its default where it differs from the model's: PAIR's MLP groks mod-add on a
# CPU at its notebook's setting, interp's earlier one does not (see the module docstring)
TASK_DEFAULT_VARIANT: dict[tuple[str, str], str] = {("mlp", "modadd"): "pair"}


def default_variant(model: str, task: str | None = None) -> str:
    """The variant a config naming none gets: the task's default for the model, else the
    model's."""
    return TASK_DEFAULT_VARIANT.get((model, task or ""), DEFAULT_VARIANT.get(model, "interp"))


def variant_names(model: str) -> tuple[str, ...]:
    """The registered variants of ``model``."""
    return tuple(n for m, n in _VARIANTS if m == model)


def register_variant(v: GrokVariant) -> GrokVariant:
    key = (v.model, v.name)
    if key in _VARIANTS:
        raise ValueError(f"grok variant {key} is registered twice")
    _VARIANTS[key] = v
    return v


def grok_variant(model: str, name: str | None, task: str | None = None) -> GrokVariant:
    name = name or default_variant(model, task)
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
    init="pair", loss="class_mean", split="pair", tasks=("modadd",), d_embed=500, seed=165,
))  # fmt: skip
register_variant(GrokVariant(
    "mlp", "interp",
    "interp's CPU variant (not PAIR's): N(0, 1/fan_in) init, per-example cross-entropy",
    init="normal", in_results=False,
))  # fmt: skip
register_variant(
    GrokVariant("fixed", "interp", "fixed (cos, sin) embedding", init="normal", in_results=False)
)

__all__ = [
    "DEFAULT_VARIANT",
    "TASK_DEFAULT_VARIANT",
    "GrokVariant",
    "default_variant",
    "grok_variant",
    "register_variant",
    "variant_names",
]
