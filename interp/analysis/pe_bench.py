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

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any, ClassVar

import torch

from interp.cells import FOLDER, CellStore
from interp.config import ModelConfig, OptimConfig, TrainConfig, _Config
from interp.errors import ConfigError
from interp.executors import LocalExecutor
from interp.io import dumps_json
from interp.models import check_model_config
from interp.models.positional import build_positional, positional_names
from interp.runs import ListOf, MapOf, Num, RunDir

KIND = "pe-bench"
EVAL_SEED = 20_240_528
ProgressFn = Callable[[str], None]

_T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306}


@dataclass(frozen=True)
class PEBenchConfig(_Config):
    """``interp pe-bench``: the task, the encodings, the seeds and the model and training sizes
    (``config.json`` holds these fields, ``seed`` = the first seed, and ``variants``).  Inert:
    checked by :meth:`validate`.  ``variants`` is what each encoding is (:meth:`encoding_labels`),
    fixed when the run starts (None until then): a run resumed by an interp that defines one
    differently is refused, its saved cells would mix two definitions."""

    task: str | None = "flipflop"
    task_options: Mapping[str, Any] = field(default_factory=dict)
    encodings: tuple[str, ...] = ("none", "absolute", "rope", "alibi", "cope")
    positional_options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    seeds: tuple[int, ...] = (0, 1, 2)
    steps: int = 500
    batch_size: int = 32
    lr: float = 1e-3
    n_layers: int = 2
    d_model: int = 64
    n_heads: int = 4
    d_mlp: int = 256
    eval_sequences: int = 256
    n_maps: int = 2  # examples with CoPE position-only attention maps
    text: bool = False
    text_encodings: tuple[str, ...] = ("absolute", "rope", "cope")
    text_ctx: int = 64
    text_eval_ctx: tuple[int, ...] = (64, 128, 256)
    text_steps: int = 300
    text_max_chars: int = 400_000
    text_eval_blocks: int = 32
    device: str = "cpu"
    variants: Mapping[str, str] | None = None  # resolved when the run starts

    resume_free: ClassVar[frozenset[str]] = frozenset()
    resume_resolved: ClassVar[frozenset[str]] = frozenset({"variants"})

    def __post_init__(self) -> None:  # lists as tuples (no checks here: see validate)
        for name in ("encodings", "seeds", "text_encodings", "text_eval_ctx"):
            if isinstance(getattr(self, name), list):
                object.__setattr__(self, name, tuple(getattr(self, name)))

    @property
    def seed(self) -> int:
        return self.seeds[0] if self.seeds else 0

    def validate(self) -> None:
        from interp.resources import MAX_SAMPLES, MAX_STEPS, check_limit

        if self.task is None and not self.text:
            raise ConfigError("pe-bench needs a task, text, or both")
        known = positional_names()
        for pe in (*self.encodings, *(self.text_encodings if self.text else ())):
            if pe not in known:
                raise ConfigError(
                    f"unknown positional encoding {pe!r}; choose from {', '.join(known)}"
                )
        if not self.encodings and self.task is not None:
            raise ConfigError("pe-bench needs at least one encoding")
        if not self.seeds:
            raise ConfigError("pe-bench needs at least one seed")
        for name in (
            "steps",
            "batch_size",
            "eval_sequences",
            "text_steps",
            "text_ctx",
            "text_max_chars",
            "text_eval_blocks",
        ):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if any(c < 1 for c in self.text_eval_ctx):
            raise ConfigError(f"text_eval_ctx must be >= 1, got {list(self.text_eval_ctx)}")
        if self.task is not None:
            from interp.tasks import build_task

            build_task(self.task, self.task_options)  # unknown task or bad options: one line
        for pe in set(self.encodings) | set(self.text_encodings):
            check_model_config(self.model_config(pe))  # bad positional options: one line
        for steps in (self.steps, self.text_steps):  # the learning rate: one line, before output
            self.train_config(self.seeds[0], steps).validate()
        check_limit(self.steps, "--steps", MAX_STEPS, "steps per model")
        check_limit(self.text_steps, "--text-steps", MAX_STEPS, "steps per model")
        check_limit(self.eval_sequences, "--eval-sequences", MAX_SAMPLES, "sequences per split")

    def model_config(self, pe: str, **overrides: Any) -> ModelConfig:
        return ModelConfig(
            n_layers=self.n_layers,
            d_model=self.d_model,
            n_heads=self.n_heads,
            d_mlp=self.d_mlp,
            positional=pe,
            positional_options=dict(self.positional_options.get(pe, {})),
            **overrides,
        )

    def train_config(self, seed: int, steps: int) -> TrainConfig:
        return TrainConfig(
            steps=steps,
            batch_size=self.batch_size,
            eval_every=steps,
            eval_batches=2,
            checkpoint_every=steps,
            log_every=max(1, steps // 25),
            seed=seed,
            device=self.device,
            optim=OptimConfig(lr=self.lr, warmup_steps=min(50, steps // 10)),
        )

    def encoding_labels(self) -> dict[str, str]:
        """How results and reports name each encoding: its label (CoPE: ``cope`` as the public
        code defines it, or the options that differ, interp's own variants marked as such)."""
        names = dict.fromkeys((*self.encodings, *(self.text_encodings if self.text else ())))
        return {pe: build_positional(self.model_config(pe)).label() for pe in names}

    def resolved(self) -> PEBenchConfig:
        """This config with ``variants`` fixed by this interp's definitions."""
        return self.replace(variants=self.encoding_labels())

    def labels(self) -> dict[str, str]:
        return dict(self.variants) if self.variants is not None else self.encoding_labels()

    def to_dict(self) -> dict[str, Any]:
        """What ``config.json`` holds (beside ``kind`` and ``schema``): ``seed`` (the first
        seed, read by nothing but people), then the fields in order."""
        out = super().to_dict()
        return {"seed": self.seed, **out}

    def results_dict(self) -> dict[str, Any]:
        """The config as ``results.json`` records it (its fields, no ``seed``)."""
        out = self.to_dict()
        out.pop("seed")
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PEBenchConfig:
        if not isinstance(data, Mapping):
            raise ConfigError(f"{cls.__name__} must be a JSON object, got {type(data).__name__}")
        return super().from_dict({k: v for k, v in data.items() if k != "seed"})


def check_variants(
    stored: Mapping[str, str] | None,
    now: Mapping[str, str],
    redefined: set[str] | frozenset = frozenset(),
) -> None:
    """Refuse to resume a run whose encodings this interp defines differently.  A run started
    by an interp that recorded no ``variants`` (before CoPE followed the public code) is
    refused for the encodings ``redefined`` since then (the registry says which: CoPE, whose
    per-head tables are its earlier definition)."""
    before = (
        dict(stored)
        if stored is not None
        else {pe: v for pe, v in now.items() if pe not in redefined}
    )
    changed = [pe for pe in now if before.get(pe) != now[pe]]
    if changed:
        pe = changed[0]
        was = before.get(pe)
        raise ConfigError(
            f"--resume: this interp defines {pe!r} as {now[pe]!r}, the run was started with "
            + (
                f"{was!r}"
                if was
                else "an earlier definition (before CoPE followed the public "
                "code: one table per head)"
            )
            + "; its finished models would mix two definitions: use a new --out"
        )


def interval(values: list[float], lo: float = -math.inf, hi: float = math.inf) -> dict[str, Any]:
    """Mean over seeds with a 95% t-interval clipped to [lo, hi] (one value: zero width)."""
    n = len(values)
    mean = sum(values) / n
    half = 0.0
    if n >= 2:
        sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
        half = _T975.get(n - 1, 1.96) * sd / math.sqrt(n)
    return {
        "mean": mean,
        "lo": max(lo, mean - half),
        "hi": min(hi, mean + half),
        "n": n,
        "values": values,
    }


# --------------------------------------------------------------------------- evaluation


def eval_sets(task: Any, n_sequences: int, batch_size: int) -> dict[str, list[Any]]:
    """Fixed evaluation batches per split, the same for every model."""
    splits = getattr(task, "eval_splits", ("val",))
    out = {}
    for index, split in enumerate(splits):
        g = torch.Generator().manual_seed(EVAL_SEED + index)
        sizes = [batch_size] * (n_sequences // batch_size)
        if n_sequences % batch_size:
            sizes.append(n_sequences % batch_size)
        out[split] = [task.sample(size, g, split) for size in sizes]
    return out


@torch.no_grad()
def evaluate_errors(model: Any, batches: list[Any], device: str = "cpu") -> dict[str, Any]:
    """Token and sequence error over scored positions, and per-position (correct, count)."""
    model.eval()
    wrong_tokens = scored = wrong_seqs = seqs = 0
    by_pos_wrong: dict[int, int] = {}
    by_pos_count: dict[int, int] = {}
    for batch in batches:
        batch = batch.to(device)
        wrong = (model(batch.inputs).argmax(-1) != batch.targets) & batch.mask
        wrong_tokens += int(wrong.sum())
        scored += int(batch.mask.sum())
        wrong_seqs += int(wrong.any(dim=1).sum())
        seqs += batch.inputs.shape[0]
        for pos, w in zip(
            batch.mask.nonzero()[:, 1].tolist(), wrong[batch.mask].tolist(), strict=True
        ):
            by_pos_count[pos] = by_pos_count.get(pos, 0) + 1
            by_pos_wrong[pos] = by_pos_wrong.get(pos, 0) + int(w)
    return {
        "token_error": wrong_tokens / max(scored, 1),
        "sequence_error": wrong_seqs / max(seqs, 1),
        "scored": scored,
        "sequences": seqs,
        "by_pos": {str(p): [by_pos_wrong[p], by_pos_count[p]] for p in sorted(by_pos_count)},
    }


@torch.no_grad()
def position_only_maps(model: Any, tokens: torch.Tensor, max_len: int = 64) -> list[dict[str, Any]]:
    """For each CoPE layer and head: softmax over visible keys of ``q_i . e[p_ij] / sqrt(d)``
    (``q_i . e[p_ij]`` with ``nodiv``), the positional term alone."""
    from interp.models.positional.cope import CopeAttention, causal_mask

    tokens = tokens[:, :max_len]
    layers = [
        i for i, block in enumerate(model.blocks) if isinstance(block.attn.position, CopeAttention)
    ]
    if not layers:
        return []
    names = {f"blocks.{i}.attn.{h}" for i in layers for h in ("hook_q", "hook_cope_pos")}
    _, cache = model.run_with_cache(tokens, names_filter=lambda n: n in names)
    out = []
    for layer in layers:
        part = model.blocks[layer].attn.position
        q, positions = (
            cache[f"blocks.{layer}.attn.hook_q"],
            cache[f"blocks.{layer}.attn.hook_cope_pos"],
        )
        logits = part.position_only_logits(q, positions)
        visible = causal_mask(q.shape[1], q.shape[1], q.device)
        pattern = logits.masked_fill(~visible, float("-inf")).softmax(-1)
        for head in range(pattern.shape[1]):
            out.append(
                {
                    "layer": layer,
                    "head": head,
                    "pattern": pattern[0, head].tolist(),
                    "positions": positions[0, head].tolist(),
                }
            )
    return out


# --------------------------------------------------------------------------- training


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
    found: dict[tuple[str, int], dict[str, Any]] = {}
    todo: list[tuple[str, int]] = []
    for pe in cfg.encodings:
        for seed in cfg.seeds:
            cell = _load_cell(stores, "task", pe, seed, (list(sets),))
            if cell is None:
                todo.append((pe, seed))
            else:
                progress(f"{cfg.task}: {pe} (seed {seed}) already done")
                found[pe, seed] = cell
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
    runs: list[dict[str, Any]] = []
    maps: list[dict[str, Any]] = []
    for pe in cfg.encodings:
        for seed in cfg.seeds:
            cell = found[pe, seed]
            maps.extend(cell.pop("cope_maps", []))
            runs.append(cell)
    splits = list(sets)
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
        "task": cfg.task,
        "task_options": dict(cfg.task_options),
        "model_overrides": overrides,
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
    model, rows = _train_model(mcfg, tcfg, source, what, stores["task"] if stores else None)
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


def _pooled_by_position(runs: list[dict[str, Any]], splits: list[str]) -> dict[str, Any]:
    """Error by scored position, pooled over seeds and splits, in up to 16 equal bins."""
    wrong: dict[int, int] = {}
    count: dict[int, int] = {}
    for run in runs:
        for split in splits:
            for pos, (w, c) in run["errors"][split]["by_pos"].items():
                wrong[int(pos)] = wrong.get(int(pos), 0) + w
                count[int(pos)] = count.get(int(pos), 0) + c
    if not count:
        return {"position": [], "error": [], "count": []}
    top = max(count) + 1
    width = max(1, math.ceil(top / 16))
    bins: dict[int, list[int]] = {}
    for pos, c in count.items():
        b = bins.setdefault(pos // width, [0, 0])
        b[0] += wrong[pos]
        b[1] += c
    keys = sorted(bins)
    return {
        "position": [(k + 0.5) * width for k in keys],
        "error": [100 * bins[k][0] / bins[k][1] for k in keys],
        "count": [bins[k][1] for k in keys],
    }


TEXT_KINDS = ("prose", "code")


def text_data(
    cfg: PEBenchConfig,
) -> tuple[torch.Tensor, dict[str, dict[int, torch.Tensor]], dict[str, int]]:
    """Training blocks (prose and code mixed) and validation blocks per kind and context.

    Each kind is ``builtin:<kind>`` capped at half of ``text_max_chars``, split by document
    with the bench's first seed; validation documents are packed again for every evaluation
    context, always the same tokens: at most ``text_eval_blocks`` blocks of the longest context
    (so perplexities at different contexts differ by the context alone, not by the text).
    """
    from interp.data import ByteTokenizer, load_corpus
    from interp.data.blocks import pack_blocks, split_documents

    tok = ByteTokenizer()
    seed = cfg.seeds[0]
    contexts = sorted(set(cfg.text_eval_ctx) | {cfg.text_ctx})
    train_parts, val, chars = [], {}, {}
    for kind in TEXT_KINDS:
        corpus = load_corpus(f"builtin:{kind}", max_chars=max(1, cfg.text_max_chars // 2))
        train_docs, val_docs = split_documents(corpus.documents, 0.05, seed)
        train_parts.append(pack_blocks(train_docs, tok, cfg.text_ctx))
        # the same held-out tokens at every context: text_eval_blocks blocks of the longest
        n_tokens = len(pack_blocks(val_docs, tok, contexts[-1])[: cfg.text_eval_blocks])
        n_tokens *= contexts[-1]
        val[kind] = {ctx: pack_blocks(val_docs, tok, ctx, n_tokens) for ctx in contexts}
        chars[kind] = corpus.n_chars
    train = torch.cat(train_parts)
    if len(train) == 0 or any(len(v[contexts[-1]]) == 0 for v in val.values()):
        raise ConfigError(
            f"text_max_chars={cfg.text_max_chars} is too small for text_ctx={cfg.text_ctx} and "
            f"evaluation context {contexts[-1]}"
        )
    return train, val, chars


@torch.no_grad()
def text_perplexity(
    model: Any, blocks: torch.Tensor, batch_size: int, device: str, tail_from: int = 0
) -> float | None:
    """exp(mean next-token loss) over ``blocks``; with ``tail_from`` only the predictions made at
    positions >= ``tail_from`` (those a shorter training context never saw).  None: no blocks."""
    from interp.tasks.base import lm_batch
    from interp.train.losses import per_token_loss

    total, count = 0.0, 0
    for i in range(0, len(blocks), batch_size):
        batch = lm_batch(blocks[i : i + batch_size]).to(device)
        batch.mask[:, :tail_from] = False
        total += float(per_token_loss(model(batch.inputs), batch).sum())
        count += int(batch.mask.sum())
    return math.exp(total / count) if count else None


def run_text_bench(
    cfg: PEBenchConfig, progress: ProgressFn, stores: Mapping[str, CellStore] | None = None
) -> dict[str, Any]:
    """Byte-level perplexity on held-out prose and code, per evaluation context (one model per
    encoding, seeded with the first seed; finished ones saved in and resumed from ``stores``).

    ``perplexity[kind][ctx]`` averages every prediction of a ``ctx``-long block;
    ``perplexity_tail[kind][ctx]`` (ctx > training context) only the predictions at positions
    the training context never reached.  Absolute positions end at the training context: None.
    """
    from interp.data import ByteTokenizer
    from interp.train.sources import CorpusSource

    tok = ByteTokenizer()
    seed = cfg.seeds[0]
    train, val, chars = text_data(cfg)
    contexts = sorted(val[TEXT_KINDS[0]])
    # the CorpusSource's own validation (only logged during training) reads prose blocks
    eval_source = val[TEXT_KINDS[0]][cfg.text_ctx]
    rows = []
    for pe in cfg.text_encodings:
        cell = _load_cell(stores, "text", pe, seed, (list(TEXT_KINDS), _text_contexts(cfg)))
        if cell is not None:
            progress(f"text: {pe} already done")
            rows.append(cell)
            continue
        progress(f"text: training {pe} (context {cfg.text_ctx}, {cfg.text_steps} steps)")
        mcfg = cfg.model_config(pe, n_ctx=cfg.text_ctx, d_vocab=tok.vocab_size)
        tcfg = cfg.train_config(seed, cfg.text_steps)
        source = CorpusSource(train, eval_source, cfg.batch_size, seed, 2)
        what = f"text: encoding {pe!r} seed {seed}"
        model, metrics = _train_model(mcfg, tcfg, source, what, stores["text"] if stores else None)
        ppl: dict[str, dict[str, float | None]] = {}
        tail: dict[str, dict[str, float | None]] = {}
        for kind in TEXT_KINDS:
            ppl[kind], tail[kind] = {}, {}
            for ctx in contexts:
                beyond = ctx > cfg.text_ctx
                if beyond and model.pos_embed is not None:
                    ppl[kind][str(ctx)] = tail[kind][str(ctx)] = None
                    continue
                blocks = val[kind][ctx]
                ppl[kind][str(ctx)] = text_perplexity(model, blocks, cfg.batch_size, cfg.device)
                if beyond:
                    tail[kind][str(ctx)] = text_perplexity(
                        model, blocks, cfg.batch_size, cfg.device, tail_from=cfg.text_ctx
                    )
        cell = {"pe": pe, "seed": seed, "perplexity": ppl, "perplexity_tail": tail}
        rows.append(_save_cell(stores, "text", {**cell, "curve": _curve(metrics)}))
    return {
        "corpus": "builtin:prose + builtin:code",
        "kinds": list(TEXT_KINDS),
        "chars": chars,
        "train_blocks": len(train),
        "eval_blocks": {kind: {str(c): len(b) for c, b in v.items()} for kind, v in val.items()},
        "tokenizer": "byte",
        "variants": {pe: label for pe, label in cfg.labels().items() if pe in cfg.text_encodings},
        "train_ctx": cfg.text_ctx,
        "eval_ctx": contexts,
        "seed": seed,
        "rows": rows,
    }


def bench_parts(
    cfg: PEBenchConfig,
    progress: ProgressFn,
    run: RunDir | None = None,
    weights: bool = True,
    executor: Any = None,
) -> dict[str, Any]:
    """The task and text parts of the results (those the config asks for; ``executor`` trains
    the task cells, the text models train here).  With ``run`` each
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
        parts["text"] = run_text_bench(cfg, progress, stores)
    return parts


def format_text_table(text_results: Mapping[str, Any]) -> list[list[str]]:
    """Rows ``[pe, kind, ppl@ctx1, ...]``; past the training context also the perplexity of the
    positions beyond it in parentheses; "n/a" where the encoding cannot run that long."""
    out = []
    train_ctx = text_results["train_ctx"]
    for row in text_results["rows"]:
        for kind in text_results["kinds"]:
            cells = [row["pe"], kind]
            for ctx in text_results["eval_ctx"]:
                value = row["perplexity"][kind].get(str(ctx))
                if value is None:
                    cells.append("n/a")
                    continue
                tail = row["perplexity_tail"][kind].get(str(ctx)) if ctx > train_ctx else None
                cells.append(f"{value:.2f}" + (f" ({tail:.2f})" if tail is not None else ""))
            out.append(cells)
    return out


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
