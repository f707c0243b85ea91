"""Data parallelism on ``torch.distributed``: rank, world size, the main rank, collectives.

A command launched by ``torchrun --nproc-per-node N -m cli.main ...`` (``WORLD_SIZE`` > 1 in the
environment) joins the process group on first use: backend ``gloo`` on a machine without CUDA,
``cpu:gloo,cuda:nccl`` with it (CPU tensors go through gloo, CUDA ones through nccl), or the
backend named by ``INTERP_DIST_BACKEND``.  In one process (no ``WORLD_SIZE``, or 1) every helper
is a no-op: rank 0 of a world of 1, :func:`all_reduce_sum` returns its input untouched, so the
single-process behaviour never changes.

Who does what: every rank computes its shard; rank 0 (:func:`is_main`) alone writes the run
directory (config, checkpoints, metrics, results, report).
"""

from __future__ import annotations

import os
import pickle
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import torch

from interp.errors import ConfigError

__all__ = [
    "all_reduce_sum",
    "backend",
    "barrier",
    "broadcast_object",
    "is_distributed",
    "is_main",
    "rank",
    "setup",
    "shard",
    "world_size",
]


# The last collectives' work handles, each holding its tensors (see :func:`_collective`).
_HELD: deque[Any] = deque(maxlen=32)


def _env_world() -> int:
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        return 1


def backend() -> str:
    """The process-group backend this machine gets (see the module docstring)."""
    chosen = os.environ.get("INTERP_DIST_BACKEND")
    if chosen:
        return chosen
    return "cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo"


def setup() -> bool:
    """Join the process group when launched by torchrun with more than one process; True then.
    Idempotent; a no-op (False) in one process."""
    if _env_world() <= 1:
        return False
    import torch.distributed as dist

    if not dist.is_available():
        raise ConfigError("WORLD_SIZE > 1 but this torch build has no torch.distributed")
    if not dist.is_initialized():
        if torch.cuda.is_available() and "LOCAL_RANK" in os.environ:
            torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
        dist.init_process_group(backend=backend())
    return True


def is_distributed() -> bool:
    """More than one process works on this command (joins the group on first call)."""
    return setup()


def world_size() -> int:
    return _env_world() if is_distributed() else 1


def rank() -> int:
    if not is_distributed():
        return 0
    import torch.distributed as dist

    return dist.get_rank()


def is_main() -> bool:
    """Rank 0, the only one that writes files (always True in one process)."""
    return rank() == 0


def _collective(call: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
    """Run the collective ``call(*args, async_op=True, **kwargs)`` and wait for it, keeping its
    work handle (and so its tensors) referenced from Python afterwards.

    Why: gloo's worker thread drops its own reference to a finished work a moment after the
    caller's wait returns.  When that reference is the last one, the work's tensors are freed on
    the worker thread, which must take the GIL to free their Python objects; if the main thread
    has meanwhile reached interpreter shutdown (a rank that exits right after its last
    collective), taking the GIL ends the thread inside a destructor and the process aborts
    ("terminate called without an active exception", SIGABRT after the work is done).  Held
    here, the last reference is always Python's, released on the main thread."""
    work = call(*args, async_op=True, **kwargs)
    work.wait()
    _HELD.append(work)


def all_reduce_sum(tensors: Sequence[torch.Tensor]) -> None:
    """Sum each tensor over the ranks, in place (nothing in one process).  Tensors of one dtype
    and device are flattened into one buffer: one collective, whatever their number."""
    if not is_distributed() or not tensors:
        return
    import torch.distributed as dist

    groups: dict[tuple[torch.dtype, torch.device], list[torch.Tensor]] = {}
    for t in tensors:
        groups.setdefault((t.dtype, t.device), []).append(t)
    for group in groups.values():
        flat = torch.cat([t.reshape(-1) for t in group])
        _collective(dist.all_reduce, flat, op=dist.ReduceOp.SUM)
        offset = 0
        for t in group:
            t.copy_(flat[offset : offset + t.numel()].view_as(t))
            offset += t.numel()


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """Rank ``src``'s ``obj`` on every rank (``obj`` itself in one process): pickled by ``src``
    (the job's own rank; only picklable configs and paths travel), its length then its bytes
    broadcast as tensors (CPU ones through gloo; CUDA ones where the group is nccl alone)."""
    if not is_distributed():
        return obj
    import torch.distributed as dist

    # a process group of nccl alone carries CUDA tensors only
    on = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else None
    if rank() == src:
        data = torch.frombuffer(bytearray(pickle.dumps(obj)), dtype=torch.uint8).to(on)
        size = torch.tensor([data.numel()], dtype=torch.int64, device=on)
    else:
        size = torch.zeros(1, dtype=torch.int64, device=on)
    _collective(dist.broadcast, size, src=src)
    if rank() != src:
        data = torch.empty(int(size.item()), dtype=torch.uint8, device=on)
    _collective(dist.broadcast, data, src=src)
    return obj if rank() == src else pickle.loads(data.cpu().numpy().tobytes())


def barrier() -> None:
    if is_distributed():
        import torch.distributed as dist

        _collective(dist.barrier)


def shard(n_items: int, chunk: int) -> list[int]:
    """This rank's chunk numbers of ``n_items`` items cut into chunks of ``chunk``: chunk i goes
    to rank ``i % world``, so rank 0 holds the first chunk, and each chunk is the one a single
    process would have formed (the same rows, the same batch products)."""
    n_chunks = -(-n_items // chunk) if n_items else 0
    return list(range(rank(), n_chunks, world_size()))
