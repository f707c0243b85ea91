"""Step 1 of ``interp probe``: :func:`prepare` validates the request against the model (horizon,
layers, dataset size, vocabulary-probe memory) and tokenises the held-out data; nothing is
written (the experiments layer creates the run directory only after it returns)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from interp.errors import ConfigError, InterpError
from probes.collect import (
    BlockSplit,
    held_out_documents,
    human_bytes,
    layer_hook,
    split_blocks,
    text_tokenizer,
    token_blocks,
)
from probes.config import ProbeConfig
from probes.vocab import memory_bytes, n_classes


@dataclass
class Prepared:
    """A validated request: the token blocks and everything derived before any output exists."""

    config: ProbeConfig
    model_spec: str
    layers: list[int]
    seq_len: int
    blocks: torch.Tensor  # [block, pos]
    split: BlockSplit
    data_note: str
    vocab_memory: int | None = None
    notes: list[str] = field(default_factory=list)
    d_model: int = 0  # the model's residual width (the future-lens statistics grow with d^2)
    test_mask: Tensor | None = None  # [test block, probe_pos]: positions scored (None: all)

    @property
    def probe_positions(self) -> int:
        return self.seq_len - self.config.horizon

    @property
    def test_total(self) -> int:
        """Test positions in the test blocks."""
        return int(self.split.test.numel()) * self.probe_positions

    @property
    def test_scored(self) -> int:
        return self.test_total if self.test_mask is None else int(self.test_mask.sum())


def select_test_positions(n_test: int, n_pos: int, limit: int, seed: int) -> Tensor | None:
    """``limit`` of the ``n_test x n_pos`` test positions drawn uniformly without replacement
    (seeded) as a mask, or None when there are no more than ``limit`` (or ``limit`` is 0)."""
    total = n_test * n_pos
    if limit <= 0 or total <= limit:
        return None
    g = torch.Generator().manual_seed(seed + 1)
    pick = torch.randperm(total, generator=g)[:limit]
    mask = torch.zeros(total, dtype=torch.bool)
    mask[pick] = True
    return mask.view(n_test, n_pos)


def gpt2_style_bpe(tokenizer: Any) -> bool:
    """A byte-level BPE (GPT-2's kind): every space of an indentation is a token of its own, so
    source code makes poor held-out text (41% of the standard library's tokens are one space)."""
    hf = getattr(tokenizer, "hf", tokenizer)
    backend = getattr(hf, "backend_tokenizer", None)
    if backend is None:
        return False
    return type(backend.model).__name__ == "BPE" and "ByteLevel" in repr(backend.pre_tokenizer)


def model_n_ctx(model: Any) -> int:
    return int(model.cfg.n_ctx)


def prepare(model: Any, config: ProbeConfig, model_spec: str) -> Prepared:
    """Validate ``config`` against ``model`` and tokenise the held-out data (no files written)."""
    config.validate()
    layers, seq_len = _check_against_model(model, config)
    blocks, note, prose_default = _held_out_blocks(model, config, seq_len)
    split = split_blocks(int(blocks.shape[0]), config.seed)
    prepared = Prepared(config, model_spec, layers, seq_len, blocks, split, note)
    prepared.d_model = int(model.cfg.d_model)
    if prose_default:
        prepared.notes.append(
            "held-out text: the built-in prose (docstrings), the default for a byte-level BPE "
            "like GPT-2's, which spends a token on every space of code's indentation; "
            "--dataset builtin for code and prose"
        )
    _draw_test_positions(model, prepared)
    if "vocab" in config.kinds:
        prepared.vocab_memory = _vocab_memory(model, prepared)
    if blocks.shape[0] * seq_len < config.tokens:
        prepared.notes.append(
            f"the held-out data gave {blocks.shape[0] * seq_len} tokens, fewer than the "
            f"{config.tokens} asked"
        )
    return prepared


def _check_against_model(model: Any, config: ProbeConfig) -> tuple[list[int], int]:
    """The layers probed and the sequence length, checked against the model's depth, hooks and
    context (one line naming what does not fit)."""
    n_layers, n_ctx = int(model.cfg.n_layers), model_n_ctx(model)
    h = config.horizon
    if h > n_ctx - 1:
        raise ConfigError(
            f"horizon {h} is beyond the model context: n_ctx={n_ctx} allows at most {n_ctx - 1}"
        )
    layers = list(config.layers) if config.layers is not None else list(range(n_layers + 1))
    bad = [layer for layer in layers if not 0 <= layer <= n_layers]
    if bad:
        raise ConfigError(
            f"unknown layer {bad[0]}: this model has layers 0 (embeddings) to {n_layers} "
            "(after the last block)"
        )
    hooks = getattr(model, "hook_dict", {})
    missing = [layer_hook(layer) for layer in layers if layer_hook(layer) not in hooks]
    if missing:
        raise InterpError(f"the model has no hook {missing[0]}")
    seq_len = config.seq_len or min(n_ctx, max(128, 4 * h))
    if seq_len > n_ctx:
        raise ConfigError(f"seq-len {seq_len} exceeds the model context n_ctx={n_ctx}")
    if h > seq_len - 1:
        raise ConfigError(f"horizon {h} needs sequences longer than --seq-len {seq_len}")
    return layers, seq_len


def _held_out_blocks(
    model: Any, config: ProbeConfig, seq_len: int
) -> tuple[torch.Tensor, str, bool]:
    """The held-out text as ``seq_len`` token blocks, where it came from, and whether it is the
    prose default of a byte-level BPE (ids beyond the model's vocabulary refused)."""
    tokenizer = text_tokenizer(model)
    default = "builtin:prose" if gpt2_style_bpe(tokenizer) else "builtin"
    docs, note = held_out_documents(
        config.model, config.dataset, config.tokens, config.seed, default=default
    )
    prose_default = config.dataset is None and default != "builtin" and note.startswith(default)
    blocks = token_blocks(docs, tokenizer, seq_len, config.tokens)
    if blocks.numel() and int(blocks.max()) >= int(model.cfg.d_vocab):
        raise InterpError(
            f"the tokenizer produced id {int(blocks.max())} beyond the model vocabulary "
            f"({model.cfg.d_vocab})"
        )
    return blocks, note, prose_default


# ``test_positions=None`` (auto): at most this many test positions ...
AUTO_TEST_POSITIONS = 4096
AUTO_TEST_POSITIONS_MIN = 1024
# ... and fewer, down to the minimum, where decoding them through the unembedding for every
# future-lens cell (layers x horizons) would cost more than this many floating-point operations:
# GPT-2 small (vocabulary 50257, d_model 768) at horizon 3 decodes 39 cells, 3.0 GFLOP a
# position, so 4096 positions were ~8 min of a 2-core CPU's float32 (25 GFLOP/s measured); at
# 4 TFLOP (1328 positions) the whole probe took 5 min 10 s on 2 idle cores, at 3 (1024) less
DECODE_BUDGET_FLOP = 3e12


def auto_test_positions(d_vocab: int, d_model: int, cells: int) -> int:
    """Test positions scored by default: :data:`AUTO_TEST_POSITIONS`, or as many as the decode
    budget allows for ``cells`` full-vocabulary decodes a position (never below the minimum)."""
    per_position = 2.0 * d_vocab * d_model * max(1, cells)
    affordable = int(DECODE_BUDGET_FLOP // per_position)
    return max(AUTO_TEST_POSITIONS_MIN, min(AUTO_TEST_POSITIONS, affordable))


def _test_limit(model: Any, prepared: Prepared) -> tuple[int, str]:
    """The test-position limit in force and where it came from (for the note)."""
    config = prepared.config
    if config.test_positions is not None:
        return config.test_positions, "--test-positions"
    if "future_lens" not in config.kinds:
        return AUTO_TEST_POSITIONS, "--test-positions auto"
    d_vocab, cells = int(model.cfg.d_vocab), len(prepared.layers) * config.horizon
    limit = auto_test_positions(d_vocab, prepared.d_model, cells)
    if limit == AUTO_TEST_POSITIONS:
        return limit, "--test-positions auto"
    gflop = 2 * d_vocab * prepared.d_model * cells / 1e9
    return limit, (
        f"--test-positions auto: {cells} future-lens cells over a {d_vocab}-token vocabulary "
        f"cost {gflop:.1f} GFLOP a position to decode, so {limit} fit the "
        f"{DECODE_BUDGET_FLOP / 1e12:.0f} TFLOP budget"
    )


def _draw_test_positions(model: Any, prepared: Prepared) -> None:
    """The test positions scored (all, or a limit drawn), with a note when drawn."""
    limit, why = _test_limit(model, prepared)
    prepared.test_mask = select_test_positions(
        int(prepared.split.test.numel()), prepared.probe_positions, limit, prepared.config.seed
    )
    if prepared.test_mask is not None:
        prepared.notes.append(
            f"metrics (probes and baselines alike) average over {prepared.test_scored} test "
            f"positions drawn uniformly from the {prepared.test_total} of the test blocks "
            f"({why}; 0 scores every one)"
        )


def _vocab_memory(model: Any, prepared: Prepared) -> int:
    """Bytes the vocabulary probe needs, refused (one line) beyond ``--max-memory``."""
    config, layers, h = prepared.config, prepared.layers, prepared.config.horizon
    n_pos = prepared.probe_positions
    rows = int(prepared.split.fit.numel()) * n_pos
    c = n_classes(int(model.cfg.d_vocab), config.top_k)
    need = memory_bytes(rows, len(layers), int(model.cfg.d_model), h, c, config.batch_size * n_pos)
    budget = config.max_memory_mb * 2**20
    if need > budget:
        raise InterpError(
            f"the vocabulary probe would need {human_bytes(need)} ({rows} rows × "
            f"{len(layers)} layers × d_model {model.cfg.d_model}, {c} classes × {h} "
            f"horizons) but --max-memory is {human_bytes(budget)}; use fewer --tokens, "
            "--layers or --top-k, or raise --max-memory"
        )
    return need
