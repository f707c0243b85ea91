"""When can a transformer count?  Sweeps over (d, m), the threshold m_thr(d), and the histogram
construction of Yehudai et al. 2024 (arXiv 2407.15160) as hand-set weights of our hooked model.

Sweep: for every embedding width d and vocabulary size m, train a small model (2 layers, 1
head by default) on ``qc`` or ``mfc`` (``interp.tasks.counting``), measure held-out accuracy
at the answer position, and estimate m_thr(d) = the m where accuracy falls through 80%
(linear interpolation between the last grid point at or above the threshold and the first one
below it).  m_thr is then fitted linearly against d.  Each finished cell is saved atomically
in ``SWEEP/cells/``; a restarted sweep skips the cells already there.  Models of one d are
trained together (``interp.train.batched``).

Construction (QC, one layer, one head, no MLP, no norm, no positional encoding):

* token embeddings e_0 .. e_{m-1}: the first m standard basis vectors when d >= m (orthonormal);
  for m > d, m random unit vectors (seeded) - no longer orthogonal, which is what breaks it;
  ``<bos>`` embeds to 0;
* s: the vector with <s, e_i> = 1 for every token (sum of the basis vectors; least squares when
  m > d);
* attention: query beta * e_q, key 2 (e_x - s <s, e_x>), so the score is 0 on tokens equal to the
  query and on ``<bos>``, and -2 beta elsewhere.  The query position therefore spreads its
  attention evenly over ``<bos>`` and the c + 1 copies of q (the c in the sequence plus itself):
  this is the attention "averaging" the one-hot histogram of the tokens equal to q;
* value: ``<bos>`` carries s / |s|^2, tokens carry 0, so the attention adds t s / |s|^2 with
  t = 1 / (c + 2) to the residual e_q; reading along s gives r = <s, e_q> + t = 1 + t;
* readout: logit_k = 2 a_k (r - 1) - a_k^2 with a_k = 1 / (k + 2), the nearest a_k to t wins
  (linear in r: one unembedding column and bias per count k), so the argmax is exactly c.

It is exact when d >= m (evaluated in float64; the margins between counts are ~1/n^2) and
degrades when m > d.  MFC needs a second layer taking the max over positions; not built here.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

# the sweep, the inputs and the scoring live in modules of their own (counting_sweep,
# counting_inputs, counting_eval); the imports marked noqa keep their names importable from
# interp.analysis.counting, as before the split
from interp.analysis.counting_eval import (  # noqa: F401
    THRESHOLD,
    evaluate_count_model,
    fit_line,
    m_threshold,
    summarise,
)
from interp.analysis.counting_inputs import (
    _check_grid,
    _task,
    parse_int_list,  # noqa: F401
)
from interp.analysis.counting_sweep import (  # noqa: F401
    CELL,
    SweepConfig,
    cell_key,
    cell_path,
    cell_store,
    load_cells,
    read_cell_file,
    run_sweep,
    train_cells,
)
from interp.config import ModelConfig, _Config
from interp.errors import ConfigError
from interp.models.transformer import HookedTransformer

__all__ = [
    "ConstructConfig",
    "SweepConfig",
    "build_histogram_model",
    "evaluate_count_model",
    "fit_line",
    "m_threshold",
    "parse_int_list",
    "run_construct",
    "run_sweep",
    "summarise",
]

MAX_BETA = 1e6  # the construction's attention sharpness


def build_histogram_model(
    d: int, m: int, n: int | None = None, beta: float = 20.0, seed: int = 0
) -> HookedTransformer:
    """The QC histogram construction as weights of a 1-layer, 1-head hooked model (float64)."""
    task = _task("qc", m, n, "uniform", "uniform")
    cfg = ModelConfig(
        n_layers=1,
        d_model=d,
        n_heads=1,
        d_mlp=0,
        normalization="none",
        positional="none",
        **task.model_overrides(),
    )
    model = HookedTransformer(cfg, seed=None).double()
    g = torch.Generator().manual_seed(seed)
    if d >= m:
        emb = torch.eye(d, dtype=torch.float64)[:m]  # [m d] orthonormal
        s = emb.sum(0)
    else:
        emb = torch.randn(m, d, generator=g, dtype=torch.float64)
        emb = emb / emb.norm(dim=1, keepdim=True)
        s = torch.linalg.lstsq(emb, torch.ones(m, 1, dtype=torch.float64)).solution[:, 0]
    eye = torch.eye(d, dtype=torch.float64)
    attn = model.blocks[0].attn
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        model.embed.W_E[:m] = emb  # <bos> and unused tokens embed to 0
        attn.W_Q[0] = beta / attn.scale * eye
        attn.W_K[0] = 2 * (eye - torch.outer(s, s))
        w = s / s.dot(s)
        attn.W_V[0] = -torch.outer(s, w)
        attn.b_V[0] = w
        attn.W_O[0] = eye
        a = 1.0 / (torch.arange(cfg.d_vocab, dtype=torch.float64) + 2)
        model.unembed.W_U[:] = torch.outer(s, 2 * a)
        model.unembed.b_U[:] = -(2 * a + a**2)
        model.unembed.W_U[:, task.n_classes :] = 0
        model.unembed.b_U[task.n_classes :] = -1e9
    return model.eval()


@dataclass(frozen=True)
class ConstructConfig(_Config):
    """``interp count construct``: the hand-built histogram model on a (d, m) grid (inert;
    ``validate`` checks it)."""

    d_values: tuple[int, ...] = (8,)
    m_values: tuple[int, ...] = (4, 8, 16)
    n: int | None = None
    beta: float = 20.0
    samples: int = 500
    seed: int = 0
    device: str = "cpu"  # where the float64 model is evaluated

    def validate(self) -> None:
        _check_grid("qc", self.d_values, self.m_values, self.n)
        if self.samples < 1:
            raise ConfigError("samples must be >= 1")
        if not (math.isfinite(self.beta) and 0 < self.beta <= MAX_BETA):
            raise ConfigError(
                f"beta must be in (0, {MAX_BETA:g}], got {self.beta} (the attention is exactly "
                "one-hot in float64 from beta ~400 on; larger values only overflow)"
            )


def run_construct(
    cfg: ConstructConfig, progress: Callable[[int, int], None] | None = None
) -> dict[str, Any]:
    """Accuracy of the hand-built histogram model at every (d, m), float64, on random QC data.

    ``progress(done, total)`` counts evaluated sequences over all cells (from ``(0, total)``)."""
    cfg.validate()
    cells = []
    total = len(cfg.d_values) * len(cfg.m_values) * cfg.samples
    done = [0]

    def tick(n: int) -> None:
        done[0] += n
        if progress is not None:
            progress(done[0], total)

    if progress is not None:
        progress(0, total)
    for d in cfg.d_values:
        for m in cfg.m_values:
            model = build_histogram_model(d, m, cfg.n, cfg.beta, cfg.seed).to(cfg.device)
            task = _task("qc", m, cfg.n, "uniform", "uniform")
            result = evaluate_count_model(model, task, cfg.samples, cfg.seed, on_chunk=tick)
            cells.append(
                {"d": d, "m": m, "n": task.n, **result, "exact": result["accuracy"] == 1.0}
            )
    return {"cells": cells, **summarise(cells)}
