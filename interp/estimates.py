"""Rough memory and disk estimates of each experiment, for the preflight of
:mod:`interp.resources` (upper-ish bounds: float32 everywhere, a factor for temporaries), and the
floating-point work of evaluation-only commands.  Pure arithmetic over sizes: nothing here reads
the machine."""

from __future__ import annotations

from typing import Any

from interp.errors import InterpError

F32 = 4  # bytes per float32 value
REPORT_BYTES = 6 * 2**20  # a report.html: plotly.js (~4.6 MiB) embedded, plus the figures
# floating-point operations of one evaluation-only command (count construct, float64 on a CPU):
# ~0.3-0.6 GFLOP/s was measured for it on 2 shared cores, so 10^13 is about 5-10 hours there
MAX_WORK = 10**13


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
    on_device: bool = False,
    **model: Any,
) -> tuple[int, int]:
    """``(disk, memory)`` bytes of ``interp pe-bench``: models train one after another.

    Memory: one model's training (:func:`train_estimate`, with the task's data and the
    encoding's own sizes passed as ``model`` keywords, see :func:`model_sizes`) plus the fixed
    evaluation sets, held for the whole benchmark (``eval_sequences`` per split, inputs, targets
    and mask at up to twice ``n_ctx`` for the longer splits), and one evaluation batch's logits.
    Disk: every model's weights, a few KiB of results and the report.  ``on_device``: the models
    train on an accelerator, so the host holds the evaluation sets and one model's weights (a
    cell's copy), not the training's activations and optimizer state.
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
    if on_device:
        return disk, params * F32 + evaluation
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
