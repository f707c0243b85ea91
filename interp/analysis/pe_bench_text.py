"""The text part of the positional-encoding benchmark: the encodings trained on the built-in
corpus (byte tokens; prose and code mixed) at ``text_ctx``, held-out perplexity on prose and on
code at every evaluation context (and past the training context alone)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from functools import partial
from typing import Any

import torch

from interp.analysis import pe_bench_cells
from interp.analysis.pe_bench_cells import (
    TEXT_KINDS,
    _curve,
    _load_cell,
    _save_cell,
    _text_contexts,
)
from interp.analysis.pe_bench_config import PEBenchConfig, ProgressFn
from interp.cells import CellStore
from interp.errors import ConfigError
from interp.executors import LocalExecutor


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
    cfg: PEBenchConfig,
    progress: ProgressFn,
    stores: Mapping[str, CellStore] | None = None,
    executor: Any = None,
) -> dict[str, Any]:
    """Byte-level perplexity on held-out prose and code, per evaluation context (one model per
    encoding, seeded with the first seed; finished ones saved in and resumed from ``stores``).

    ``perplexity[kind][ctx]`` averages every prediction of a ``ctx``-long block;
    ``perplexity_tail[kind][ctx]`` (ctx > training context) only the predictions at positions
    the training context never reached.  Absolute positions end at the training context: None.
    """
    seed = cfg.seeds[0]
    train, val, chars = text_data(cfg)
    contexts = sorted(val[TEXT_KINDS[0]])
    found: dict[str, dict[str, Any]] = {}
    for pe in cfg.text_encodings:
        cell = _load_cell(stores, "text", pe, seed, (list(TEXT_KINDS), _text_contexts(cfg)))
        if cell is not None:
            progress(f"text: {pe} already done")
            found[pe] = cell
    todo = [pe for pe in cfg.text_encodings if pe not in found]
    executor = executor or LocalExecutor()
    if executor.in_process:

        def work(pe: str) -> dict[str, Any]:
            progress(f"text: training {pe} (context {cfg.text_ctx}, {cfg.text_steps} steps)")
            return _text_cell(cfg, pe, train, val, stores)

    else:  # a task per encoding, anywhere: it rebuilds the (deterministic) text data
        work = partial(text_cell_job, cfg)
        progress(f"text: {len(todo)} models as {executor.name} tasks ({cfg.text_steps} steps)")

    def save(index: int, cell: dict[str, Any]) -> None:
        found[todo[index]] = _save_cell(stores, "text", cell)

    executor.map(work, todo, save)
    rows = [found[pe] for pe in cfg.text_encodings]
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


def text_cell_job(cfg: PEBenchConfig, pe: str) -> dict[str, Any]:
    """One encoding's text cell from the config alone (a Ray task): the byte-level data
    rebuilt (deterministic), the model trained and measured."""
    train, val, _ = text_data(cfg)
    return _text_cell(cfg, pe, train, val, None)


def _text_cell(
    cfg: PEBenchConfig,
    pe: str,
    train: torch.Tensor,
    val: dict[str, dict[int, torch.Tensor]],
    stores: Mapping[str, CellStore] | None,
) -> dict[str, Any]:
    """Train one encoding's byte-level model on ``train`` and measure its perplexities."""
    from interp.data import ByteTokenizer
    from interp.train.sources import CorpusSource

    tok = ByteTokenizer()
    seed = cfg.seeds[0]
    # the CorpusSource's own validation (only logged during training) reads prose blocks
    eval_source = val[TEXT_KINDS[0]][cfg.text_ctx]
    mcfg = cfg.model_config(pe, n_ctx=cfg.text_ctx, d_vocab=tok.vocab_size)
    tcfg = cfg.train_config(seed, cfg.text_steps)
    source = CorpusSource(train, eval_source, cfg.batch_size, seed, 2)
    what = f"text: encoding {pe!r} seed {seed}"
    store = stores["text"] if stores else None
    # called through its module, so that one replacement (a test's) reaches task and text cells
    model, metrics = pe_bench_cells._train_model(mcfg, tcfg, source, what, store)
    ppl, tail = _perplexities(cfg, model, val)
    cell = {"pe": pe, "seed": seed, "perplexity": ppl, "perplexity_tail": tail}
    return {**cell, "curve": _curve(metrics)}


def _perplexities(
    cfg: PEBenchConfig, model: Any, val: dict[str, dict[int, torch.Tensor]]
) -> tuple[dict[str, dict[str, float | None]], dict[str, dict[str, float | None]]]:
    """``perplexity`` and ``perplexity_tail`` per kind and evaluation context (None where an
    absolute encoding cannot run that long)."""
    contexts = sorted(val[TEXT_KINDS[0]])
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
    return ppl, tail


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
