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
from interp.estimates import (  # noqa: F401  (the estimates: importable from here as before)
    F32,
    MAX_WORK,
    REPORT_BYTES,
    check_work,
    collapse_estimate,
    construct_estimate,
    count_sweep_estimate,
    grok_sweep_estimate,
    human_work,
    model_bytes,
    model_sizes,
    pe_bench_estimate,
    probe_stats_estimate,
    squash_estimate,
    train_estimate,
    train_job_estimate,
    transformer_params,
)

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
# MAX_WORK (floating-point operations of one evaluation-only command) lives with the work
# estimates it bounds (interp.estimates)


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
