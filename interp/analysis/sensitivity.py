"""Over-squashing (Barbero et al. 2024, Thm 5.1) as the sensitivity of the last token's state
to each input position.

For a prompt x_1..x_n, let e_i be the input representation of position i (the residual stream
entering block 0, ``blocks.0.hook_resid_pre``: token embedding plus any additive position
embedding) and y^l the last token's state after layer l (``blocks.{l}.hook_resid_post``, and
the final state ``ln_final.hook_normalized``, or ``ln_final.hook_out`` on a bridge).  The
sensitivity of y^l to position i is the Frobenius norm of the Jacobian,
``S_l(i) = || d y^l_n / d e_i ||_F``.  The theorem bounds S(i) by a sum over causal paths from i
to n, which favours early positions: information from late tokens is squashed.

Two ways to compute it (``estimator``; ``auto`` takes ``exact`` up to d_model
:data:`EXACT_UP_TO`, ``random`` above):

* ``exact``: ``d_model / chunk`` forward passes over a batch of ``chunk`` copies of the prompt;
  copy j back-propagates coordinate j of y^l (one backward per layer on the shared forward).
* ``random``: one forward pass over ``probes`` copies; copy j back-propagates the direction
  q_j of y^l, the columns of a random orthonormal ``[d_model, probes]`` matrix Q (seeded).
  ``(d/r) sum_j ||q_j^T J_i||^2`` is an unbiased estimate of ``||J_i||_F^2`` (E[Q Q^T] = (r/d)
  I) and exact at r = d; with r = 32 on a 768-wide model it costs 1/24 of the exact one.  Its
  relative error on a squared norm is at most sqrt(2/r) (one standard deviation, a rank-one
  Jacobian) and far less for the near-full-rank Jacobians of a residual stream; measured
  against the exact sensitivities in ``tests/test_squash.py`` (tolerance stated there).

Both stop the forward pass at the last hook read: no final norm beyond it, no logits.

Prompts (token units as in :mod:`interp.analysis.collapse`: digits are single tokens, or ids
0..9 for a model without a tokenizer):

* ``copy-first``: "0" then n-1 ones (the answer is the first digit);
* ``copy-last``: n-1 ones then "0" (the answer is the last digit);
* ``counting``: the paper's counting prompt followed by n ones.

Summary per prompt and layer: the share of the total sensitivity carried by the first quarter
of the positions, the last quarter excluding the last token, and the last token itself (which
also has the direct residual path).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from interp.analysis.collapse import PAPER_PROMPT, _encode, _single_token, layer_names
from interp.config import _Config
from interp.errors import ConfigError
from interp.progress import SILENT, Progress, Work

__all__ = [
    "ESTIMATORS",
    "PROMPTS",
    "SquashConfig",
    "build_prompt",
    "directions",
    "plan_squash",
    "resolve_estimator",
    "run_squash",
    "sensitivities",
]

PROMPTS = ("copy-first", "copy-last", "counting")
INPUT_HOOK = "blocks.0.hook_resid_pre"
ESTIMATORS = ("auto", "exact", "random")
EXACT_UP_TO = 256  # d_model up to which ``auto`` computes the exact sensitivities


@dataclass(frozen=True)
class SquashConfig(_Config):
    prompts: tuple[str, ...] = PROMPTS
    length: int = 32  # digits in the prompt (n)
    chunk: int = 64  # output coordinates per backward batch (exact)
    estimator: str = "auto"  # auto | exact | random (see the module docstring)
    probes: int = 32  # random directions (random)
    seed: int = 0  # of the random directions


def resolve_estimator(cfg: SquashConfig, d_model: int) -> str:
    if cfg.estimator not in ESTIMATORS:
        raise ConfigError(
            f"unknown estimator {cfg.estimator!r}; choose from {', '.join(ESTIMATORS)}"
        )
    if cfg.estimator != "auto":
        return cfg.estimator
    return "exact" if d_model <= EXACT_UP_TO or cfg.probes >= d_model else "random"


def directions(cfg: SquashConfig, d_model: int) -> list[Tensor]:
    """The cotangent batches, ``[copies, d_model]`` each: one-hot rows in chunks (exact) or
    the columns of one random orthonormal matrix, scaled by sqrt(d / r) (random)."""
    if resolve_estimator(cfg, d_model) == "exact":
        eye = torch.eye(d_model)
        return list(eye.split(cfg.chunk))
    r = min(cfg.probes, d_model)
    g = torch.Generator().manual_seed(cfg.seed)
    q, _ = torch.linalg.qr(torch.randn(d_model, r, generator=g, dtype=torch.float64))
    return [(q.T * (d_model / r) ** 0.5).float()]


def build_prompt(model: Any, name: str, n: int) -> tuple[list[int], int]:
    """Token ids of prompt ``name`` with ``n`` digits, and the index of its first digit."""
    tok = getattr(model, "tokenizer", None)
    prefix: list[int] = []
    if tok is not None:
        bos = getattr(tok, "bos_token_id", None)
        if bos is not None:
            prefix.append(int(bos))
        zero = _single_token(tok, "0", "digit")
        one = _single_token(tok, "1", "digit")
    else:
        zero, one = 0, 1 % int(model.cfg.d_vocab)
    if name == "copy-first":
        body = [zero] + [one] * (n - 1)
    elif name == "copy-last":
        body = [one] * (n - 1) + [zero]
    elif name == "counting":
        if tok is not None:
            prefix += _encode(tok, PAPER_PROMPT)
        body = [one] * n
    else:
        raise ConfigError(f"unknown prompt {name!r}; choose from {', '.join(PROMPTS)}")
    return prefix + body, len(prefix)


class _Stop(Exception):
    """Raised by the last hook read: the rest of the forward pass is skipped."""


def sensitivities(
    model: Any,
    tokens: Sequence[int],
    names: Sequence[str] | None = None,
    chunk: int = 64,
    cotangents: Sequence[Tensor] | None = None,
    on_batch: Callable[[int, int], None] | None = None,
) -> dict[str, Tensor]:
    """``{name: [pos]}``: ``|| d state_name[last] / d e_i ||_F`` for every position i.

    ``cotangents``: the batches of directions to back-propagate (default: one-hot rows,
    ``chunk`` at a time: the exact norms; see :func:`directions`); ``on_batch(done, total)``
    after each."""
    names = list(names) if names is not None else layer_names(model)
    if INPUT_HOOK not in model.hook_dict:
        raise ConfigError(f"the model has no hook {INPUT_HOOK!r}")
    d_model = int(model.cfg.d_model)
    if cotangents is None:
        cotangents = list(torch.eye(d_model).split(chunk))
    device = _device(model)
    x = torch.tensor([list(tokens)], dtype=torch.long, device=device)
    n_pos = x.shape[1]
    sq = {name: torch.zeros(n_pos, dtype=torch.float64) for name in names}
    wanted = set(names)
    for done, v in enumerate(cotangents):
        batch = x.expand(v.shape[0], -1)
        leaf: dict[str, Tensor] = {}
        outs: dict[str, Tensor] = {}

        def take_input(e: Tensor, hook: Any, leaf: dict[str, Tensor] = leaf) -> Tensor:
            leaf["e"] = e.detach().clone().requires_grad_(True)
            return leaf["e"]

        def take_output(y: Tensor, hook: Any, name: str, outs: dict[str, Tensor] = outs) -> None:
            outs[name] = y[:, -1]
            if len(outs) == len(wanted):
                raise _Stop

        hooks: list[tuple[str, Callable[..., Any]]] = [(INPUT_HOOK, take_input)]
        hooks += [(n, (lambda y, hook, n=n: take_output(y, hook, n))) for n in names]
        with torch.enable_grad():
            try:
                model.run_with_hooks(batch, fwd_hooks=hooks)
            except _Stop:
                pass
            missing = [n for n in names if n not in outs]
            if missing:
                raise ConfigError(f"hook {missing[0]!r} did not fire in the forward pass")
            for k, name in enumerate(names):
                y = outs[name]
                target = (y * v.to(device=y.device, dtype=y.dtype)).sum()
                (grad,) = torch.autograd.grad(target, leaf["e"], retain_graph=k < len(names) - 1)
                sq[name] += grad.double().pow(2).sum(dim=(0, 2)).cpu()
        del leaf, outs
        if on_batch is not None:
            on_batch(done + 1, len(cotangents))
    return {name: v.sqrt() for name, v in sq.items()}


def _device(model: Any) -> torch.device:
    return next(model.parameters()).device


def _shares(s: list[float], first: int) -> dict[str, float]:
    body = s[first:]
    total = sum(body) or 1.0
    k = max(1, len(body) // 4)
    return {
        "first_quarter": sum(body[:k]) / total,
        "last_quarter_excl_last": sum(body[-k - 1 : -1]) / total if len(body) > 1 else 0.0,
        "last_token": body[-1] / total,
    }


def plan_squash(model: Any, cfg: SquashConfig) -> dict[str, tuple[list[int], int]]:
    """Check ``cfg`` against ``model`` (one-line ConfigError) and build every prompt:
    ``{name: (tokens, index of the first digit)}``; nothing is computed yet."""
    if cfg.length < 2:
        raise ConfigError(f"--length must be at least 2, not {cfg.length}")
    if cfg.chunk < 1:
        raise ConfigError("chunk must be positive")
    if cfg.probes < 1:
        raise ConfigError("probes must be positive")
    resolve_estimator(cfg, int(model.cfg.d_model))  # an unknown estimator: one line, now
    if not cfg.prompts:
        raise ConfigError("no prompt given")
    n_ctx = int(model.cfg.n_ctx)
    unknown = [p for p in cfg.prompts if p not in PROMPTS]
    if unknown:
        raise ConfigError(f"unknown prompt {unknown[0]!r}; choose from {', '.join(PROMPTS)}")
    if cfg.length > n_ctx:  # before the prompts are built: a huge length is refused, not built
        raise ConfigError(f"--length {cfg.length} is beyond the model context {n_ctx}")
    built = {p: build_prompt(model, p, cfg.length) for p in cfg.prompts}
    for p, (tokens, _) in built.items():
        if len(tokens) > n_ctx:
            raise ConfigError(
                f"prompt {p!r} with length {cfg.length} is {len(tokens)} tokens, beyond the "
                f"model context {n_ctx}"
            )
    return built


def run_squash(
    model: Any,
    cfg: SquashConfig,
    progress: Progress = SILENT,
    built: dict[str, tuple[list[int], int]] | None = None,
) -> dict[str, Any]:
    """Sensitivity curves for every prompt of ``cfg`` (see the module docstring).

    The first batch of the first prompt is timed; the estimated duration (a ``progress``
    note) and the bar's weights come from it (a batch costs about its prompt's length)."""
    built = built if built is not None else plan_squash(model, cfg)
    names = layer_names(model)
    d_model = int(model.cfg.d_model)
    estimator = resolve_estimator(cfg, d_model)
    cotangents = directions(cfg, d_model)
    work = Work(progress, "sensitivities")
    timed: dict[str, float] = {}
    first_len = len(next(iter(built.values()))[0])

    def on_batch(p: str, n_tokens: int, done: int, total: int) -> None:
        if not timed:
            timed["s"] = time.perf_counter() - t0
            for q, (toks, _) in built.items():
                work.phase(q, len(cotangents), timed["s"] * len(toks) / first_len)
            progress.note(
                f"estimated duration {work.describe()} (from the first batch; {estimator}: "
                f"{len(cotangents)} pass(es) of {cotangents[0].shape[0]} copies per prompt)"
            )
            work.start()
        work.step(p)

    was_training = model.training
    model.eval()
    prompts: dict[str, Any] = {}
    try:
        t0 = time.perf_counter()
        for p, (tokens, first) in built.items():
            sens = sensitivities(
                model,
                tokens,
                names,
                cotangents=cotangents,
                on_batch=lambda done, total, p=p, n=len(tokens): on_batch(p, n, done, total),
            )
            prompts[p] = {
                "tokens": tokens,
                "first_digit": first,
                "sensitivity": {n: v.tolist() for n, v in sens.items()},
                "shares": {n: _shares(v.tolist(), first) for n, v in sens.items()},
            }
    finally:
        model.train(was_training)
    return {
        "kind": "squash",
        "estimator": {
            "name": estimator,
            "copies_per_pass": int(cotangents[0].shape[0]),
            "passes_per_prompt": len(cotangents),
            "estimated_seconds": work.total_seconds(),
        },
        "config": cfg.to_dict(),
        "layers": names,
        "final_layer": names[-1],
        "input_hook": INPUT_HOOK,
        "prompts": prompts,
    }
