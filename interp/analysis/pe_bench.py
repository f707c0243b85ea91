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

``run_pe_bench`` is pure apart from the optional ``weights_dir`` it writes final weights to and
the optional ``cells_dir`` it saves each finished model's results in (and resumes from).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from interp.config import ModelConfig, OptimConfig, TrainConfig
from interp.errors import ConfigError, InterpError, NumericalError
from interp.io import atomic_write_json, dumps_json
from interp.models import check_model_config
from interp.models.positional import build_positional, positional_names
from interp.models.positional.cope import CopeAttention, causal_mask
from interp.models.transformer import HookedTransformer
from interp.runs import ListOf, MapOf, Num, ShapeError, read_cell
from interp.seed import seed_everything
from interp.tasks import build_task
from interp.tasks.base import lm_batch
from interp.train.loop import train
from interp.train.sources import CorpusSource, TaskSource

KIND = "pe-bench"
EVAL_SEED = 20_240_528
ProgressFn = Callable[[str], None]

_T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306}


@dataclass(frozen=True)
class PEBenchConfig:
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

    def __post_init__(self) -> None:
        for name in ("encodings", "seeds", "text_encodings", "text_eval_ctx"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
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
            build_task(self.task, self.task_options)  # unknown task or bad options: one line
        for pe in set(self.encodings) | set(self.text_encodings):
            check_model_config(self.model_config(pe))  # bad positional options: one line
        self.train_config(self.seeds[0], self.steps).validate()  # the learning rate: one line
        self.train_config(self.seeds[0], self.text_steps).validate()

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

    def variants(self) -> dict[str, str]:
        """How results and reports name each encoding: its label (CoPE: ``cope`` as the public
        code defines it, or the options that differ, interp's own variants marked as such)."""
        names = dict.fromkeys((*self.encodings, *(self.text_encodings if self.text else ())))
        return {pe: build_positional(self.model_config(pe)).label() for pe in names}

    def to_dict(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in self.__dataclass_fields__}
        out["task_options"] = dict(self.task_options)
        out["positional_options"] = {k: dict(v) for k, v in self.positional_options.items()}
        for k in ("encodings", "seeds", "text_encodings", "text_eval_ctx"):
            out[k] = list(out[k])
        # what each encoding is: a run resumed by an interp that defines one differently is
        # refused (its saved cells would mix two definitions)
        out["variants"] = self.variants()
        return out


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
    cfg: ModelConfig, tcfg: TrainConfig, source: Any, what: str = "", cells_dir: Path | None = None
) -> tuple[Any, list[dict[str, Any]]]:
    """Train one model from its seed alone (nothing else carries over between cells)."""

    seed_everything(tcfg.seed)
    model = HookedTransformer(cfg, seed=tcfg.seed)
    rows: list[dict[str, Any]] = []
    try:
        train(model, source, tcfg, on_metrics=rows.append)
    except NumericalError as e:
        if cells_dir is None:
            kept = "no cell was saved"
        else:
            n = len(list(Path(cells_dir).glob("*.json")))
            kept = f"the {n} finished cells are kept in {cells_dir}"
        message = f"pe-bench: {what or cfg.positional} went non-finite ({e.reason}); {kept}"
        raise e.replace(cell=what or cfg.positional, kept=kept, message=message) from None
    return model.eval(), rows


def cell_path(cells_dir: Path, part: str, pe: str, seed: int) -> Path:
    """Where one finished (part, encoding, seed) model's results are saved (part: task/text)."""
    return Path(cells_dir) / f"{part}-{pe}-seed{seed}.json"


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


def _load_cell(
    cells_dir: Path | None, part: str, pe: str, seed: int, keys: tuple[list[str], ...] = ()
) -> dict[str, Any] | None:
    """A finished cell saved by an earlier (interrupted) run, validated (one line naming the
    file otherwise), or None.  ``keys``: the splits a task cell must hold, or the text kinds and
    evaluation contexts a text cell must hold."""
    if cells_dir is None:
        return None
    path = cell_path(cells_dir, part, pe, seed)
    if not path.is_file():
        return None

    def check(cell: dict[str, Any]) -> None:
        if cell["pe"] != pe or cell["seed"] != seed:
            raise ShapeError(f"it is the cell of {cell['pe']} seed {cell['seed']}, not {pe} {seed}")
        if len(cell["curve"]["step"]) != len(cell["curve"]["loss"]):
            raise ShapeError("curve.step and curve.loss differ in length")
        if part == "task" and keys and sorted(cell["errors"]) != sorted(keys[0]):
            raise ShapeError(f"errors holds the splits {sorted(cell['errors'])}, not {keys[0]}")
        if part == "text" and keys:
            kinds, contexts = keys
            for name in ("perplexity", "perplexity_tail"):
                if sorted(cell[name]) != sorted(kinds):
                    raise ShapeError(f"{name} holds {sorted(cell[name])}, not {kinds}")
            for kind in kinds:
                if set(cell["perplexity"][kind]) != set(contexts):
                    raise ShapeError(f"perplexity.{kind} is not at the contexts {contexts}")

    spec = _TASK_CELL if part == "task" else _TEXT_CELL
    return read_cell(path, "pe-bench cell", spec, check)


def _text_contexts(cfg: PEBenchConfig) -> list[str]:
    return [str(c) for c in sorted(set(cfg.text_eval_ctx) | {cfg.text_ctx})]


def check_saved_cells(cfg: PEBenchConfig, cells_dir: Path | None) -> None:
    """Validate every cell an earlier run saved, before anything trains (a bad one is refused
    now, not after hours of the other cells)."""
    if cells_dir is None or not Path(cells_dir).is_dir():
        return
    if cfg.task is not None:
        splits = list(getattr(build_task(cfg.task, cfg.task_options), "eval_splits", ("val",)))
        for pe in cfg.encodings:
            for seed in cfg.seeds:
                _load_cell(cells_dir, "task", pe, seed, (splits,))
    if cfg.text:
        for pe in cfg.text_encodings:
            _load_cell(cells_dir, "text", pe, cfg.seeds[0], (list(TEXT_KINDS), _text_contexts(cfg)))


def _save_cell(cells_dir: Path | None, part: str, cell: dict[str, Any]) -> dict[str, Any]:
    """Save a finished cell atomically; return it as a resumed run would read it back."""
    cell = json.loads(dumps_json(cell))
    if cells_dir is not None:
        atomic_write_json(cell_path(cells_dir, part, cell["pe"], cell["seed"]), cell)
    return cell


def _curve(rows: list[dict[str, Any]]) -> dict[str, list[float]]:
    train_rows = [r for r in rows if r.get("split") == "train"]
    return {"step": [r["step"] for r in train_rows], "loss": [r["loss"] for r in train_rows]}


def run_task_bench(
    cfg: PEBenchConfig,
    progress: ProgressFn,
    weights_dir: Path | None = None,
    cells_dir: Path | None = None,
) -> dict[str, Any]:
    """Every (encoding, seed) cell; with ``cells_dir``, cells saved there are not trained again
    and each newly finished one is saved there (atomically) before the next starts."""
    from interp.weights import save_weights

    task = build_task(cfg.task or "", cfg.task_options)
    overrides = task.model_overrides()
    sets = eval_sets(task, cfg.eval_sequences, cfg.batch_size)
    runs: list[dict[str, Any]] = []
    maps: list[dict[str, Any]] = []
    for pe in cfg.encodings:
        for seed in cfg.seeds:
            cell = _load_cell(cells_dir, "task", pe, seed, (list(sets),))
            if cell is None:
                progress(f"{cfg.task}: training {pe} (seed {seed}, {cfg.steps} steps)")
                cell = _task_cell(cfg, task, overrides, sets, pe, seed, weights_dir, cells_dir)
                if weights_dir is not None:  # before the cell: a saved cell has its weights
                    save_weights(weights_dir / f"{pe}-seed{seed}.safetensors", cell.pop("_weights"))
                cell = _save_cell(cells_dir, "task", cell)
            else:
                progress(f"{cfg.task}: {pe} (seed {seed}) already done")
            maps.extend(cell.pop("cope_maps", []))
            runs.append(cell)
    splits = list(sets)
    table = []
    variants = cfg.variants()
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


def _task_cell(
    cfg: PEBenchConfig,
    task: Any,
    overrides: Mapping[str, Any],
    sets: Mapping[str, list[Any]],
    pe: str,
    seed: int,
    weights_dir: Path | None,
    cells_dir: Path | None,
) -> dict[str, Any]:
    """Train and evaluate one (encoding, seed) model; fully determined by ``seed``.  CoPE's
    position-only maps come from the first seed's model."""

    mcfg = cfg.model_config(pe, **overrides)
    tcfg = cfg.train_config(seed, cfg.steps)
    source = TaskSource(task, tcfg.batch_size, seed, tcfg.eval_batches)
    what = f"{cfg.task}: encoding {pe!r} seed {seed}"
    model, rows = _train_model(mcfg, tcfg, source, what, cells_dir)
    errors = {split: evaluate_errors(model, b, cfg.device) for split, b in sets.items()}
    cell: dict[str, Any] = {"pe": pe, "seed": seed, "errors": errors, "curve": _curve(rows)}
    if weights_dir is not None:
        cell["_weights"] = model.state_dict()
    if pe == "cope" and seed == cfg.seeds[0]:
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
    from interp.train.losses import per_token_loss

    total, count = 0.0, 0
    for i in range(0, len(blocks), batch_size):
        batch = lm_batch(blocks[i : i + batch_size]).to(device)
        batch.mask[:, :tail_from] = False
        total += float(per_token_loss(model(batch.inputs), batch).sum())
        count += int(batch.mask.sum())
    return math.exp(total / count) if count else None


def run_text_bench(
    cfg: PEBenchConfig, progress: ProgressFn, cells_dir: Path | None = None
) -> dict[str, Any]:
    """Byte-level perplexity on held-out prose and code, per evaluation context (one model per
    encoding, seeded with the first seed; finished ones saved in and resumed from ``cells_dir``).

    ``perplexity[kind][ctx]`` averages every prediction of a ``ctx``-long block;
    ``perplexity_tail[kind][ctx]`` (ctx > training context) only the predictions at positions
    the training context never reached.  Absolute positions end at the training context: None.
    """
    from interp.data import ByteTokenizer

    tok = ByteTokenizer()
    seed = cfg.seeds[0]
    train, val, chars = text_data(cfg)
    contexts = sorted(val[TEXT_KINDS[0]])
    # the CorpusSource's own validation (only logged during training) reads prose blocks
    eval_source = val[TEXT_KINDS[0]][cfg.text_ctx]
    rows = []
    for pe in cfg.text_encodings:
        cell = _load_cell(cells_dir, "text", pe, seed, (list(TEXT_KINDS), _text_contexts(cfg)))
        if cell is not None:
            progress(f"text: {pe} already done")
            rows.append(cell)
            continue
        progress(f"text: training {pe} (context {cfg.text_ctx}, {cfg.text_steps} steps)")
        mcfg = cfg.model_config(pe, n_ctx=cfg.text_ctx, d_vocab=tok.vocab_size)
        tcfg = cfg.train_config(seed, cfg.text_steps)
        source = CorpusSource(train, eval_source, cfg.batch_size, seed, 2)
        what = f"text: encoding {pe!r} seed {seed}"
        model, metrics = _train_model(mcfg, tcfg, source, what, cells_dir)
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
        rows.append(_save_cell(cells_dir, "text", {**cell, "curve": _curve(metrics)}))
    return {
        "corpus": "builtin:prose + builtin:code",
        "kinds": list(TEXT_KINDS),
        "chars": chars,
        "train_blocks": len(train),
        "eval_blocks": {kind: {str(c): len(b) for c, b in v.items()} for kind, v in val.items()},
        "tokenizer": "byte",
        "variants": {pe: label for pe, label in cfg.variants().items() if pe in cfg.text_encodings},
        "train_ctx": cfg.text_ctx,
        "eval_ctx": contexts,
        "seed": seed,
        "rows": rows,
    }


def run_pe_bench(
    cfg: PEBenchConfig,
    progress: ProgressFn | None = None,
    weights_dir: Path | None = None,
    cells_dir: Path | None = None,
) -> dict[str, Any]:
    """Train and evaluate every encoding; returns the results dict saved as ``results.json``.

    With ``cells_dir`` each finished (encoding, seed) model's results are saved there at once
    (atomically) and a rerun skips them: each cell depends on its seed alone, so a sweep killed
    at any moment and run again ends with the same results as an uninterrupted one.
    """
    progress = progress or (lambda msg: None)
    check_saved_cells(cfg, cells_dir)
    results: dict[str, Any] = {"kind": KIND, "config": cfg.to_dict()}
    if cfg.task is not None:
        results["task"] = run_task_bench(cfg, progress, weights_dir, cells_dir)
    if cfg.text:
        results["text"] = run_text_bench(cfg, progress, cells_dir)
    return results


def check_resume(stored: Mapping[str, Any], asked: Mapping[str, Any]) -> None:
    """Refuse to resume a run started with other options, naming the first differing one."""

    if stored.get("kind") != KIND:
        raise InterpError(f"--resume: that is a {stored.get('kind')!r} run, not {KIND!r}")
    asked = json.loads(dumps_json(asked))
    for key in sorted((set(stored) | set(asked)) - {"created", "variants"}):
        if stored.get(key) != asked.get(key):
            raise InterpError(
                f"--resume: {key} is {asked.get(key)!r} but the run was started with "
                f"{stored.get(key)!r}; use the same options (or a new --out)"
            )
    # the same options, and the same definitions of the encodings: a run started by an interp
    # before CoPE followed the public code (per-head tables) has no "variants"; of what it
    # trained, only CoPE is defined differently now
    before, now = stored.get("variants"), asked.get("variants") or {}
    if not isinstance(before, dict):
        before = {pe: label for pe, label in now.items() if pe != "cope"}
    changed = [pe for pe in now if before.get(pe) != now[pe]]
    if changed:
        pe = changed[0]
        was = before.get(pe)
        raise InterpError(
            f"--resume: this interp defines {pe!r} as {now[pe]!r}, the run was started with "
            + (
                f"{was!r}"
                if was
                else "an earlier definition (before CoPE followed the public "
                "code: one table per head)"
            )
            + "; its finished models would mix two definitions: use a new --out"
        )


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
