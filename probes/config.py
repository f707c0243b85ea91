"""What ``interp probe`` is asked: :class:`ProbeConfig` (inert; ``validate`` checks the values,
:func:`probes.prepare.prepare` checks them against a model) and the ``--layers`` reader."""

from __future__ import annotations

import re
from dataclasses import dataclass

from interp.config import _Config
from interp.errors import ConfigError
from probes.decode import DTYPES

PROBE_KINDS = ("future_lens", "vocab")


@dataclass(frozen=True)
class ProbeConfig(_Config):
    """What ``interp probe`` was asked; inert (``validate`` checks the values, :func:`prepare`
    checks them against a model)."""

    model: str | None = None  # a load_model spec; None = the embedded demo model
    horizon: int = 4
    layers: tuple[int, ...] | None = None  # None = every layer 0..n_layers
    tokens: int = 50_000
    dataset: str | None = None  # a load_corpus spec; None = the model's own held-out documents
    batch_size: int = 16
    seq_len: int | None = None  # None = min(n_ctx, max(128, 4 * horizon))
    seed: int = 0
    device: str = "cpu"
    kinds: tuple[str, ...] = ("future_lens",)
    top_k: int = 256  # vocabulary probe classes (0 = the whole vocabulary)
    vocab_epochs: int = 4
    max_memory_mb: int = 4096  # vocabulary probe budget
    n_boot: int = 1000
    # test positions scored (drawn when there are more); 0 = all; None = auto: 4096, fewer where
    # decoding them for every future-lens cell would exceed DECODE_BUDGET_FLOP (probes.prepare)
    test_positions: int | None = None
    decode_dtype: str = "auto"  # auto | float32 | bfloat16 (see probes.decode)

    def validate(self) -> None:
        def need(ok: bool, msg: str) -> None:
            if not ok:
                raise ConfigError(msg)

        need(self.horizon >= 1, f"horizon must be at least 1, got {self.horizon}")
        need(self.tokens >= 1, f"tokens must be positive, got {self.tokens}")
        need(self.batch_size >= 1, f"batch size must be positive, got {self.batch_size}")
        need(0 <= self.seed < 2**63, f"seed must be in [0, 2**63), got {self.seed}")
        need(self.seq_len is None or self.seq_len >= 2, f"seq-len must be >= 2, got {self.seq_len}")
        need(bool(self.kinds), "choose at least one probe kind")
        for kind in self.kinds:
            need(kind in PROBE_KINDS, f"unknown probe kind {kind!r}; choose from {PROBE_KINDS}")
        need(self.top_k >= 0, f"top-k must be >= 0, got {self.top_k}")
        need(self.vocab_epochs >= 1, f"vocab epochs must be >= 1, got {self.vocab_epochs}")
        need(self.max_memory_mb >= 1, "max memory must be positive")
        need(
            self.test_positions is None or self.test_positions >= 0,
            f"test positions must be >= 0, got {self.test_positions}",
        )
        need(
            self.decode_dtype in DTYPES,
            f"unknown decode dtype {self.decode_dtype!r}; choose from {', '.join(DTYPES)}",
        )
        if self.layers is not None:
            need(bool(self.layers), "--layers is empty")
            need(len(set(self.layers)) == len(self.layers), f"repeated layer in {self.layers}")


def parse_layers(text: str | None) -> tuple[int, ...] | None:
    """``"0,2,4"`` or ``"1-3"`` -> a tuple of ints; ``None``/``"all"`` -> None."""
    if text is None or text.strip().lower() in ("", "all"):
        return None
    out: list[int] = []
    for part in text.split(","):
        part = part.strip()
        span = re.fullmatch(r"(\d+)\s*-\s*(\d+)", part)
        if span:
            from interp.resources import MAX_LIST_VALUES, check_limit, range_size

            n = len(out) + range_size(int(span[1]), int(span[2]))
            check_limit(n, "--layers with", MAX_LIST_VALUES, "values")
        try:
            out.extend(range(int(span[1]), int(span[2]) + 1) if span else [int(part)])
        except ValueError as e:
            raise ConfigError(f"unknown layer {part!r}: give integers like 0,2,4 or 1-3") from e
    return tuple(out)
