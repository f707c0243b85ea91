"""The Hugging Face hub, as interp meets it: the offline switches (``HF_HUB_OFFLINE``,
``TRANSFORMERS_OFFLINE``), one quick look at whether the hub answers (a hub name on a machine
with no network fails in seconds, not after huggingface_hub's retries), and quiet loading
(transformers' progress bar and warnings hidden)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

_TRUE = {"1", "ON", "YES", "TRUE"}


def _offline_env() -> bool:
    return any(
        os.environ.get(var, "").strip().upper() in _TRUE
        for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def _offline_flag() -> str:
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if os.environ.get(var, "").strip().upper() in _TRUE:
            return f"{var}={os.environ[var].strip()}"
    return "HF_HUB_OFFLINE=1"


@contextlib.contextmanager
def _hub_offline(enabled: bool) -> Iterator[None]:
    """Force huggingface_hub (and hence transformers) offline for the block."""
    if not enabled:
        yield
        return
    from huggingface_hub import constants

    previous = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = previous


hub_offline = _hub_offline  # public name (interp.models.loading forces the hub offline too)

#: seconds one look at the hub may take (its DNS lookup included)
HUB_TIMEOUT = 2.0
_HUB_SEEN: dict[str, tuple[float, str | None]] = {}  # endpoint -> (when, problem)


def hub_endpoint() -> str:
    """The hub's address: ``HF_ENDPOINT`` when set (now), else huggingface_hub's."""
    from huggingface_hub import constants

    return (os.environ.get("HF_ENDPOINT") or constants.ENDPOINT or "https://huggingface.co").rstrip(
        "/"
    )


def hub_problem(timeout: float = HUB_TIMEOUT) -> str | None:
    """None when the hub answers an HTTP request within ``timeout`` seconds (any status: a
    server answered), else why not (``no answer in 2 s``, ``URLError: ...``).

    Without it, a hub name on a machine with no network waits ~25 s in huggingface_hub's
    retries before failing.  The request runs in a daemon thread that is abandoned after
    ``timeout`` (a DNS lookup ignores socket timeouts); the answer is kept for a minute."""
    import threading
    import time
    import urllib.error
    import urllib.request

    endpoint = hub_endpoint()
    seen = _HUB_SEEN.get(endpoint)
    if seen is not None and time.monotonic() - seen[0] < 60:
        return seen[1]
    box: list[str | None] = []

    def ask() -> None:
        try:
            request = urllib.request.Request(endpoint + "/", method="HEAD")
            with urllib.request.urlopen(request, timeout=timeout):  # noqa: S310 - https hub
                pass
            box.append(None)
        except urllib.error.HTTPError:  # the server answered, with an error status
            box.append(None)
        except Exception as e:  # noqa: BLE001 - URLError, timeouts, anything: unreachable
            reason = getattr(e, "reason", None) or e
            box.append(f"{endpoint}: {type(reason).__name__}: {str(reason)[:120]}".rstrip(": "))

    thread = threading.Thread(target=ask, daemon=True)
    thread.start()
    thread.join(timeout + 0.25)
    problem = box[0] if box else f"{endpoint}: no answer in {timeout:g} s"
    _HUB_SEEN[endpoint] = (time.monotonic(), problem)
    return problem


@contextlib.contextmanager
def quiet_loading() -> Iterator[None]:
    """Hide transformers' "Loading weights" progress bar and Python warnings (torch's pickle
    protocol notes, deprecations) for the block: a refused load prints its one line only."""
    import warnings

    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()
