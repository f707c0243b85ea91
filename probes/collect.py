"""Held-out token blocks and the activations probes read, streamed batch by batch.

Dimensions: ``batch`` sequences, ``pos`` positions (the block length), ``d_model`` residual width,
``probe_pos`` = ``pos - max_horizon`` positions t that have a target at every horizon.

Layers are numbered by how many blocks the residual stream has passed: layer 0 is the embedding
(``blocks.0.hook_resid_pre``), layer l ≥ 1 is ``blocks.{l-1}.hook_resid_post``; layer
``n_layers`` is the final residual stream (the input of the final norm).

The future-lens target for horizon k at position t is the final residual stream at t+k-1 (the
state from which the model predicts token t+k), divided by its RMS when the model's final norm is
scale-invariant (LayerNorm, RMSNorm), so that a few huge-norm positions do not dominate the fit.
Decoding ``unembed(ln_final(ŷ))`` is unchanged by that rescaling.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from jaxtyping import Float, Int
from torch import Tensor

from interp.errors import InterpError

#: Fractions of blocks held for λ selection and for the reported metrics (rest: fitting).
VAL_FRACTION = 0.1
TEST_FRACTION = 0.2


def layer_hook(layer: int) -> str:
    return "blocks.0.hook_resid_pre" if layer == 0 else f"blocks.{layer - 1}.hook_resid_post"


def layer_label(layer: int, n_layers: int) -> str:
    if layer == 0:
        return "0 (embed)"
    return f"{layer} (final)" if layer == n_layers else str(layer)


def final_hook(model: Any) -> str:
    return layer_hook(int(model.cfg.n_layers))


def norm_is_scale_invariant(model: Any) -> bool:
    """True for LayerNorm / RMSNorm final norms (ours and the Bridge's), False for identity."""
    name = type(getattr(model, "ln_final", None)).__name__.lower()
    return "norm" in name and "nonorm" not in name


def decode(model: Any, state: Float[Tensor, "... d_model"]) -> Float[Tensor, "... d_vocab"]:
    """The model's own head: final norm then unembedding (float32; see :mod:`probes.decode`
    for the evaluation's row-chunked, optionally bfloat16 decoder)."""
    return model.unembed(model.ln_final(state))


def text_tokenizer(model: Any) -> Any:
    """The model's tokenizer with ``encode_batch`` (HF tokenizers are wrapped)."""
    tok = getattr(model, "tokenizer", None)
    if tok is None:
        raise InterpError(
            "the model has no tokenizer (trained on a synthetic task?); probes need a text model"
        )
    if not hasattr(tok, "encode_batch") or not hasattr(tok, "bos_token_id"):
        from interp.data import HFTokenizer

        tok = HFTokenizer(tok)
    return tok


def _run_data_config(model_spec: str | None) -> tuple[dict[str, Any], int] | None:
    """The data config and seed of an interp training run directory, if ``model_spec`` is one."""
    if model_spec is None:
        return None
    cfg_path = Path(model_spec).expanduser() / "config.json"
    if not cfg_path.is_file():
        return None
    from interp.io import read_json

    cfg = read_json(cfg_path, "run config")
    if not isinstance(cfg, dict) or cfg.get("kind") != "train":
        return None
    data = cfg.get("data") or {}
    if data.get("source") != "corpus":
        return None
    return data, int((cfg.get("train") or {}).get("seed", cfg.get("seed", 0)))


def held_out_documents(
    model_spec: str | None,
    dataset: str | None,
    n_tokens: int,
    seed: int,
    default: str = "builtin",
) -> tuple[list[str], str]:
    """Validation documents: the run's own held-out split when the model is an interp run trained
    on the same corpus, else a document split of ``dataset`` (default ``default``: the builtin
    corpus, or its prose for a GPT-2-style tokenizer, see :func:`probes.run.prepare`)."""
    from interp.data import load_corpus, split_documents
    from interp.data.corpus import canonical_spec

    run_data = _run_data_config(model_spec)
    trained_on = run_data[0].get("corpus") if run_data is not None else None
    if isinstance(trained_on, str) and (
        dataset is None or canonical_spec(dataset) == canonical_spec(trained_on)
    ):
        assert run_data is not None
        data, train_seed = run_data
        corpus = load_corpus(data.get("corpus", "builtin"), max_chars=data.get("max_chars"))
        _, val = split_documents(
            corpus.documents, float(data.get("val_fraction", 0.05)), train_seed
        )
        return val, (
            f"{corpus.name}: the validation documents of the model's training run "
            f"(val_fraction={data.get('val_fraction', 0.05)}, seed={train_seed})"
        )
    spec = dataset or default
    val_fraction = 0.2
    # about 3-4 characters per token for BPE on code; generous so the val side has enough
    corpus = load_corpus(spec, max_chars=max(200_000, int(n_tokens * 8 / val_fraction)))
    _, val = split_documents(corpus.documents, val_fraction, seed)
    return val, f"{corpus.name}: validation documents (val_fraction={val_fraction}, seed={seed})"


def token_blocks(
    docs: list[str], tokenizer: Any, seq_len: int, n_tokens: int
) -> Int[Tensor, "block pos"]:
    from interp.data import pack_blocks

    return pack_blocks(docs, tokenizer, seq_len, max_tokens=n_tokens)


@dataclass(frozen=True)
class BlockSplit:
    """Indices of blocks used to fit, to choose λ, and to report metrics."""

    fit: Tensor
    val: Tensor
    test: Tensor


def split_blocks(n_blocks: int, seed: int) -> BlockSplit:
    if n_blocks < 3:
        raise InterpError(
            f"dataset too short: {n_blocks} block(s) of tokens, need at least 3 "
            "(fit, validation and test); use a larger dataset or --tokens, or a smaller --seq-len"
        )
    perm = torch.randperm(n_blocks, generator=torch.Generator().manual_seed(seed))
    n_test = max(1, round(n_blocks * TEST_FRACTION))
    n_val = max(1, round(n_blocks * VAL_FRACTION))
    n_test = min(n_test, n_blocks - n_val - 1)
    return BlockSplit(
        fit=perm[n_test + n_val :].sort().values,
        val=perm[n_test : n_test + n_val].sort().values,
        test=perm[:n_test].sort().values,
    )


@dataclass
class ActivationBatch:
    tokens: Int[Tensor, "batch pos"]
    states: dict[int, Float[Tensor, "batch pos d_model"]]  # layer -> residual stream
    target: Float[Tensor, "batch pos d_model"]  # final residual stream (RMS-normalised)
    final: Float[Tensor, "batch pos d_model"]  # final residual stream as it is (the model's head
    # decodes it into the model's own logits)


class _Stop(Exception):
    """Raised by the last hook a pass needs: the rest of the forward is skipped."""


def capture(model: Any, tokens: Tensor, names: list[str]) -> dict[str, Tensor]:
    """The activations at ``names`` of one forward pass that stops at the last of them (no
    final norm, no unembedding: the ``[batch, pos, d_vocab]`` logits nothing reads are never
    computed)."""
    seen: dict[str, Tensor] = {}
    wanted = set(names)

    def grab(x: Tensor, hook: Any, name: str) -> None:
        seen[name] = x
        if len(seen) == len(wanted):
            raise _Stop

    hooks = [(name, (lambda x, hook, name=name: grab(x, hook, name))) for name in wanted]
    try:
        model.run_with_hooks(tokens, fwd_hooks=hooks)
    except _Stop:
        pass
    missing = sorted(wanted - set(seen))
    if missing:
        raise InterpError(f"hook {missing[0]} did not fire in the forward pass")
    return seen


@torch.no_grad()
def iter_activations(
    model: Any,
    blocks: Int[Tensor, "block pos"],
    layers: list[int],
    batch_size: int,
) -> Iterator[ActivationBatch]:
    """One forward per batch of blocks, stopped at the last hook the probes read."""
    device = next(model.parameters()).device
    final = final_hook(model)
    names = sorted({layer_hook(layer) for layer in layers} | {final})
    rescale = norm_is_scale_invariant(model)
    for start in range(0, blocks.shape[0], batch_size):
        tokens = blocks[start : start + batch_size].to(device)
        cache = capture(model, tokens, names)
        raw = cache[final].float()
        target = raw
        if rescale:
            target = raw / raw.pow(2).mean(-1, keepdim=True).add(1e-12).sqrt()
        yield ActivationBatch(
            tokens=tokens,
            states={layer: cache[layer_hook(layer)].float() for layer in layers},
            target=target,
            final=raw,
        )
        del cache


def probe_inputs(
    state: Float[Tensor, "batch pos d_model"], max_horizon: int
) -> Float[Tensor, "batch probe_pos d_model"]:
    """States at positions t = 0 .. pos - max_horizon - 1 (every horizon has a target there)."""
    return state[:, : state.shape[1] - max_horizon]


def horizon_targets(seq: Tensor, horizon: int, max_horizon: int, offset: int) -> Tensor:
    """``seq[:, t + horizon - offset]`` for the probe positions t (offset 1: states, 0: tokens)."""
    n_pos = seq.shape[1] - max_horizon
    start = horizon - offset
    return seq[:, start : start + n_pos]


def stacked_targets(
    target: Float[Tensor, "batch pos d_model"], horizons: int
) -> Float[Tensor, "batch probe_pos horizon_d_model"]:
    """Targets for k = 1..H side by side: the state at t+k-1 for each k, concatenated."""
    return torch.cat([horizon_targets(target, k, horizons, 1) for k in range(1, horizons + 1)], -1)


def estimate_bytes(rows: int, width: int, dtype_bytes: int = 4) -> int:
    return int(rows) * int(width) * dtype_bytes


def human_bytes(n: float) -> str:
    if n < 1024:
        return f"{int(n)} B"
    exp = min(int(math.log(n, 1024)), 4)
    return f"{n / 1024**exp:.1f} {('B', 'KiB', 'MiB', 'GiB', 'TiB')[exp]}"
