"""Where a sweep's groups train: in this process (``local``) or as Ray tasks (``ray``).

A sweep plans its pending work as a list of *groups* (what it trains as one batched group: a
grok sweep's same-width points, a count sweep's models of one shape) and hands the executor a
function that trains one group and returns its cells.  The executor calls ``done(index,
result)`` in this process as each group finishes (in any order); the sweep writes the cells
there, through its one cell store (:mod:`interp.cells`, atomic files).  Workers write nothing:
a Ray task may run on another machine with no access to ``--out`` (and the run's lock is held
by this process), so the driver is the only writer and a kill at any moment leaves what the
local executor would leave (finished groups' cells; ``--resume`` on either executor redoes the
rest with the same numbers).

The executor is a per-invocation choice (``execute(options={"executor": ...})``), not part of
a run's config: it does not change the results, so a run started on one resumes on the other.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, ClassVar, TypeVar

from interp.errors import ConfigError, InterpError

G = TypeVar("G")
T = TypeVar("T")

RAY_EXTRA = "--executor ray needs the ray extra: pip install -e '.[ray]'"


class Executor:
    """Runs ``work(group)`` for every group; ``done(index, result)`` in this process."""

    name: ClassVar[str] = ""
    #: ``work`` runs in this process: it may report progress and checkpoint into the run
    in_process: ClassVar[bool] = True

    def map(
        self,
        work: Callable[[Any], T],
        groups: Sequence[Any],
        done: Callable[[int, T], None],
    ) -> None:
        raise NotImplementedError

    def start(self) -> None:
        """Connect before anything is written (a bad ``--ray-address`` is one line, no run
        directory); :meth:`map` starts it too."""

    def close(self) -> None:
        """Let go of what :meth:`start` began (a Ray session this executor started)."""

    def describe(self) -> dict[str, Any]:
        """What ``env.json`` records about the executor."""
        return {"name": self.name}


_EXECUTORS: dict[str, type[Executor]] = {}


def register_executor(cls: type[Executor]) -> type[Executor]:
    if cls.name in _EXECUTORS:
        raise ValueError(f"executor {cls.name!r} is registered twice")
    _EXECUTORS[cls.name] = cls
    return cls


def executor_names() -> list[str]:
    return list(_EXECUTORS)


@register_executor
class LocalExecutor(Executor):
    """Today's behaviour: one group after another in this process."""

    name = "local"

    def __init__(self, address: str | None = None) -> None:
        if address is not None:
            raise ConfigError("--ray-address needs --executor ray")

    def map(self, work: Callable[[Any], T], groups: Sequence[Any], done: Callable[[int, T], None]):
        for index, group in enumerate(groups):
            done(index, work(group))


def _run_task(work: Callable[[Any], Any], group: Any) -> Any:
    """One Ray task: one thread (as the local sweeps train), ``work(group)``."""
    from interp.seed import torch_threads

    with torch_threads(1):
        return work(group)


@register_executor
class RayExecutor(Executor):
    """Each group one Ray task (one CPU each) on the cluster at ``address``, or on a local one
    sized to this machine (``ray.init(num_cpus=os.cpu_count())``); a Ray session already
    started in this process (a notebook, a test) is used as it is."""

    name = "ray"
    in_process = False

    def __init__(self, address: str | None = None) -> None:
        try:
            import ray  # noqa: F401
        except ImportError:
            raise ConfigError(RAY_EXTRA) from None
        if address is not None:
            _check_reachable(address)  # Ray itself retries an unreachable address for minutes
        self.address = address
        self._started = False

    def start(self) -> None:
        import logging

        import ray

        if ray.is_initialized():
            return
        if self.address is not None:
            kwargs: dict[str, Any] = {"address": self.address}
        elif os.environ.get("RAY_ADDRESS"):
            kwargs = {}  # ray.init joins the cluster RAY_ADDRESS names
        else:
            kwargs = {"num_cpus": os.cpu_count() or 1}
        try:
            ray.init(
                **kwargs,
                include_dashboard=False,
                log_to_driver=False,
                logging_level=logging.ERROR,
                configure_logging=True,
            )
        except Exception as e:  # ConnectionError, ValueError, RuntimeError: all one line
            where = f"--ray-address {self.address}" if self.address else "a local Ray cluster"
            raise ConfigError(f"--executor ray: cannot start {where}: {_first_line(e)}") from None
        self._started = True

    def map(self, work: Callable[[Any], T], groups: Sequence[Any], done: Callable[[int, T], None]):
        import ray

        if not groups:
            return
        self.start()
        task = ray.remote(num_cpus=1, max_retries=0)(_run_task)
        work_ref = ray.put(work)
        pending = {task.remote(work_ref, group): i for i, group in enumerate(groups)}
        try:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                ref = ready[0]
                index = pending.pop(ref)
                done(index, _result(ref))
        finally:
            for ref in pending:  # an error or Ctrl-C: the other groups stop too
                ray.cancel(ref, force=True)

    def close(self) -> None:
        if self._started:
            import ray

            ray.shutdown()
            self._started = False

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "address": self.address}
        try:
            import ray

            if ray.is_initialized():
                out["cpus"] = int(ray.cluster_resources().get("CPU", 0))
        except Exception:  # pragma: no cover - a cluster that went away: recorded without
            pass
        return out


#: seconds one look at a cluster's address may take
CONNECT_TIMEOUT = 3.0


def _check_reachable(address: str) -> None:
    """One line at once when nothing listens at ``address`` (``HOST:PORT`` or
    ``ray://HOST:PORT``; ``auto`` and other forms are left to Ray)."""
    import re
    import socket

    found = re.fullmatch(r"(?:ray://)?\[?([^\]/]+?)\]?:(\d+)", address.strip())
    if found is None:
        return
    host, port = found[1], int(found[2])
    try:
        with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT):
            pass
    except OSError as e:
        reason = e.strerror or type(e).__name__
        raise ConfigError(
            f"--ray-address {address}: no Ray cluster answers there ({reason})"
        ) from None


def _result(ref: Any) -> Any:
    """A task's result; its error as this interp's one-line error (the original when it is an
    :class:`InterpError`: a non-finite loss names its cell)."""
    import ray

    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as e:
        cause = getattr(e, "cause", None)
        if isinstance(cause, InterpError):
            raise cause from None
        what = type(cause).__name__ if cause is not None else "error"
        raise InterpError(f"a Ray task failed ({what}: {_first_line(cause or e)})") from None
    except ray.exceptions.RayError as e:
        raise InterpError(f"a Ray task failed: {_first_line(e)}") from None


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


# what a sweep that names no executor uses: local, unless a caller made of sweeps (``interp
# reproduce --executor ray``) chose another for the sweeps it runs (:func:`default_executor`)
_DEFAULT: ContextVar[tuple[str, str | None]] = ContextVar(
    "interp_executor", default=("local", None)
)


@contextmanager
def default_executor(name: str | None, address: str | None = None) -> Iterator[None]:
    """Within the block, sweeps that name no executor use ``name`` (None: leave it)."""
    if name is None:
        yield
        return
    get_executor(name, address)  # an unknown name or a missing extra: one line, at once
    token = _DEFAULT.set((name, address))
    try:
        yield
    finally:
        _DEFAULT.reset(token)


def get_executor(name: str | None = None, address: str | None = None) -> Executor:
    """The executor called ``name`` (``--executor``; None: the default, local unless
    :func:`default_executor` chose another), with ``--ray-address``; one line for an unknown
    name, a missing extra or an address the local executor cannot use."""
    if name is None:
        name, address = _DEFAULT.get() if address is None else (_DEFAULT.get()[0], address)
    cls = _EXECUTORS.get(name)
    if cls is None:
        raise ConfigError(f"--executor {name!r} is not one of {', '.join(executor_names())}")
    return cls(address)


def executor_of(options: dict[str, Any] | None) -> Executor:
    """The executor ``execute``'s per-invocation options name (default: local)."""
    options = options or {}
    return get_executor(options.get("executor"), options.get("ray_address"))


__all__ = [
    "RAY_EXTRA",
    "Executor",
    "LocalExecutor",
    "RayExecutor",
    "default_executor",
    "executor_names",
    "executor_of",
    "get_executor",
    "register_executor",
]
