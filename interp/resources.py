"""Free disk, available memory, and a preflight check for long commands.

The CLI calls :func:`preflight` with a command's estimated needs *before* it creates its output
directory: a request that cannot fit is refused with one line (``InterpError``), and one that
fits gets a short string to print (``needs ~12 MiB memory, ~3 MiB disk``).

The estimates are deliberately rough upper-ish bounds (float32 everywhere, a factor for
temporaries); they exist to refuse the obviously impossible (a model whose AdamW state is larger
than the machine, a sweep of thousands of models), not to predict peak usage to the byte.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from interp.errors import CorruptFileError, InterpError, LoadError

__all__ = [
    "MAX_LAYERS",
    "MAX_LIST_VALUES",
    "MAX_MODELS",
    "MAX_SAMPLES",
    "MAX_STEPS",
    "MAX_WORK",
    "REPORT_BYTES",
    "available_memory",
    "check_limit",
    "check_work",
    "collapse_estimate",
    "count_sweep_estimate",
    "construct_estimate",
    "free_disk",
    "grok_sweep_estimate",
    "human_bytes",
    "human_work",
    "memory_info",
    "model_config_preflight",
    "model_sizes",
    "pe_bench_estimate",
    "preflight",
    "probe_stats_estimate",
    "process_memory",
    "expected_peak",
    "range_size",
    "squash_estimate",
    "transformer_params",
    "train_estimate",
    "train_job_estimate",
]

F32 = 4  # bytes per float32 value
REPORT_BYTES = 6 * 2**20  # a report.html: plotly.js (~4.6 MiB) embedded, plus the figures

# --------------------------------------------------------------------------- limits
# Work counts and grids are checked against generous upper bounds before anything starts
# (DEVELOPING.md, "Resource limits"): past them a command would build a list larger than memory
# or run for days, so the user gets one line instead of a silent hang.  Raise a limit here when
# a real experiment needs more.
MAX_LIST_VALUES = 1_000  # values one list or range option expands to (--d 8..64:8, --widths)
MAX_MODELS = 10_000  # models one command trains (seeds x encodings, twin pairs, sweep cells)
MAX_SAMPLES = 10_000_000  # evaluation samples, sequences or tokens of one command
MAX_STEPS = 100_000_000  # optimizer steps per model (a progress bar shows the rest)
MAX_LAYERS = 10_000  # blocks of a model read from a config.json (building one takes ~1 ms)
# floating-point operations of one evaluation-only command (count construct, float64 on a CPU):
# ~0.3-0.6 GFLOP/s was measured for it on 2 shared cores, so 10^13 is about 5-10 hours there
MAX_WORK = 10**13


def check_limit(value: int, option: str, limit: int, unit: str = "") -> int:
    """``value`` when it is at most ``limit``; else one line naming the option and the limit."""
    if value > limit:
        raise InterpError(
            f"{option} {value} is above the limit of {limit:,}{' ' + unit if unit else ''} "
            "(interp/resources.py); split the work into smaller runs"
        )
    return value


def range_size(lo: int, hi: int, step: int = 1) -> int:
    """How many values ``range(lo, hi + 1, step)`` holds, without building it."""
    return 0 if hi < lo or step < 1 else (hi - lo) // step + 1


def human_bytes(n: float) -> str:
    """``1536`` -> ``1.5 KiB``; ``3 * 2**30`` -> ``3.0 GiB``."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"  # pragma: no cover


def _existing(path: Path) -> Path:
    """``path`` or its nearest existing ancestor (an output directory is usually not made yet)."""
    path = Path(path).expanduser().absolute()
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path(path.anchor or "/")


def free_disk(path: str | Path = ".") -> int | None:
    """Bytes free on the file system that holds (or will hold) ``path``; None if unknown."""
    try:
        return int(shutil.disk_usage(_existing(Path(path))).free)
    except OSError:
        return None


def _cgroup_limit() -> int | None:
    """The memory limit of this process's cgroup (v2 or v1), when there is one."""
    for name in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(name).read_text().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < 2**60:
            return int(text)
    return None


def memory_info() -> dict[str, Any]:
    """``{"total_bytes", "available_bytes", "source"}`` (values None when they cannot be read).

    Linux: ``/proc/meminfo`` (``MemAvailable``), capped by a cgroup limit; elsewhere
    ``os.sysconf`` (available = free pages), else unknown.
    """
    total = available = None
    source = "unknown"
    try:
        fields: dict[str, int] = {}
        for line in Path("/proc/meminfo").read_text().splitlines():
            key, _, rest = line.partition(":")
            parts = rest.split()
            if parts and parts[0].isdigit():
                fields[key.strip()] = int(parts[0]) * 1024  # kB
        total = fields.get("MemTotal")
        available = fields.get("MemAvailable", fields.get("MemFree"))
        source = "/proc/meminfo"
    except OSError:
        try:
            page = os.sysconf("SC_PAGE_SIZE")
            total = page * os.sysconf("SC_PHYS_PAGES")
            available = page * os.sysconf("SC_AVPHYS_PAGES")
            source = "sysconf"
        except (AttributeError, ValueError, OSError):
            pass
    limit = _cgroup_limit()
    if limit is not None:
        total = limit if total is None else min(total, limit)
        available = limit if available is None else min(available, limit)
        source += " + cgroup limit"
    return {"total_bytes": total, "available_bytes": available, "source": source}


def available_memory() -> int | None:
    return memory_info()["available_bytes"]


def process_memory() -> tuple[int, int]:
    """``(resident, peak resident)`` bytes of this process (``VmRSS``, ``VmHWM``; 0 where
    /proc cannot be read)."""
    rss = hwm = 0
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM") and rest.split():
                value = int(rest.split()[0]) * 1024
                rss, hwm = (value, hwm) if key == "VmRSS" else (rss, value)
    except (OSError, ValueError):
        pass
    return rss, hwm


def expected_peak(work_bytes: int) -> tuple[int, int]:
    """``(resident now, expected peak)``: what the process holds (libraries, the loaded model)
    plus ``work_bytes`` it is about to allocate, or its peak so far if that was higher."""
    rss, hwm = process_memory()
    return rss, max(hwm, rss + int(work_bytes))


def preflight(
    need_disk_bytes: float,
    need_mem_bytes: float,
    what: str,
    path: str | Path = ".",
    resident: int = 0,
) -> str:
    """Refuse (``InterpError``, one line) when ``what`` will not fit; else a line to print.

    ``need_mem_bytes`` is what the work will allocate; ``resident`` what the process already
    holds for it (the loaded model, the libraries): the printed need is their sum, the check
    against the available memory is on the allocation alone.  Disk is checked on the file
    system of ``path`` (the output directory, made or not); a quantity that cannot be read (no
    /proc, an odd file system) is not checked.
    """
    need_disk, need_mem = int(need_disk_bytes), int(need_mem_bytes)
    mem = available_memory()
    if mem is not None and need_mem > mem:
        raise InterpError(
            f"{what} needs ~{human_bytes(need_mem)} of memory, only {human_bytes(mem)} available; "
            "use a smaller model, batch or sweep"
        )
    free = free_disk(path)
    if free is not None and need_disk > free:
        raise InterpError(
            f"{what} needs ~{human_bytes(need_disk)} of disk at {_existing(Path(path))}, "
            f"only {human_bytes(free)} free"
        )
    if resident:
        return (
            f"{what} needs ~{human_bytes(need_mem + resident)} memory at its peak (~"
            f"{human_bytes(resident)} of it in use now: the loaded model and libraries), "
            f"~{human_bytes(need_disk)} disk"
        )
    return f"{what} needs ~{human_bytes(need_mem)} memory, ~{human_bytes(need_disk)} disk"


# --------------------------------------------------------------------------- estimates


def transformer_params(
    n_layers: int,
    d_model: int,
    d_mlp: int,
    d_vocab: int,
    n_ctx: int = 0,
    tied: bool = False,
    d_attn: int | None = None,
    d_input: int | None = None,
) -> int:
    """Parameters of a GPT-style transformer (embeddings, attention, MLP, norms, unembedding).

    ``d_input``: real-valued inputs of that width (a linear embedding) instead of token ids."""
    d_attn = d_model if d_attn is None else d_attn
    attn = 4 * d_model * d_attn + 3 * d_attn + d_model
    mlp = 2 * d_model * d_mlp + d_mlp + d_model if d_mlp else 0
    per_layer = attn + mlp + 4 * d_model  # two layer norms
    inputs = d_vocab * d_model if d_input is None else (d_input + 1) * d_model
    embed = inputs + n_ctx * d_model
    unembed = 0 if tied else d_vocab * d_model + d_vocab
    return n_layers * per_layer + embed + unembed + 2 * d_model


def _activation_bytes(
    batch: int, ctx: int, n_layers: int, d_model: int, d_mlp: int, n_heads: int, d_vocab: int
) -> int:
    """Forward + backward activations kept for the gradient (residual stream, MLP, attention)."""
    per_layer = ctx * (8 * d_model + 2 * d_mlp) + 2 * n_heads * ctx * ctx
    logits = 3 * ctx * d_vocab  # logits, log-softmax and its gradient
    return F32 * batch * (n_layers * per_layer + logits)


def train_estimate(
    n_layers: int,
    d_model: int,
    d_mlp: int,
    n_heads: int,
    d_vocab: int,
    n_ctx: int,
    batch_size: int,
    tied: bool = False,
    checkpoints_kept: int = 2,
    d_attn: int | None = None,
    *,
    d_input: int | None = None,
    extra_params: int = 0,
    extra_activations: int = 0,
    data_bytes: int = 0,
    report: bool = True,
) -> tuple[int, int]:
    """``(disk, memory)`` bytes of ``interp train``.

    Disk: each checkpoint holds weights + the two AdamW moments (params * 4 * 3 bytes); a run
    keeps ``checkpoints_kept`` and writes the next one before pruning, plus the final weights
    and the report (:data:`REPORT_BYTES`).  Memory: weights, gradients and AdamW state
    (params * 4 * 4) plus activations (batch * ctx * d_model * n_layers, with MLP,
    attention-pattern and logit terms), doubled for temporaries, plus the task's data
    (``data_bytes``, :meth:`interp.tasks.Task.data_bytes`).  ``extra_params`` and
    ``extra_activations``: what a positional encoding adds (:func:`model_sizes`).
    """
    params = transformer_params(n_layers, d_model, d_mlp, d_vocab, n_ctx, tied, d_attn, d_input)
    params += extra_params
    disk = params * F32 * 3 * (checkpoints_kept + 1) + params * F32 + 2**20
    disk += REPORT_BYTES if report else 0
    acts = _activation_bytes(batch_size, n_ctx, n_layers, d_model, d_mlp, n_heads, d_vocab)
    memory = params * F32 * 4 + 2 * (acts + extra_activations) + data_bytes
    return disk, memory


def model_sizes(model: Any, batch_size: int) -> dict[str, Any]:
    """The :func:`train_estimate` keywords of a ``ModelConfig`` (vector inputs, the positional
    encoding's own parameters and tensors: CoPE's ``npos`` embeddings, for one)."""
    from interp.models.positional import build_positional

    pe_params, pe_acts = build_positional(model).sizes(batch_size, model.n_ctx)
    return {
        "n_layers": model.n_layers,
        "d_model": model.d_model,
        "d_mlp": model.d_mlp,
        "n_heads": model.n_heads,
        "d_vocab": model.d_vocab,
        "n_ctx": model.n_ctx,
        "batch_size": batch_size,
        "tied": model.tied_embeddings,
        "d_attn": model.head_dim * model.n_heads,
        "d_input": model.d_input if model.input_kind == "vector" else None,
        "extra_params": pe_params,
        "extra_activations": pe_acts,
    }


def train_job_estimate(job: Any, report: bool = True) -> tuple[int, int]:
    """:func:`train_estimate` for an (unresolved) ``interp.train.job.TrainJob``.

    The vocabulary comes from the task's overrides, or the tokenizer's size (BPE: the requested
    vocabulary plus a few special tokens; byte: 258) without reading the corpus.  The data: the
    task's (its batches, the fixed validation batches and any dataset it builds), or the corpus
    held as text and token ids (~16 bytes a character, up to ``max_chars``).
    """
    model, data, train = job.model, job.data, job.train
    if data.source == "task":
        from interp.tasks import build_task

        task = build_task(data.task or "", data.task_options)
        model = model.replace(**task.model_overrides())
        data_bytes = task.data_bytes(train.batch_size, 1 + train.eval_batches)
    else:
        vocab = data.bpe_vocab_size + 8 if data.tokenizer == "bpe" else 258
        model = model.replace(d_vocab=vocab, input_kind="tokens")
        data_bytes = 16 * (data.max_chars or 0)
    return train_estimate(
        **model_sizes(model, train.batch_size), data_bytes=data_bytes, report=report
    )


def model_bytes(model: Any) -> int:
    """Bytes of a loaded model's parameters and buffers."""
    total = 0
    for t in list(model.parameters()) + list(model.buffers()):
        total += t.numel() * t.element_size()
    return total


def collapse_estimate(
    model: Any,
    n_formats: int,
    passes_per_format: int,
    max_length: int,
    modes: tuple[str, ...] = ("emulated",),
    batch_tokens: int = 8192,
) -> tuple[int, int]:
    """``(disk, memory)`` bytes of ``interp collapse`` beyond the loaded model.

    Memory: a native format's converted copy (made from a float32 deep copy: ~1.5x the
    weights at once), or an emulated format's saved float32 weights (rounded in place, restored
    after); and one forward batch without gradients, stopped at the final norm (no logits): the
    live ``[tokens, d_mlp]`` and ``[tokens, d_model]`` tensors and the attention scores of the
    longest sequence.  Formats run one after another, so none of this adds up across them.
    Disk: the per-layer, per-length curves of every pass as JSON (~3 numbers x ~24 bytes each).
    """
    cfg = model.cfg
    n_layers, d_model = int(cfg.n_layers), int(cfg.d_model)
    n_heads = int(getattr(cfg, "n_heads", 1) or 1)
    d_mlp = int(getattr(cfg, "d_mlp", 4 * d_model) or 0)
    length = max(1, int(max_length))
    tokens = max(length, min(int(batch_tokens), length * max(1, passes_per_format)))
    rows = max(1, tokens // length)
    activations = F32 * (tokens * (8 * d_model + 3 * d_mlp) + 3 * rows * n_heads * length**2)
    weights = model_bytes(model)
    copies = 1.5 if "native" in modes else (1.0 if "emulated" in modes else 0.0)
    memory = int(copies * weights) + activations
    passes = max(1, n_formats * passes_per_format)
    disk = passes * (n_layers + 1) * length * 3 * 24 + REPORT_BYTES + 2**20
    return disk, memory


def count_sweep_estimate(
    d_values: tuple[int, ...] | list[int],
    m_values: tuple[int, ...] | list[int],
    n: int | None,
    n_factor: int,
    n_layers: int,
    n_heads: int,
    mlp_ratio: int,
    batch_size: int,
    batched: bool = True,
) -> tuple[int, int]:
    """``(disk, memory)`` bytes of ``interp count sweep``.

    A cell (d, m) reads sequences of ``n`` (else ``n_factor * m``) tokens plus a query and
    separators.  With ``batched`` every m of one d trains together, so peak memory is the largest
    d's group: per model weights + grads + AdamW (params * 16) and one batch's activations.
    Disk: every cell's weights, a few KiB of logs and the report.
    """
    peak, disk = 0, REPORT_BYTES + 2**20
    for d in d_values:
        cells = []
        for m in m_values:
            ctx = (n or n_factor * m) + 4
            params = transformer_params(n_layers, d, mlp_ratio * d, m + 4, ctx)
            acts = _activation_bytes(batch_size, ctx, n_layers, d, mlp_ratio * d, n_heads, m + 4)
            cells.append(params * F32 * 4 + acts)
            disk += params * F32 + 64 * 2**10
        peak = max(peak, sum(cells) if batched else max(cells))
    return disk, peak


def grok_sweep_estimate(
    n_runs_per_width: int,
    widths: tuple[int, ...] | list[int],
    n_inputs: int,
    n_outputs: int,
    n_train: int,
    d_embed: int,
    logs_per_run: int,
    *,
    data_bytes: int = 0,
    dense_inputs: bool = False,
) -> tuple[int, int]:
    """``(disk, memory)`` bytes of ``interp grok sweep``: each width's runs train together.

    A run's MLP: embedding (n_inputs * d_embed), hidden (2 * d_embed * width), output
    (width * n_outputs); full batch activations n_train * (width + n_outputs), for train and
    test.  ``dense_inputs`` (sparse parity): the hidden layer reads all ``n_inputs`` bits
    (n_inputs * width weights).  ``data_bytes``: the task's examples, held once
    (:meth:`interp.tasks.Task.dataset_bytes`).  Disk: the logged curves (~1 KiB per log line
    per run), the final weights and the report.
    """
    peak, disk = 0, REPORT_BYTES + 2**20
    for w in widths:
        if dense_inputs:
            params = n_inputs * w + w + w * n_outputs + n_outputs
        else:
            params = n_inputs * d_embed + 2 * d_embed * w + w * n_outputs + w + n_outputs
        acts = F32 * 2 * n_train * (2 * d_embed + 2 * w + 2 * n_outputs)
        peak = max(peak, n_runs_per_width * (params * F32 * 4 + 2 * acts))
        disk += n_runs_per_width * (params * F32 + logs_per_run * 1024)
    return disk, peak + data_bytes


def pe_bench_estimate(
    n_layers: int,
    d_model: int,
    d_mlp: int,
    n_heads: int,
    d_vocab: int,
    n_ctx: int,
    batch_size: int,
    eval_sequences: int,
    n_models: int,
    n_splits: int = 3,
    **model: Any,
) -> tuple[int, int]:
    """``(disk, memory)`` bytes of ``interp pe-bench``: models train one after another.

    Memory: one model's training (:func:`train_estimate`, with the task's data and the
    encoding's own sizes passed as ``model`` keywords, see :func:`model_sizes`) plus the fixed
    evaluation sets, held for the whole benchmark (``eval_sequences`` per split, inputs, targets
    and mask at up to twice ``n_ctx`` for the longer splits), and one evaluation batch's logits.
    Disk: every model's weights, a few KiB of results and the report.
    """
    model.pop("batch_size", None)
    kw = {"tied": False, **model}
    base = (n_layers, d_model, d_mlp, d_vocab, n_ctx)
    params = transformer_params(*base, kw["tied"], kw.get("d_attn"), kw.get("d_input"))
    params += kw.get("extra_params", 0)
    _, train_mem = train_estimate(n_layers, d_model, d_mlp, n_heads, d_vocab, n_ctx, batch_size,
                                  **kw)  # fmt: skip
    evaluation = eval_sequences * n_splits * 2 * n_ctx * 24 + batch_size * 2 * n_ctx * F32 * d_vocab
    disk = n_models * (params * F32 + 64 * 2**10) + REPORT_BYTES + 2**20
    return disk, train_mem + evaluation


def construct_estimate(
    d_values: tuple[int, ...] | list[int],
    m_values: tuple[int, ...] | list[int],
    n: int | None,
    samples: int,
    chunk: int = 256,
) -> tuple[int, int]:
    """``(memory bytes, floating-point operations)`` of ``interp count construct``.

    Each (d, m) cell evaluates ``samples`` sequences of ``n + 2`` tokens (default n = 10 m)
    with the 1-layer, 1-head float64 construction, ``chunk`` sequences at a time.  Work per
    sequence: scores and their weighted sum (4 ctx^2 d), the four projections (8 ctx d^2),
    the unembedding (2 ctx d vocab) and the softmax (~5 ctx^2).  Memory: one chunk's scores,
    pattern and masks (3 ctx^2), residual temporaries (10 ctx d) and logits (2 ctx vocab).
    """
    memory, work = 0, 0
    for d in d_values:
        for m in m_values:
            ctx = (n if n is not None else 10 * m) + 2
            vocab = max(m + 1, ctx)
            per_sequence = 4 * ctx * ctx * d + 8 * ctx * d * d + 2 * ctx * d * vocab + 5 * ctx**2
            work += samples * per_sequence
            held = 8 * min(chunk, samples) * ctx * (3 * ctx + 10 * d + 2 * vocab)
            memory = max(memory, held + 8 * (4 * d * d + vocab * (d + 2)))
    return memory, work


def human_work(flops: float) -> str:
    """``2.1e15`` -> ``2.1 PFLOP``."""
    value = float(flops)
    for unit in ("FLOP", "kFLOP", "MFLOP", "GFLOP", "TFLOP", "PFLOP"):
        if value < 1000 or unit == "PFLOP":
            return f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} PFLOP"  # pragma: no cover


def check_work(flops: float, what: str, remedy: str) -> str:
    """One line refusing more than :data:`MAX_WORK` floating-point operations; else a line to
    print with the work and a rough duration at 0.5 GFLOP/s (a 2-core CPU in float64)."""
    hours = flops / 0.5e9 / 3600
    pace = f"~{hours:.0f} hours" if hours >= 1 else f"~{hours * 60:.0f} minutes"
    if flops > MAX_WORK:
        raise InterpError(
            f"{what} needs ~{human_work(flops)} ({pace} at 0.5 GFLOP/s), above the limit of "
            f"{human_work(MAX_WORK)} (interp/resources.py); {remedy}"
        )
    return f"{what}: ~{human_work(flops)} of work ({pace if hours >= 1 / 60 else 'under a minute'} at 0.5 GFLOP/s)"


def squash_estimate(
    n_layers: int, d_model: int, d_mlp: int, n_heads: int, length: int, copies: int = 64
) -> tuple[int, int]:
    """``(disk, memory)`` bytes of ``interp squash`` beyond the loaded model.

    Each pass stacks ``copies`` of the prompt (``length`` tokens: the longest prompt) and keeps
    the forward activations for the gradient, attention patterns included (measured on GPT-2
    small, 32 copies of 42 tokens: 1.32 GiB, ~21.5k floats per token, layer and copy).  Disk:
    one curve per layer and prompt (~24 bytes a number).
    """
    per_layer = length * (14 * d_model + 3 * d_mlp) + 3 * n_heads * length * length
    memory = F32 * copies * n_layers * per_layer
    disk = 3 * (n_layers + 1) * length * 24 + REPORT_BYTES + 2**20
    return disk, memory


def probe_stats_estimate(d_model: int, n_layers: int, horizon: int) -> int:
    """Memory bytes of the future-lens ridge statistics: for every probed layer, fit and
    validation ``X^T X`` (d x d) and ``X^T Y`` (d x horizon*d) in float64, doubled for the solve."""
    per_layer = 8 * (d_model * d_model + d_model * horizon * d_model + 3 * horizon * d_model)
    return 2 * 2 * n_layers * per_layer


# --------------------------------------------------------------------------- loaded models
# A model read from someone's config.json (an interp run, a Hugging Face directory or hub entry)
# is sized before anything is built: its sizes are in these fields, under interp's names, GPT-2's
# or the usual Hugging Face ones (role -> names; the largest present value of a role counts).
MODEL_SIZE_FIELDS: dict[str, tuple[str, ...]] = {
    "n_layers": ("n_layers", "n_layer", "num_hidden_layers", "num_layers"),
    "d_model": ("d_model", "n_embd", "hidden_size"),
    "d_mlp": ("d_mlp", "n_inner", "intermediate_size", "ffn_dim"),
    "d_vocab": ("d_vocab", "vocab_size"),
    "n_heads": ("n_heads", "n_head", "num_attention_heads"),
    "d_head": ("d_head", "head_dim"),
    "n_ctx": ("n_ctx", "n_positions", "max_position_embeddings"),
    "d_input": ("d_input",),
}
LAYER_OVERHEAD = 64 * 2**10  # Python objects of one block (modules, hook points): ~43 KiB measured


def _loaded_model_bytes(v: dict[str, int], copies: int) -> int:
    """Parameter bytes (float32) of a model of sizes ``v``, times ``copies``, plus the per-block
    objects: embeddings, attention, a gated MLP (three matrices, an upper bound for two), norms,
    an untied unembedding, learned positions (an upper bound for rotary models)."""
    n_layers, d_model = v.get("n_layers", 1), v.get("d_model", 1)
    n_heads = max(1, v.get("n_heads", 1))
    d_mlp = v.get("d_mlp", 4 * d_model)
    d_attn = n_heads * v["d_head"] if "d_head" in v else d_model
    params = transformer_params(
        n_layers, d_model, d_mlp, v.get("d_vocab", 0), v.get("n_ctx", 0), d_attn=d_attn
    )
    params += n_layers * d_model * d_mlp + v.get("d_input", 0) * d_model
    return copies * (params * F32 + n_layers * LAYER_OVERHEAD)


def _shown_bytes(n: int) -> str:
    return f"~{human_bytes(n)}" if n < 2**60 else "over 1,000,000 TiB"


def _shown_int(n: int) -> str:
    return f"{n:,}" if n < 10**15 else f"{float(n):.3g}"


def model_config_preflight(config: Any, where: str | Path, copies: int = 1) -> int:
    """Refuse, before anything is built, a model config (a ``config.json`` mapping) whose sizes
    cannot be built here; returns the estimated bytes.

    Every size field present (:data:`MODEL_SIZE_FIELDS`; ``null`` = unset) must be a
    non-negative integer, the layers at most :data:`MAX_LAYERS`, and the parameters (float32,
    ``copies`` of them alive at once while loading, plus ~64 KiB of objects per block) must fit
    in the available memory.  Each refusal is one line naming ``where`` (the config file) and
    the field to blame: the one whose reduction to 1 shrinks the estimate most."""
    if not isinstance(config, dict):
        raise CorruptFileError(f"model config {where} is not a JSON object")
    sizes: dict[str, tuple[str, int]] = {}
    for role, names in MODEL_SIZE_FIELDS.items():
        for name in names:
            value = config.get(name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
                raise CorruptFileError(
                    f"model config {where}: {name} must be a non-negative integer, got {shown}"
                )
            if role not in sizes or value > sizes[role][1]:
                sizes[role] = (name, value)
    if "n_layers" in sizes and sizes["n_layers"][1] > MAX_LAYERS:
        name, value = sizes["n_layers"]
        raise LoadError(
            f"model config {where}: {name} = {_shown_int(value)} is above the limit of {MAX_LAYERS:,} "
            "layers (interp/resources.py); refusing to build it"
        )
    values = {role: value for role, (_, value) in sizes.items()}
    need = _loaded_model_bytes(values, copies)
    mem = available_memory()
    if mem is not None and need > mem and sizes:
        role = min(sizes, key=lambda r: _loaded_model_bytes({**values, r: 1}, copies))
        name, value = sizes[role]
        raise LoadError(
            f"model config {where}: {name} = {_shown_int(value)} makes a model of {_shown_bytes(need)}, "
            f"only {human_bytes(mem)} of memory available; refusing to build it"
        )
    return need
