"""Positional-encoding benchmark: one model per encoding on the same task, data and seeds.

For a registered task, every (encoding, seed) model is trained on the same sample stream
(``TaskSource`` keyed by the seed) from the same initial seed, then evaluated on fixed
evaluation sets of every split the task declares in ``eval_splits`` (``val`` and the
out-of-distribution ones; tasks without the attribute get ``val`` only).  Reported per split:
token error (wrong scored tokens / scored tokens) and sequence error (sequences with any wrong
scored token), each as the mean over seeds with a 95% t-interval; and error by scored position
(pooled over seeds) for the "error vs length" figure.  For CoPE, attention maps built from
positions only (the softmax of ``q_i . e[p_ij]`` alone) for a few evaluation examples.

Text (optional): the same encodings trained on the built-in corpus (byte tokens; prose and
code mixed) at ``text_ctx``; held-out perplexity on prose and on code separately, at
``text_ctx`` and at longer evaluation contexts (whole blocks, and only the positions past the
training context).  Absolute positions cannot go past the training context (``None``).

The experiment around it (run directory, one cell per finished model in the run's cell store,
resume, typed results, headline) is :mod:`interp.experiments.pe_bench`; ``interp.experiments.pe_bench.run_pe_bench`` runs
it in memory and returns the results as ``results.json`` holds them.
"""

from __future__ import annotations

from typing import Any

# the parts live in modules of their own (config, eval, cells, task, text); the imports marked
# noqa keep their names importable from interp.analysis.pe_bench, as before the split
from interp.analysis.pe_bench_cells import (  # noqa: F401
    TEXT_KINDS,
    _load_cell,
    _save_cell,
    _train_model,
    cell_key,
    cell_stores,
    check_saved_cells,
    weights_path,
)
from interp.analysis.pe_bench_config import (
    PEBenchConfig,
    ProgressFn,
    check_variants,  # noqa: F401
)
from interp.analysis.pe_bench_eval import (  # noqa: F401
    EVAL_SEED,
    eval_sets,
    evaluate_errors,
    interval,
    position_only_maps,
)
from interp.analysis.pe_bench_task import (  # noqa: F401
    _task_cell,
    format_table,
    run_task_bench,
    task_cell_job,
)
from interp.analysis.pe_bench_text import (  # noqa: F401
    format_text_table,
    run_text_bench,
    text_data,
    text_perplexity,
)
from interp.runs import RunDir

KIND = "pe-bench"


def bench_parts(
    cfg: PEBenchConfig,
    progress: ProgressFn,
    run: RunDir | None = None,
    weights: bool = True,
    executor: Any = None,
) -> dict[str, Any]:
    """The task and text parts of the results (those the config asks for; ``executor`` trains
    the task cells and the text models).  With ``run`` each
    finished (encoding, seed) model's results are saved in its cell store at once (atomically)
    and a rerun skips them: each cell depends on its seed alone, so a bench killed at any
    moment and run again ends with the same results as an uninterrupted one."""
    stores = cell_stores(run) if run is not None else None
    parts: dict[str, Any] = {}
    if cfg.task is not None:
        parts["task"] = run_task_bench(
            cfg, progress, stores, weights and run is not None, executor=executor
        )
    if cfg.text:
        parts["text"] = run_text_bench(cfg, progress, stores, executor=executor)
    return parts
