"""Myopic vs vanilla twins: does a model pre-cache for the future, or leave breadcrumbs?

Wu, Morris & Levine (2024): train the same model twice from the same initial weights on the same
data order, once normally (vanilla) and once *myopically* (the loss at t sends no gradient into
earlier positions; ``interp.train.grad_modes``).  A myopic model can only compute features that
help the current prediction; whatever it then passes on to later positions is a *breadcrumb*.
If vanilla is clearly better, the difference is what vanilla computes *for* the future
(*pre-caching*).

This module is the one library call behind ``interp precache``: train the twins per seed
(resumable run directories), then compare them: final and per-position validation loss, the
myopia gap ``myopic - vanilla`` with a 95% t-interval over seeds, and on the synthetic
``precache`` task a ridge probe for the future-only feature ``sin(f * x_t)`` from the state after
``probe_layer`` blocks.  ``verdict`` turns that into pre-caching / breadcrumbs / inconclusive.

Definitions we chose (the paper leaves them open):

* relative gap = mean gap / mean vanilla loss;
* pre-caching: the gap is positive beyond its interval (every seed, for one seed) and the
  relative gap is >= ``precaching_rel_gap`` (10%), and, where a future-feature probe exists,
  vanilla encodes it (R² >= 0.5) clearly better than myopic (by >= 0.2);
* breadcrumbs: relative gap below the threshold (including a negative gap);
* inconclusive: otherwise (large but noisy gap, or a gap the probe does not back up).

On a corpus, both twins also get the future-token probes of ``probes/`` (issue 3, Future Lens):
a ridge map from the residual stream after each layer at t to the final state at t+k-1, decoded
by the twin's own head, for horizons k = 1..``token_horizons`` on ``token_probe_tokens`` held-out
tokens of the twins' own validation split.  ``token_probe`` holds held-out top-1 per
layer × horizon for vanilla and myopic (means over seeds) and vanilla - myopic.  It is reported
as evidence; the verdict's label still rests on the loss gap (and the synthetic probe).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from interp import load_model
from interp.config import _Config
from interp.errors import ConfigError

KIND = "precache"
# a verdict needs the vanilla twin below the trivial baseline (predict zero) by this share
LEARN_MARGIN = 0.05
MODES = ("vanilla", "myopic")

# two-sided 97.5% quantiles of Student's t, df = 1..30 (no scipy dependency)
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179,
         2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
         2.060, 2.056, 2.052, 2.048, 2.045, 2.042)  # fmt: skip

ProgressFn = Callable[[str], None]


@dataclass(frozen=True)
class MyopiaConfig(_Config):
    """What ``interp precache`` compares beyond the training itself (inert: checked by
    :meth:`validate`)."""

    seeds: tuple[int, ...] = (0,)
    probe_layer: int = 1  # the state after this many blocks (1 = the paper's "layer 1")
    probe_sequences: int = 256  # fresh task sequences for the probe (half fit, half scored)
    ridge: float = 1e-3
    precaching_rel_gap: float = 0.10
    token_horizons: int = 3  # future-token probes on text: horizons 1..H
    token_probe_tokens: int = 4000  # held-out tokens per twin for those probes (fit+val+test)

    def __post_init__(self) -> None:
        if isinstance(self.seeds, list):  # as JSON spells a tuple
            object.__setattr__(self, "seeds", tuple(self.seeds))

    def validate(self) -> None:
        seeds = self.seeds
        if (
            not isinstance(seeds, tuple)
            or not seeds
            or any(not isinstance(s, int) or isinstance(s, bool) or s < 0 for s in seeds)
        ):
            raise ConfigError(f"seeds must be non-negative integers, got {self.seeds!r}")
        if len(set(seeds)) != len(seeds):
            raise ConfigError(f"seeds must be distinct, got {list(seeds)}")
        if not isinstance(self.probe_layer, int) or self.probe_layer < 1:
            raise ConfigError(f"probe_layer must be >= 1, got {self.probe_layer!r}")
        if self.probe_sequences < 4:
            raise ConfigError("probe_sequences must be >= 4")
        if self.ridge <= 0 or self.precaching_rel_gap <= 0:
            raise ConfigError("ridge and precaching_rel_gap must be positive")
        if self.token_horizons < 1 or self.token_probe_tokens < 1:
            raise ConfigError("token_horizons and token_probe_tokens must be positive")


# --------------------------------------------------------------------------- statistics


def t_interval(values: Sequence[float]) -> tuple[float, float] | None:
    """95% Student-t interval of the mean; ``None`` for fewer than two values."""
    n = len(values)
    if n < 2:
        return None
    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    t = _T975[min(n - 1, len(_T975)) - 1] if n - 1 <= len(_T975) else 1.96
    half = t * sd / math.sqrt(n)
    return mean - half, mean + half


def gap_summary(vanilla: Sequence[float], myopic: Sequence[float]) -> dict[str, Any]:
    """Mean losses, the myopia gap (myopic - vanilla) per seed, its mean, interval and ratio."""
    if len(vanilla) != len(myopic) or not vanilla:
        raise ValueError("need one vanilla and one myopic loss per seed")
    gaps = [m - v for v, m in zip(vanilla, myopic, strict=True)]
    v_mean = sum(vanilla) / len(vanilla)
    g_mean = sum(gaps) / len(gaps)
    ci = t_interval(gaps)
    return {
        "vanilla": v_mean,
        "myopic": sum(myopic) / len(myopic),
        "gaps": gaps,
        "gap": g_mean,
        "gap_ci": list(ci) if ci else None,
        "rel_gap": g_mean / v_mean if v_mean > 0 else math.inf,
    }


def position_gap(
    vanilla_by_pos: Sequence[Sequence[float | None]],
    myopic_by_pos: Sequence[Sequence[float | None]],
) -> dict[str, Any]:
    """Mean per-position losses over seeds, their gap, and the gap in the first / last quarter."""

    def mean_rows(rows: Sequence[Sequence[float | None]]) -> list[float | None]:
        out = []
        for col in zip(*rows, strict=True):
            vals = [v for v in col if v is not None]
            out.append(sum(vals) / len(vals) if vals else None)
        return out

    v, m = mean_rows(vanilla_by_pos), mean_rows(myopic_by_pos)
    gap = [b - a if a is not None and b is not None else None for a, b in zip(v, m, strict=True)]
    valid = [g for g in gap if g is not None]
    q = max(1, len(valid) // 4)
    return {
        "vanilla": v,
        "myopic": m,
        "gap": gap,
        "gap_first_quarter": sum(valid[:q]) / q if valid else None,
        "gap_last_quarter": sum(valid[-q:]) / q if valid else None,
    }


def verdict(
    summary: dict[str, Any],
    probe: dict[str, Any] | None,
    rel_threshold: float = 0.10,
    token_probe: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Pre-caching, breadcrumbs or inconclusive, with the evidence as sentences.

    ``token_probe`` (text) adds a sentence of evidence; it does not change the label."""
    gap, rel, ci = summary["gap"], summary["rel_gap"], summary.get("gap_ci")
    evidence = [
        f"validation loss vanilla {summary['vanilla']:.4f}, myopic {summary['myopic']:.4f}: "
        f"myopia gap {gap:+.4f} ({100 * rel:+.1f}% of vanilla)"
        + (f", 95% CI [{ci[0]:+.4f}, {ci[1]:+.4f}] over seeds" if ci else ", one seed (no CI)")
    ]
    positive = ci[0] > 0 if ci else all(g > 0 for g in summary["gaps"])
    big = rel >= rel_threshold
    probe_backs = None
    v_r2 = m_r2 = float("nan")
    if probe:
        v_r2, m_r2 = probe["vanilla_r2"], probe["myopic_r2"]
        probe_backs = v_r2 >= 0.5 and v_r2 - m_r2 >= 0.2
        evidence.append(
            f"probe for {probe['target']} from the state after {probe['layer']} block(s): "
            f"R² vanilla {v_r2:.3f}, myopic {m_r2:.3f}"
            + (
                f" (after each block: vanilla {_fmt(probe['by_layer']['vanilla'])}, "
                f"myopic {_fmt(probe['by_layer']['myopic'])})"
                if probe.get("by_layer")
                else ""
            )
        )
    if token_probe and token_probe.get("status") == "done":
        evidence.append(token_probe_sentence(token_probe))
    zero = summary.get("zero_baseline")
    if zero is not None and not summary["vanilla"] <= (1 - LEARN_MARGIN) * zero:
        label = "inconclusive"
        evidence.append(
            f"the vanilla twin did not learn: validation loss {summary['vanilla']:.4f} vs "
            f"{zero:.4f} for predicting zero (a finding needs it {100 * LEARN_MARGIN:.0f}% "
            "below); try more --steps or a larger --lr"
        )
    elif not big:
        label = "breadcrumbs"
        evidence.append(
            f"the gap is below {100 * rel_threshold:.0f}% of the vanilla loss: what the model "
            "passes forward is mostly computed for the current token anyway"
        )
    elif positive and probe_backs is not False:
        label = "pre-caching"
        evidence.append(
            "the myopic twin is clearly worse"
            + (" and only vanilla encodes the future-only feature" if probe_backs else "")
        )
    elif probe_backs is False:
        label = "inconclusive"
        evidence.append(
            f"the gap is large but the probe does not back it: vanilla R² {v_r2:.3f} (pre-caching "
            f"needs >= 0.5, and 0.2 above myopic's {m_r2:.3f}); try more --steps"
        )
    else:
        label = "inconclusive"
        evidence.append(
            "the gap is large but its interval over seeds is not above zero; try more --seeds"
        )
    return {"label": label, "evidence": evidence, "rel_threshold": rel_threshold}


def _fmt(values: Sequence[float]) -> str:
    return "/".join(f"{v:.2f}" for v in values)


# --------------------------------------------------------------------------- probes


def ridge_r2(x: torch.Tensor, y: torch.Tensor, x_test: torch.Tensor, y_test: torch.Tensor,
             ridge: float) -> float:  # fmt: skip
    """Held-out R² of a ridge regression with intercept (float64, closed form)."""
    x, y, x_test, y_test = (t.double() for t in (x, y, x_test, y_test))
    mx, my = x.mean(0), y.mean()
    xc = x - mx
    gram = xc.T @ xc
    lam = ridge * float(gram.diagonal().mean())
    w = torch.linalg.solve(gram + lam * torch.eye(gram.shape[0], dtype=gram.dtype), xc.T @ (y - my))
    pred = (x_test - mx) @ w + my
    ss_res = float(((y_test - pred) ** 2).sum())
    ss_tot = float(((y_test - y_test.mean()) ** 2).sum())
    return 1.0 - ss_res / ss_tot if ss_tot > 0 else 0.0


@torch.no_grad()
def future_feature_probe(
    model: Any, task: Any, n_sequences: int, seed: int, ridge: float = 1e-3
) -> list[float]:
    """R² of a linear probe for ``task.future_feature`` from the state after each block.

    Entry l-1 probes ``blocks.{l-1}.hook_resid_post`` (the state after l blocks).  Fits on half
    of ``n_sequences`` fresh sequences (every position) and scores the other half.
    """
    batch = task.sample(n_sequences, torch.Generator().manual_seed(10_000 + seed), "val")
    hooks = [f"blocks.{layer}.hook_resid_post" for layer in range(model.cfg.n_layers)]
    _, cache = model.run_with_cache(batch.inputs.to(model.device), names_filter=hooks)
    target = task.future_feature(batch.inputs).flatten()
    half = (n_sequences // 2) * batch.inputs.shape[1]
    out = []
    for hook in hooks:
        states = cache[hook].cpu().flatten(0, 1)
        out.append(ridge_r2(states[:half], target[:half], states[half:], target[half:], ridge))
    return out


@torch.no_grad()
def zero_baseline(val_batches: Sequence[Any]) -> float | None:
    """Loss of always predicting 0 on a regression task (the trivial baseline); else None."""
    total, count = 0.0, 0.0
    for b in val_batches:
        if b.loss != "huber":
            return None
        loss = F.huber_loss(torch.zeros_like(b.targets), b.targets.float(), reduction="none")
        total += float((loss.mean(-1) * b.mask).sum())
        count += float(b.mask.sum())
    return total / max(count, 1.0)


def twin_token_probe(run_dir: Path, horizons: int, tokens: int, seed: int) -> dict[str, Any]:
    """Future-lens probes (``probes/``) of one text twin: top-1 per layer × horizon, held out.

    Layers 0 (embeddings) .. n_layers (final residual stream); the data are the validation
    documents of the twin's own training run, so both twins of a seed see the same blocks.
    """
    from probes.run import ProbeConfig, prepare, run_probes

    spec = str(run_dir)
    model = load_model(spec)
    model.eval()
    config = ProbeConfig(model=spec, horizon=horizons, tokens=tokens, seed=seed, n_boot=200)
    res = run_probes(model, prepare(model, config, spec))
    lens = res["probes"]["future_lens"]
    top1 = lens["metrics"]["top1"]
    return {
        "layers": res["layers"],
        "layer_labels": res["layer_labels"],
        "horizons": res["horizons"],
        "top1": top1["value"],
        "top1_lo": top1["lo"],
        "top1_hi": top1["hi"],
        "val_r2": lens["val_r2"],
        "baselines": {
            name: res["baselines"][name]["top1"]["value"] for name in ("unigram", "bigram")
        },
        "model_top1": res["baselines"]["model"]["top1"]["value"][0],
        "tokens": res["tokens"],
        "data": res["data"],
        "notes": res["notes"],
    }


def token_probe_summary(per_seed: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Means over seeds of the twins' future-lens top-1 [layer][horizon], and vanilla - myopic."""
    n = len(per_seed)
    first = per_seed[0]["vanilla"]["token_probe"]

    def mean(mode: str, key: str) -> list[list[float]]:
        grids = [r[mode]["token_probe"][key] for r in per_seed]
        return [
            [sum(g[i][k] for g in grids) / n for k in range(len(grids[0][i]))]
            for i in range(len(grids[0]))
        ]

    v, m = mean("vanilla", "top1"), mean("myopic", "top1")
    out: dict[str, Any] = {
        "status": "done",
        "method": (
            "future lens (probes/): ridge from the residual stream after each layer at t to the "
            "final state at t+k-1, decoded by the twin's own head; λ per (layer, horizon) on "
            "validation blocks; held-out top-1 on test blocks"
        ),
        "layers": first["layers"],
        "layer_labels": first["layer_labels"],
        "horizons": first["horizons"],
        "tokens": first["tokens"],
        "data": first["data"],
        "seeds": n,
        "notes": sorted(
            {note for r in per_seed for mode in MODES for note in r[mode]["token_probe"]["notes"]}
        ),
        "vanilla": {"top1": v},
        "myopic": {"top1": m},
        "diff": [[a - b for a, b in zip(rv, rm, strict=True)] for rv, rm in zip(v, m, strict=True)],
    }
    for mode in MODES:
        tp = out[mode]
        tp["model_top1"] = sum(r[mode]["token_probe"]["model_top1"] for r in per_seed) / n
        if n == 1:
            tp["top1_lo"] = per_seed[0][mode]["token_probe"]["top1_lo"]
            tp["top1_hi"] = per_seed[0][mode]["token_probe"]["top1_hi"]
    out["baselines"] = {
        name: [
            sum(r["vanilla"]["token_probe"]["baselines"][name][k] for r in per_seed) / n
            for k in range(len(first["horizons"]))
        ]
        for name in ("unigram", "bigram")
    }
    return out


def token_probe_sentence(tp: dict[str, Any]) -> str:
    """One line of evidence: top-1 at each horizon from the last layer before the final state."""
    i = max(0, len(tp["layers"]) - 2)  # the state after n_layers - 1 blocks (not the final one)
    parts = [
        f"k={k}: vanilla {tp['vanilla']['top1'][i][j]:.3f}, myopic {tp['myopic']['top1'][i][j]:.3f}"
        for j, k in enumerate(tp["horizons"])
    ]
    return (
        f"future-lens probes from layer {tp['layer_labels'][i]} (held-out top-1, "
        f"{tp['tokens']['test']} test tokens): " + "; ".join(parts)
    )


# --------------------------------------------------------------------------- the experiment
