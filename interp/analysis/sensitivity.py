"""Over-squashing (Barbero et al. 2024, Thm 5.1) as the sensitivity of the last token's state
to each input position.

For a prompt x_1..x_n, let e_i be the input representation of position i (the residual stream
entering block 0, ``blocks.0.hook_resid_pre``: token embedding plus any additive position
embedding) and y^l the last token's state after layer l (``blocks.{l}.hook_resid_post``, and
the final state ``ln_final.hook_normalized``, or ``ln_final.hook_out`` on a bridge).  The
sensitivity of y^l to position i is the Frobenius norm of the Jacobian,
``S_l(i) = || d y^l_n / d e_i ||_F``, computed exactly with ``d_model / chunk`` backward passes
over a batch of copies of the prompt (copy j back-propagates coordinate j of y^l).  The theorem bounds S(i) by a sum over causal paths from i to n, which
favours early positions: information from late tokens is squashed.

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

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from interp.analysis.collapse import PAPER_PROMPT, _encode, _single_token, layer_names
from interp.config import _Config
from interp.errors import ConfigError

__all__ = ["PROMPTS", "SquashConfig", "build_prompt", "plan_squash", "run_squash", "sensitivities"]

PROMPTS = ("copy-first", "copy-last", "counting")
INPUT_HOOK = "blocks.0.hook_resid_pre"


@dataclass(frozen=True)
class SquashConfig(_Config):
    prompts: tuple[str, ...] = PROMPTS
    length: int = 32  # digits in the prompt (n)
    chunk: int = 64  # output coordinates per backward batch


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


def sensitivities(
    model: Any, tokens: Sequence[int], names: Sequence[str] | None = None, chunk: int = 64
) -> dict[str, Tensor]:
    """``{name: [pos]}``: ``|| d state_name[last] / d e_i ||_F`` for every position i."""
    names = list(names) if names is not None else layer_names(model)
    if INPUT_HOOK not in model.hook_dict:
        raise ConfigError(f"the model has no hook {INPUT_HOOK!r}")
    d_model = int(model.cfg.d_model)
    x = torch.tensor([list(tokens)], dtype=torch.long, device=_device(model))
    n_pos = x.shape[1]
    sq = {name: torch.zeros(n_pos, dtype=torch.float64) for name in names}
    for start in range(0, d_model, chunk):
        cols = torch.arange(start, min(start + chunk, d_model))
        batch = x.expand(len(cols), -1)
        leaf: dict[str, Tensor] = {}
        outs: dict[str, Tensor] = {}

        def take_input(e: Tensor, hook: Any, leaf: dict[str, Tensor] = leaf) -> Tensor:
            leaf["e"] = e.detach().clone().requires_grad_(True)
            return leaf["e"]

        def take_output(y: Tensor, hook: Any, name: str, outs: dict[str, Tensor] = outs) -> None:
            outs[name] = y[:, -1]

        hooks: list[tuple[str, Callable[..., Any]]] = [(INPUT_HOOK, take_input)]
        hooks += [(n, (lambda y, hook, n=n: take_output(y, hook, n))) for n in names]
        with torch.enable_grad():
            model.run_with_hooks(batch, fwd_hooks=hooks)
            rows = torch.arange(len(cols))
            for k, name in enumerate(names):
                target = outs[name][rows, cols.to(outs[name].device)].sum()
                (grad,) = torch.autograd.grad(target, leaf["e"], retain_graph=k < len(names) - 1)
                sq[name] += grad.double().pow(2).sum(dim=(0, 2)).cpu()
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
    progress: Callable[[int, int], None] | None = None,
    built: dict[str, tuple[list[int], int]] | None = None,
) -> dict[str, Any]:
    """Sensitivity curves for every prompt of ``cfg`` (see the module docstring)."""
    built = built if built is not None else plan_squash(model, cfg)
    names = layer_names(model)
    was_training = model.training
    model.eval()
    prompts: dict[str, Any] = {}
    try:
        for done, (p, (tokens, first)) in enumerate(built.items()):
            sens = sensitivities(model, tokens, names, cfg.chunk)
            prompts[p] = {
                "tokens": tokens,
                "first_digit": first,
                "sensitivity": {n: v.tolist() for n, v in sens.items()},
                "shares": {n: _shares(v.tolist(), first) for n, v in sens.items()},
            }
            if progress is not None:
                progress(done + 1, len(built))
    finally:
        model.train(was_training)
    return {
        "kind": "squash",
        "config": cfg.to_dict(),
        "layers": names,
        "final_layer": names[-1],
        "input_hook": INPUT_HOOK,
        "prompts": prompts,
    }
