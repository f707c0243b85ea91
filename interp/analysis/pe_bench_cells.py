"""The benchmark's cells: one finished (part, encoding, seed) model's results in the run's cell
store (task cells and text cells differ in shape), checked when read back, saved atomically as
each finishes; and :func:`_train_model`, which trains one cell's model from its seed alone."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from interp.analysis.pe_bench_config import PEBenchConfig
from interp.cells import FOLDER, CellStore
from interp.config import ModelConfig, TrainConfig
from interp.io import dumps_json
from interp.runs import ListOf, MapOf, Num, RunDir

TEXT_KINDS = ("prose", "code")


def _train_model(
    cfg: ModelConfig, tcfg: TrainConfig, source: Any, what: str = "", store: CellStore | None = None
) -> tuple[Any, list[dict[str, Any]]]:
    """Train one model from its seed alone (nothing else carries over between cells).  A
    non-finite value is a :class:`NumericalError` naming the cell (its fields, not its text)
    and what survives (the finished cells in ``store``)."""
    from interp.errors import NumericalError
    from interp.models.transformer import HookedTransformer
    from interp.seed import seed_everything
    from interp.train.loop import train

    seed_everything(tcfg.seed)
    model = HookedTransformer(cfg, seed=tcfg.seed)
    rows: list[dict[str, Any]] = []
    try:
        train(model, source, tcfg, on_metrics=rows.append)
    except NumericalError as e:
        if store is None:
            kept = "no cell was saved"
        else:
            kept = f"the {len(store.keys())} finished cells are kept in {store.run.path / FOLDER}"
        cell = what or cfg.positional
        message = f"pe-bench: {cell} went non-finite ({e.reason}); {kept}"
        raise e.replace(cell=cell, kept=kept, message=message) from None
    return model.eval(), rows


def cell_key(part: str, pe: str, seed: int) -> str:
    """The cell-store key of one finished (part, encoding, seed) model (part: task/text):
    ``RUN/cells/<part>-<pe>-seed<seed>.json``."""
    return f"{part}-{pe}-seed{seed}"


def weights_path(pe: str, seed: int) -> str:
    """Where a task model's final weights go, relative to the run."""
    return f"models/{pe}-seed{seed}.safetensors"


_CURVE = {"step": ListOf(int), "loss": ListOf(Num(none=True))}
_TASK_CELL = {
    "pe": str,
    "seed": int,
    "curve": _CURVE,
    "errors": MapOf(
        {
            "token_error": Num(0, 1),
            "sequence_error": Num(0, 1),
            "scored": int,
            "sequences": int,
            "by_pos": MapOf(ListOf(int, 2)),
        }
    ),
}
_TEXT_CELL = {
    "pe": str,
    "seed": int,
    "curve": _CURVE,
    "perplexity": MapOf(MapOf(Num(1, none=True))),
    "perplexity_tail": MapOf(MapOf(Num(1, none=True))),
}


def cell_stores(run: RunDir) -> dict[str, CellStore]:
    """The run's cell store, one view per part (task cells and text cells differ in shape)."""
    return {
        "task": CellStore(run, spec=_TASK_CELL, what="pe-bench cell"),
        "text": CellStore(run, spec=_TEXT_CELL, what="pe-bench cell"),
    }


def _cell_check(
    part: str, pe: str, seed: int, keys: tuple[list[str], ...] = ()
) -> Callable[[Mapping[str, Any]], str | None]:
    """What a saved cell must hold beyond its shape: its own (encoding, seed) and ``keys``: the
    splits of a task cell, or the text kinds and evaluation contexts of a text cell."""

    def check(cell: Mapping[str, Any]) -> str | None:
        if cell["pe"] != pe or cell["seed"] != seed:
            return f"it is the cell of {cell['pe']} seed {cell['seed']}, not {pe} {seed}"
        if len(cell["curve"]["step"]) != len(cell["curve"]["loss"]):
            return "curve.step and curve.loss differ in length"
        if part == "task" and keys and sorted(cell["errors"]) != sorted(keys[0]):
            return f"errors holds the splits {sorted(cell['errors'])}, not {keys[0]}"
        if part == "text" and keys:
            kinds, contexts = keys
            for name in ("perplexity", "perplexity_tail"):
                if sorted(cell[name]) != sorted(kinds):
                    return f"{name} holds {sorted(cell[name])}, not {kinds}"
            for kind in kinds:
                if set(cell["perplexity"][kind]) != set(contexts):
                    return f"perplexity.{kind} is not at the contexts {contexts}"
        return None

    return check


def _load_cell(
    stores: Mapping[str, CellStore] | None,
    part: str,
    pe: str,
    seed: int,
    keys: tuple[list[str], ...] = (),
) -> dict[str, Any] | None:
    """A finished cell saved by an earlier (interrupted) run, validated (one line naming the
    file otherwise), or None."""
    if stores is None:
        return None
    return stores[part].get(cell_key(part, pe, seed), _cell_check(part, pe, seed, keys))


def _text_contexts(cfg: PEBenchConfig) -> list[str]:
    return [str(c) for c in sorted(set(cfg.text_eval_ctx) | {cfg.text_ctx})]


def check_saved_cells(cfg: PEBenchConfig, run: RunDir | None) -> None:
    """Validate every cell an earlier run saved, before anything trains (a bad one is refused
    now, not after hours of the other cells)."""
    if run is None:
        return
    stores = cell_stores(run)
    if cfg.task is not None:
        from interp.tasks import build_task

        splits = list(getattr(build_task(cfg.task, cfg.task_options), "eval_splits", ("val",)))
        for pe in cfg.encodings:
            for seed in cfg.seeds:
                _load_cell(stores, "task", pe, seed, (splits,))
    if cfg.text:
        for pe in cfg.text_encodings:
            _load_cell(stores, "text", pe, cfg.seeds[0], (list(TEXT_KINDS), _text_contexts(cfg)))


def _save_cell(
    stores: Mapping[str, CellStore] | None, part: str, cell: dict[str, Any]
) -> dict[str, Any]:
    """Save a finished cell atomically; return it as a resumed run would read it back."""
    cell = json.loads(dumps_json(cell))
    if stores is not None:
        stores[part].put(cell_key(part, cell["pe"], cell["seed"]), cell)
    return cell


def _curve(rows: list[dict[str, Any]]) -> dict[str, list[float]]:
    train_rows = [r for r in rows if r.get("split") == "train"]
    return {"step": [r["step"] for r in train_rows], "loss": [r["loss"] for r in train_rows]}
