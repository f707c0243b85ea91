"""The task part of the positional-encoding benchmark: every (encoding, seed) model trained on
the same sample stream of a registered task and scored on its evaluation splits; the table of
token error per encoding (mean over seeds, 95% t-interval), error by position, CoPE's maps."""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

from interp.analysis import pe_bench_cells
from interp.analysis.pe_bench_cells import _curve, _load_cell, _save_cell, weights_path
from interp.analysis.pe_bench_config import PEBenchConfig, ProgressFn
from interp.analysis.pe_bench_eval import (
    _pooled_by_position,
    eval_sets,
    evaluate_errors,
    interval,
    position_only_maps,
)
from interp.cells import CellStore
from interp.executors import LocalExecutor
from interp.models.positional import build_positional


def run_task_bench(
    cfg: PEBenchConfig,
    progress: ProgressFn,
    stores: Mapping[str, CellStore] | None = None,
    weights: bool = False,
    executor: Any = None,
) -> dict[str, Any]:
    """Every (encoding, seed) cell; with ``stores`` (the run's cells), cells saved there are not
    trained again and each newly finished one is saved there (atomically) as it finishes; with
    ``weights`` its final weights go to ``RUN/models/`` first.  ``executor``
    (:mod:`interp.executors`; default local: one after another here) trains the cells; this
    process writes them."""
    from interp.tasks import build_task
    from interp.train.checkpoint import weights_bytes

    task = build_task(cfg.task or "", cfg.task_options)
    overrides = task.model_overrides()
    sets = eval_sets(task, cfg.eval_sequences, cfg.batch_size)
    found, todo = _saved_cells(cfg, progress, stores, list(sets))
    executor = executor or LocalExecutor()
    if executor.in_process:

        def work(item: tuple[str, int]) -> dict[str, Any]:
            pe, seed = item
            progress(f"{cfg.task}: training {pe} (seed {seed}, {cfg.steps} steps)")
            return _task_cell(cfg, task, overrides, sets, pe, seed, weights, stores)

    else:  # a task per cell, anywhere: it rebuilds the task and its evaluation sets
        work = partial(task_cell_job, cfg, weights)
        progress(f"{cfg.task}: {len(todo)} models as {executor.name} tasks ({cfg.steps} steps)")

    def save(index: int, cell: dict[str, Any]) -> None:
        pe, seed = todo[index]
        state = cell.pop("_weights", None)
        if stores is not None and state is not None:  # before the cell: a saved cell
            tree = stores["task"].run.tree  # has its weights
            tree.write_bytes(weights_path(pe, seed), weights_bytes(state))
        found[pe, seed] = _save_cell(stores, "task", cell)
        if not executor.in_process:
            progress(
                f"{cfg.task}: {pe} (seed {seed}) done ({len(found)}/{len(cfg.encodings) * len(cfg.seeds)} cells)"
            )

    executor.map(work, todo, save)
    return {
        "task": cfg.task,
        "task_options": dict(cfg.task_options),
        "model_overrides": overrides,
        **_summary(cfg, found, list(sets)),
    }


def _saved_cells(
    cfg: PEBenchConfig,
    progress: ProgressFn,
    stores: Mapping[str, CellStore] | None,
    splits: list[str],
) -> tuple[dict[tuple[str, int], dict[str, Any]], list[tuple[str, int]]]:
    """The cells an earlier run saved, by (encoding, seed), and the (encoding, seed) pairs
    still to train, in the order of the config."""
    found: dict[tuple[str, int], dict[str, Any]] = {}
    todo: list[tuple[str, int]] = []
    for pe in cfg.encodings:
        for seed in cfg.seeds:
            cell = _load_cell(stores, "task", pe, seed, (splits,))
            if cell is None:
                todo.append((pe, seed))
            else:
                progress(f"{cfg.task}: {pe} (seed {seed}) already done")
                found[pe, seed] = cell
    return found, todo


def _summary(
    cfg: PEBenchConfig, found: dict[tuple[str, int], dict[str, Any]], splits: list[str]
) -> dict[str, Any]:
    """The finished cells as the results hold them: the splits, the table of errors per
    encoding (mean over seeds, 95% t-interval), the runs, error by position and CoPE's maps."""
    runs: list[dict[str, Any]] = []
    maps: list[dict[str, Any]] = []
    for pe in cfg.encodings:
        for seed in cfg.seeds:
            cell = found[pe, seed]
            maps.extend(cell.pop("cope_maps", []))
            runs.append(cell)
    table = []
    variants = cfg.labels()
    for pe in cfg.encodings:
        row: dict[str, Any] = {"pe": pe, "variant": variants[pe]}
        for split in splits:
            mine = [r["errors"][split] for r in runs if r["pe"] == pe]
            row[split] = interval([100 * e["token_error"] for e in mine], 0, 100)
            row[f"{split}_sequence"] = interval([100 * e["sequence_error"] for e in mine], 0, 100)
        table.append(row)
    by_pos = {}
    for pe in cfg.encodings:
        by_pos[pe] = _pooled_by_position([r for r in runs if r["pe"] == pe], splits)
    return {
        "splits": splits,
        "table": table,
        "runs": runs,
        "error_by_position": by_pos,
        "cope_maps": maps,
    }


def task_cell_job(cfg: PEBenchConfig, weights: bool, item: tuple[str, int]) -> dict[str, Any]:
    """One (encoding, seed) cell from the config alone (a Ray task): the task and its
    evaluation sets rebuilt (deterministic), the model trained and evaluated."""
    from interp.tasks import build_task

    task = build_task(cfg.task or "", cfg.task_options)
    sets = eval_sets(task, cfg.eval_sequences, cfg.batch_size)
    pe, seed = item
    return _task_cell(cfg, task, task.model_overrides(), sets, pe, seed, weights, None)


def _task_cell(
    cfg: PEBenchConfig,
    task: Any,
    overrides: Mapping[str, Any],
    sets: Mapping[str, list[Any]],
    pe: str,
    seed: int,
    weights: bool,
    stores: Mapping[str, CellStore] | None,
) -> dict[str, Any]:
    """Train and evaluate one (encoding, seed) model; fully determined by ``seed``.  The
    position-only maps of an encoding that has them (the registry says: CoPE) come from the
    first seed's model."""
    from interp.train.sources import TaskSource

    mcfg = cfg.model_config(pe, **overrides)
    tcfg = cfg.train_config(seed, cfg.steps)
    source = TaskSource(task, tcfg.batch_size, seed, tcfg.eval_batches)
    what = f"{cfg.task}: encoding {pe!r} seed {seed}"
    store = stores["task"] if stores else None
    # called through its module, so that one replacement (a test's) reaches task and text cells
    model, rows = pe_bench_cells._train_model(mcfg, tcfg, source, what, store)
    errors = {split: evaluate_errors(model, b, cfg.device) for split, b in sets.items()}
    cell: dict[str, Any] = {"pe": pe, "seed": seed, "errors": errors, "curve": _curve(rows)}
    if weights:
        cell["_weights"] = model.state_dict()
    if build_positional(mcfg).position_maps and seed == cfg.seeds[0]:
        maps = []
        example = sets["val"][0].inputs[: cfg.n_maps].to(cfg.device)
        for index in range(example.shape[0]):
            for entry in position_only_maps(model, example[index : index + 1]):
                entry["example"] = index
                maps.append(entry)
        names = task.token_names()
        if names:
            for entry in maps:
                row = example[entry["example"], : len(entry["pattern"])].tolist()
                entry["tokens"] = [names[t] for t in row]
        cell["cope_maps"] = maps
    return cell


def format_table(task_results: Mapping[str, Any]) -> list[list[str]]:
    """Rows ``[pe, split1, split2, ...]`` of "mean [lo, hi]" token error %, for printing."""
    out = []
    for row in task_results["table"]:
        cells = [row["pe"]]
        for split in task_results["splits"]:
            iv = row[split]
            cells.append(
                f"{iv['mean']:.1f}" + (f" [{iv['lo']:.1f}, {iv['hi']:.1f}]" if iv["n"] > 1 else "")
            )
        out.append(cells)
    return out
