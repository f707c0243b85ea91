"""``pe-bench``: one model per positional encoding on the same task, data and seeds; token
error in and out of distribution, optionally byte-level perplexity on prose and code.

The training and evaluation are :mod:`interp.analysis.pe_bench`; this file is the experiment
around it: the estimate, the resume check (the encodings' definitions included), typed
results and a headline that claims no more than the intervals say.

RUN/config.json                        {"kind": "pe-bench", "schema", "seed", <PEBenchConfig>}
RUN/cells/task-<pe>-seed<seed>.json    one finished task model (:class:`interp.cells.CellStore`;
RUN/cells/text-<pe>-seed<seed>.json    ``--resume`` skips it, every saved cell checked first)
RUN/models/<pe>-seed<seed>.safetensors a task model's final weights (saved before its cell)
RUN/results.json, RUN/report.html
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from interp.analysis import pe_bench as bench
from interp.analysis.pe_bench import PEBenchConfig
from interp.executors import get_executor
from interp.experiments.base import (
    Context,
    Estimate,
    Experiment,
    Prepared,
    Results,
    register_experiment,
)
from interp.models.positional import build_positional
from interp.progress import SILENT, Progress
from interp.report.tables import Table
from interp.runs import RunDir
from interp.seed import small_model_threads, torch_threads


@dataclass
class PEBenchResults(Results):
    """``results.json``: the config (its fields and ``variants``), and the ``task`` and
    ``text`` parts the config asked for (absent otherwise)."""

    kind: ClassVar[str] = "pe-bench"
    schema: ClassVar[int] = 1

    config: dict[str, Any]
    task: dict[str, Any] | None = None
    text: dict[str, Any] | None = None
    headline: str = ""

    def to_dict(self) -> dict[str, Any]:
        body = super().to_dict()
        return {k: v for k, v in body.items() if k not in ("task", "text") or v is not None}

    def tables(self) -> list[Table]:
        out = []
        if self.task is not None:
            title = f"{self.task['task']}: token error % (mean [95% interval] over seeds)"
            columns = ("encoding", *self.task["splits"])
            out.append(Table(title, columns, bench.format_table(self.task)))
        if self.text is not None:
            title = (
                f"text perplexity per byte (trained at context {self.text['train_ctx']}; "
                "in parentheses: positions past it only)"
            )
            columns = ("encoding", "text", *(f"ctx {c}" for c in self.text["eval_ctx"]))
            out.append(Table(title, columns, bench.format_text_table(self.text)))
        return out

    def lines(self) -> list[str]:
        """Each encoding that is a variant (the options that differ from its definition)."""
        rows = self.task["table"] if self.task is not None else []
        return [f"{r['pe']}: {r['variant']}" for r in rows if r.get("variant", r["pe"]) != r["pe"]]


# ------------------------------------------------------------------------------ headline
def _iv(iv: Mapping[str, Any]) -> str:
    text = f"{iv['mean']:.1f}"
    return text + (f" [{iv['lo']:.1f}, {iv['hi']:.1f}]" if iv["n"] > 1 else "")


def split_verdict(table: list[Mapping[str, Any]], split: str) -> str:
    """Which encoding has the lowest token error on ``split``, claimed only as far as the
    intervals go: lower than another only where its 95% interval lies wholly below the other's
    (with at least two seeds); one seed gives means, never a winner."""
    rows = sorted(table, key=lambda r: r[split]["mean"])
    best = rows[0]
    ivs = ", ".join(f"{r['pe']} {_iv(r[split])}" for r in rows)
    if len(rows) == 1:
        return f"{split}: {ivs}"
    tied = [r["pe"] for r in rows if r[split]["mean"] == best[split]["mean"]]
    if best[split]["n"] < 2:
        low = " and ".join(tied) if len(tied) > 1 else best["pe"]
        return f"{split}: lowest mean {low}, one seed, so no interval and no winner ({ivs})"
    others = rows[1:]
    below = [r["pe"] for r in others if best[split]["hi"] < r[split]["lo"]]
    if len(below) == len(others):
        return f"{split}: {best['pe']} lowest, its 95% interval below every other's ({ivs})"
    if below:
        return (
            f"{split}: {best['pe']} below {', '.join(below)} (95% intervals apart), not "
            f"separated from the rest ({ivs})"
        )
    return f"{split}: no encoding separated from the others (95% intervals overlap: {ivs})"


def text_verdict(text: Mapping[str, Any]) -> str:
    """The lowest perplexity at the training context per kind: one model per encoding (the
    first seed), so a ranking of one run, not a tested difference."""
    ctx = str(text["train_ctx"])
    parts = []
    for kind in text["kinds"]:
        values = [
            (row["perplexity"][kind][ctx], row["pe"])
            for row in text["rows"]
            if row["perplexity"][kind].get(ctx) is not None
        ]
        if values:
            value, pe = min(values)
            parts.append(f"{kind} {pe} {value:.2f}")
    return f"text (one seed, no interval): lowest perplexity at context {ctx}: " + "; ".join(parts)


LEARNED_ERROR = 50.0  # token error % below which an encoding counts as having learned the task


def pe_bench_headline(results: Mapping[str, Any]) -> str:
    parts = []
    task = results.get("task")
    if task is not None:
        verdicts = "; ".join(split_verdict(task["table"], s) for s in task["splits"])
        parts.append(f"pe-bench {task['task']}, token error %: {verdicts}.")
    if task is not None and task["table"] and task["splits"]:
        first = task["splits"][0]  # the training distribution
        lowest = min(r[first]["mean"] for r in task["table"])
        failed = [r["pe"] for r in task["table"] if r[first]["mean"] >= LEARNED_ERROR]
        if lowest >= LEARNED_ERROR:  # no ranking of models that all failed means anything
            parts.append(
                f"Inconclusive: no encoding learned {task['task']} (lowest {first} token error "
                f"{lowest:.1f}% >= {LEARNED_ERROR:.0f}%); try more --steps or a larger --lr."
            )
        elif failed:  # a model that never learned the task says nothing out of distribution
            parts.append(
                f"Not learned in distribution ({first} token error >= {LEARNED_ERROR:.0f}%): "
                f"{', '.join(failed)}; their out-of-distribution errors are no evidence about "
                "extrapolation."
            )
    text = results.get("text")
    if text is not None:
        parts.append(text_verdict(text) + ".")
    return " ".join(parts)


# ------------------------------------------------------------------------------ experiment
@register_experiment
class PEBench(Experiment[PEBenchConfig, PEBenchResults]):
    kind = "pe-bench"
    config_cls = PEBenchConfig
    results_cls = PEBenchResults
    resumable = True
    writes_while_running = True
    description = "one model per positional encoding, same data and seeds; error tables"

    def estimate(self, config: PEBenchConfig, report: bool = True) -> Estimate:
        """Memory and disk of the largest model (models train one after another), with the
        number of models checked against the limit.  Memory is the host's: with ``--device
        cuda`` the training's activations are the device's (not checked here)."""
        from interp.resources import MAX_MODELS, check_limit, model_sizes, pe_bench_estimate

        cfg = config
        # (encodings, model configs, evaluation splits, data bytes) per part of the benchmark;
        # every encoding's own config (CoPE's npos embeddings are its own), the largest counts
        shapes = []
        if cfg.task is not None:
            from interp.tasks import build_task

            task = build_task(cfg.task, cfg.task_options)
            mcfgs = [cfg.model_config(pe, **task.model_overrides()) for pe in cfg.encodings]
            splits = len(getattr(task, "eval_splits", ("val",)))
            shapes.append((len(cfg.encodings), mcfgs, splits, task.data_bytes(cfg.batch_size, 3)))
        if cfg.text:
            longest = max((cfg.text_ctx, *cfg.text_eval_ctx))
            mcfgs = [cfg.model_config(pe, n_ctx=longest, d_vocab=258) for pe in cfg.text_encodings]
            text_bytes = 16 * cfg.text_max_chars  # the corpus as text and byte ids
            shapes.append((len(cfg.text_encodings), mcfgs, len(cfg.text_eval_ctx), text_bytes))
        n_models = sum(n for n, _, _, _ in shapes) * len(cfg.seeds)
        check_limit(n_models, "the benchmark of", MAX_MODELS, "models")
        disk = memory = 0
        for _, mcfgs, splits, data_bytes in shapes:
            for m in mcfgs:
                sizes = model_sizes(m, cfg.batch_size)
                extra = {k: sizes[k] for k in ("tied", "d_attn", "d_input", "extra_params",
                                               "extra_activations")}  # fmt: skip
                part = pe_bench_estimate(m.n_layers, m.d_model, m.d_mlp, m.n_heads, m.d_vocab,
                                         m.n_ctx, cfg.batch_size, cfg.eval_sequences, n_models,
                                         splits, cfg.device != "cpu", data_bytes=data_bytes,
                                         **extra)  # fmt: skip
                disk, memory = max(disk, part[0]), max(memory, part[1])
        return Estimate(memory, disk, f"the benchmark of {n_models} models")

    def check_resume(self, stored: PEBenchConfig, asked: PEBenchConfig) -> PEBenchConfig:
        """The options first (the one resume check), then the encodings' definitions: those
        the run was started with must be this interp's."""
        config = super().check_resume(stored.replace(variants=None), asked.replace(variants=None))
        now = asked.encoding_labels()
        redefined = {pe for pe in now if build_positional(asked.model_config(pe)).redefined}
        bench.check_variants(stored.variants, now, redefined)
        return config

    def prepare(
        self,
        config: PEBenchConfig,
        model: Any = None,
        progress: Progress = SILENT,
        run: RunDir | None = None,
        weights: bool = True,
        executor: str | None = None,
        ray_address: str | None = None,
    ) -> Prepared[PEBenchConfig]:
        """``weights``: save each task model's final weights in ``RUN/models/`` (a reproduction
        that reads only the numbers passes False).  A resumed run's saved cells are all checked
        now, before any training.  ``executor`` / ``ray_address``: where the task cells train
        (:mod:`interp.executors`; per invocation, not in config.json: the cells are the same)."""
        chosen = get_executor(executor, ray_address)
        config = config.resolved()
        bench.check_saved_cells(config, run)
        chosen.start()  # connected (or refused) before the run directory is written
        return Prepared(config, None, state={"weights": weights, "executor": chosen})

    def run(self, prepared: Prepared[PEBenchConfig], context: Context) -> PEBenchResults:
        config = prepared.config
        state = prepared.state or {}
        weights, executor = state.get("weights", True), state.get("executor") or get_executor()
        try:
            # one thread for small models (a Ray executor's tasks take one thread each as well)
            with torch_threads(small_model_threads(config.d_model)):
                parts = bench.bench_parts(config, context.progress.note, context.run, weights,
                                          executor=executor)  # fmt: skip
        finally:
            executor.close()
        results = PEBenchResults(config.results_dict(), parts.get("task"), parts.get("text"))
        results.headline = pe_bench_headline(results.to_dict())
        return results


def run_pe_bench(cfg: Any, progress: Any = None) -> dict[str, Any]:
    """Train and evaluate every encoding in memory (the ``pe-bench`` experiment without a run
    directory: :func:`interp.experiments.execute.run_in_memory`); returns the results as
    ``results.json`` holds them."""
    from interp.experiments.execute import run_in_memory
    from interp.progress import Callbacks

    return run_in_memory("pe-bench", cfg, progress=Callbacks(on_note=progress)).to_dict()


__all__ = [
    "run_pe_bench",
    "PEBench",
    "PEBenchResults",
    "pe_bench_headline",
    "split_verdict",
    "text_verdict",
]
