"""Future-token probes end to end on a loaded model (``interp probe`` runs this through the
experiments layer, :mod:`interp.experiments.probe`).

Order (nothing is written before every check has passed):

1. :func:`prepare`: validate the request against the model (horizon, layers, dataset size,
   vocabulary-probe memory) and tokenise the held-out data;
2. (the experiments layer creates the run directory);
3. :func:`run_probes`: one pass over the fitting and validation blocks, each forward stopped at
   the last hook read (no final norm, no logits): every layer's residual stream and the final
   state go into streamed ridge statistics for all layers × horizons at once (and, for the
   vocabulary probe, the fitting activations into memory);
4. solve each probe, choose λ per (layer, horizon) on the validation blocks;
5. one pass over the test blocks: held-out top-1 / top-5 / cross-entropy per layer × horizon
   with bootstrap intervals, beside the unigram, bigram and (k = 1) model baselines, all over
   the same test positions: every one, or ``test_positions`` of them drawn uniformly (seeded)
   when the test blocks hold more; only those are decoded (:mod:`probes.decode`);
6. (the experiments layer writes ``results.json``, the ``analyses/probe`` copy and reports).

Only the probe kinds asked for are computed (``--probe vocab`` fits no ridge).  The first fitting
batch and a decode of a few rows are timed; from them come the estimated duration (a progress
note) and the bar's weights (% of the estimated work, so a test batch, ~10 decodes of the
vocabulary per position, moves it by its own cost).

Sizes where it matters (GPT-2 small: d_model 768, vocabulary 50257): the ridge products run in
float32 into float64 totals from d_model :data:`FLOAT32_PRODUCTS_FROM` up, and the decode in
bfloat16 when this CPU's native bfloat16 is measured faster (``decode_dtype="auto"``); smaller
models keep float64 products and float32 decoding, so their numbers are unchanged.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch

from interp.progress import SILENT, Progress, Work
from probes.collect import ActivationBatch

# each step is a module of its own (config, prepare, statistics, evaluate, results, estimate);
# the imports marked noqa keep their names importable from probes.run, as before the split
from probes.config import PROBE_KINDS, ProbeConfig, parse_layers  # noqa: F401
from probes.decode import DecodeChoice, Decoder, choose_dtype
from probes.estimate import _phase_costs, estimate_memory  # noqa: F401
from probes.evaluate import _dense_sums, evaluate  # noqa: F401
from probes.prepare import (  # noqa: F401
    Prepared,
    gpt2_style_bpe,
    model_n_ctx,
    prepare,
    select_test_positions,
)
from probes.results import probe_results
from probes.statistics import (  # noqa: F401
    FLOAT32_PRODUCTS_FROM,
    BatchDone,
    FitState,
    _all_reduce_stats,
    _shift_like_one_process,
    collect_statistics,
    ridge_products,
    solve_probes,
)
from probes.vocab import fit_vocab_probe

CALIBRATION_ROWS = 128  # final states decoded to time (and check) the decode


def run_probes(
    model: Any,
    prep: Prepared,
    progress: Progress = SILENT,
) -> dict[str, Any]:
    """Fit and evaluate every probe of ``prep``; returns the results dict (JSON-ready)."""
    cfg = prep.config
    torch.manual_seed(cfg.seed)
    work = Work(progress, "probe")
    decode: dict[str, Any] = {}
    calibrate, batch_done = _first_batch_plan(model, prep, progress, work, decode)
    t0 = time.perf_counter()
    state = collect_statistics(model, prep, on_batch=batch_done, on_first=calibrate)
    fits = solve_probes(state, cfg.horizon) if state.train else {}
    if fits:
        work.step("solve")
    t_fit = time.perf_counter() - t0
    vocab_probe = None
    t_vocab = 0.0
    if "vocab" in cfg.kinds:
        t1 = time.perf_counter()
        vocab_probe = _fit_vocab(state, prep)
        t_vocab = time.perf_counter() - t1
        work.step("vocab")
    t2 = time.perf_counter()
    choice: DecodeChoice = decode["choice"]
    decoder = Decoder(model, choice.dtype)
    sums = evaluate(
        model, prep, fits, state, vocab_probe, on_batch=lambda *a: work.step("test"),
        decoder=decoder,
    )  # fmt: skip
    t_eval = time.perf_counter() - t2
    timing = {"collect_and_fit": t_fit, "vocab_fit": t_vocab, "evaluate": t_eval}
    return probe_results(
        model, prep, state, fits, vocab_probe, sums, decoder, choice, timing,
        work.total_seconds(),
    )  # fmt: skip


def _first_batch_plan(
    model: Any, prep: Prepared, progress: Progress, work: Work, decode: dict[str, Any]
) -> tuple[Callable[[ActivationBatch], None], BatchDone]:
    """The hooks of the fitting pass: ``calibrate`` times the decode on the first batch (its
    choice into ``decode["choice"]``); ``batch_done`` plans the phases from the first batch's
    timing (the estimated duration, a progress note) and then steps the bar."""
    cfg = prep.config
    first: dict[str, float] = {}

    def calibrate(batch: ActivationBatch) -> None:
        d = int(model.cfg.d_model)
        states = batch.final[:, :-1].reshape(-1, d)[:CALIBRATION_ROWS]
        targets = batch.tokens[:, 1:].reshape(-1)[:CALIBRATION_ROWS]
        decode["choice"] = choose_dtype(model, cfg.decode_dtype, states, targets)

    def batch_done(phase: str, forward_s: float, rest_s: float) -> None:
        if not first:  # the first batch: the plan and its estimate
            first.update(forward=forward_s, rest=rest_s)
            for name, (steps, each) in _phase_costs(
                model, prep, forward_s, rest_s, decode["choice"]
            ).items():
                work.phase(name, steps, each)
            progress.note(f"estimated duration {work.describe()} (from the first batch)")
            work.start()
        work.step(phase)

    return calibrate, batch_done


def _fit_vocab(state: FitState, prep: Prepared) -> Any:
    """The vocabulary probe fitted on the kept fitting rows (freed from ``state`` as it goes)."""
    cfg = prep.config
    x_by_layer = {layer: torch.cat(xs) for layer, xs in state.vocab_x.items()}
    state.vocab_x.clear()
    targets = torch.cat(state.vocab_y)
    state.vocab_y.clear()
    vocab_probe = fit_vocab_probe(
        x_by_layer,
        targets,
        torch.from_numpy(state.ngrams.unigram),
        cfg.top_k,
        epochs=cfg.vocab_epochs,
        seed=cfg.seed,
    )
    del x_by_layer, targets
    return vocab_probe
