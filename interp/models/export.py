"""Export an interp model to a Hugging Face directory, where Hugging Face can express it exactly.

``export_hf(run, out)`` writes ``config.json``, ``model.safetensors``, ``tokenizer.json`` and
``tokenizer_config.json`` into ``out`` (through :class:`interp.safefs.Tree`, nothing outside it),
for ``transformers.AutoModelForCausalLM`` and ``TransformerBridge.boot_transformers`` alike.
Before anything is written the exported model is built in memory and its logits are compared
with interp's on a fixed batch: an export that is not exact is refused, never written.

Mappings (interp's pre-norm block ``x + attn(ln1(x))``, then ``+ mlp(ln2(.))``, is every one's):

=============================================  =============================================
interp                                         Hugging Face
=============================================  =============================================
LayerNorm, learned ``absolute`` positions      ``GPT2LMHeadModel`` (``wpe`` = ``W_pos``)
LayerNorm, ``sinusoidal``                      ``GPT2LMHeadModel`` (``wpe`` = the fixed table)
LayerNorm, ``none`` (NoPE)                     ``GPT2LMHeadModel`` (``wpe`` = 0)
LayerNorm, ``rope``                            ``GPTNeoXForCausalLM``, sequential residual
                                               (``use_parallel_residual=False``), RoPE on the
                                               first ``rotary_dim`` dims of each head
                                               (``partial_rotary_factor``)
RMSNorm, ``rope`` over the whole head          ``LlamaForCausalLM``; Llama's MLP is gated,
                                               ``down(act(gate(x)) * up(x))``: ``gate`` = W_in,
                                               ``up`` = 0 weight + bias 1 (``mlp_bias``), so
                                               ``act(gate(x)) * 1`` is interp's MLP exactly
=============================================  =============================================

RoPE conventions agree: interp, NeoX and Llama all rotate halves (``rotate_half``: the pair of
dim i is i + rotary_dim/2, not i + 1), with ``inv_freq = base^(-2i / rotary_dim)`` and positions
from 0.  GeLU: interp's ``gelu`` = HF ``gelu`` (erf), ``gelu_new`` (tanh) = ``gelu_pytorch_tanh``
(the same torch kernel).  Attention is scaled by ``1/sqrt(d_head)`` everywhere.

The unembedding bias: GPT-2, NeoX and Llama have none.  A zero ``b_U`` (``use_bias=False``,
``--no-unembed-bias``, imported GPT-2) needs nothing; a non-zero one is folded into the final
LayerNorm's bias when it lies in the row space of ``W_U`` (``delta @ W_U = b_U`` solved by least
squares, exact when d_vocab <= d_model), else refused.

Tokenizers: the run's byte or BPE tokenizer, GPT-2's, or a task's token names (a word-level
tokenizer, words separated by spaces) become ``tokenizer.json`` (``PreTrainedTokenizerFast``);
nothing is added on encode, as in interp.  A model without text gets ids written as numbers.

Refused, one line naming why: vector input, CoPE, ALiBi, no normalisation, attention-only
(``d_mlp=0``), RMSNorm without RoPE, partial RoPE with RMSNorm, ``d_head * n_heads != d_model``
for GPT-2 / NeoX, a non-foldable ``b_U``, and a model whose exported logits differ.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from interp.config import ModelConfig
from interp.models.export_maps import (  # noqa: F401  (HF_ACTIVATIONS: re-exported)
    ARCHITECTURES,
    HF_ACTIVATIONS,
    ExportError,
    _refuse,
    _rotary_dim,
    _Weights,
    hf_config,
)
from interp.models.export_tokenizer import _tokenizer_files
from interp.models.loading import load_run_model
from interp.runs import RunDir
from interp.safefs import MARKER, Tree, has_marker, is_link

__all__ = [
    "ExportError",
    "ExportResult",
    "HFExport",
    "export_hf",
    "hf_architecture",
    "to_hf",
    "write_hf",
]

TOLERANCE = 1e-4  # max |logit difference| / max(1, max |logit|) an export may have
FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")


@dataclass
class HFExport:
    """A model converted in memory: what :func:`export_hf` writes."""

    architecture: str
    hf_config: Any  # a transformers PretrainedConfig
    state_dict: dict[str, Tensor]
    tokenizer_files: dict[str, str]
    max_logit_diff: float
    notes: list[str] = field(default_factory=list)


def hf_architecture(config: ModelConfig) -> str:
    """The Hugging Face class an interp config maps onto exactly; else :class:`ExportError`."""
    if config.input_kind != "tokens":
        raise _refuse("the model reads vectors (input_kind='vector'); HF causal LMs read tokens")
    pe, norm = config.positional, config.normalization
    if pe == "cope":
        raise _refuse("CoPE (contextual positions) has no Hugging Face architecture")
    if pe == "alibi":
        raise _refuse(
            "ALiBi has no exact Hugging Face form here (absolute, sinusoidal and no positions "
            "export as GPT-2, RoPE as GPT-NeoX or Llama)"
        )
    if pe not in ("absolute", "sinusoidal", "none", "rope"):
        raise _refuse(f"positional encoding {pe!r} has no Hugging Face form")
    if norm == "none":
        raise _refuse("the model has no normalisation; GPT-2, NeoX and Llama always normalise")
    if config.d_mlp == 0:
        raise _refuse(
            "attention-only models (d_mlp=0) have no Hugging Face form (every block has an MLP)"
        )
    if norm == "rmsnorm":
        if pe != "rope":
            raise _refuse(
                f"RMSNorm with positional encoding {pe!r}: the RMSNorm architecture (Llama) uses "
                "RoPE; only LayerNorm models export with absolute, sinusoidal or no positions"
            )
        if _rotary_dim(config) != config.head_dim:
            raise _refuse(
                f"RoPE on {_rotary_dim(config)} of {config.head_dim} head dims with RMSNorm: "
                "Llama rotates whole heads (partial RoPE exports with LayerNorm, as GPT-NeoX)"
            )
        return "LlamaForCausalLM"
    if config.n_heads * config.head_dim != config.d_model:
        raise _refuse(
            f"n_heads * d_head = {config.n_heads * config.head_dim} differs from d_model = "
            f"{config.d_model}; GPT-2 and GPT-NeoX split d_model into the heads"
        )
    return "GPTNeoXForCausalLM" if pe == "rope" else "GPT2LMHeadModel"


def _special_ids(model: Any) -> dict[str, int | None]:
    codec = model._codec()
    bos = getattr(codec, "bos_token_id", None)
    eos = getattr(codec, "eos_token_id", None)
    return {"bos_token_id": bos, "eos_token_id": eos, "pad_token_id": None}


def _fold_unembed_bias(model: Any, config: ModelConfig, notes: list[str]) -> Tensor | None:
    """The change of ``ln_final.b`` that carries ``b_U`` (None: ``b_U`` is zero)."""
    b_U = model.unembed.b_U.detach().double()
    if not bool(b_U.any()):
        return None
    if config.normalization != "layernorm":
        raise _refuse(
            "the unembedding bias b_U is non-zero and Llama has neither b_U nor a final-norm bias "
            "to carry it; train with --no-unembed-bias (or use_bias=False) to export"
        )
    W_U = model.unembed.weight.detach().double()  # [d_model d_vocab]
    delta = torch.linalg.lstsq(W_U.T, b_U.unsqueeze(-1)).solution.squeeze(-1)
    residual = float((delta @ W_U - b_U).abs().max())
    if residual > 1e-6 * max(1.0, float(b_U.abs().max())):
        raise _refuse(
            f"the unembedding bias b_U is non-zero and GPT-2 / NeoX have none; it is not in the span "
            f"of W_U (d_vocab {config.d_vocab} > d_model {config.d_model}, residual {residual:.2g}), "
            "so it cannot be folded into the final LayerNorm bias; train with --no-unembed-bias "
            "(or use_bias=False) to export"
        )
    notes.append(
        f"b_U folded into the final LayerNorm bias (b_U lies in the span of W_U; residual {residual:.1e})"
    )
    return delta.float()


def _without_tied_copies(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """The state dict once per storage (tied weights are saved under their first name)."""
    seen: set[int] = set()
    out = {}
    for name, t in state.items():
        ptr = t.untyped_storage().data_ptr()
        if ptr in seen:
            continue
        seen.add(ptr)
        out[name] = t.detach().clone().contiguous()
    return out


# --------------------------------------------------------------------------- the export


def _check_logits(model: Any, hf_model: Any, config: ModelConfig) -> float:
    g = torch.Generator().manual_seed(0)
    n_pos = min(config.n_ctx, 24)
    tokens = torch.randint(0, config.d_vocab, (2, n_pos), generator=g)
    with torch.no_grad():
        ours = model(tokens.to(model.device)).float().cpu()
        theirs = hf_model(tokens).logits.float()
    diff = float((ours - theirs).abs().max())
    scale = max(1.0, float(ours.abs().max()))
    if not math.isfinite(diff) or diff > TOLERANCE * scale:
        raise _refuse(
            f"the exported logits differ from interp's by {diff:.3g} (more than {TOLERANCE:g} "
            f"x {scale:.3g}); nothing was written"
        )
    return diff


def to_hf(model: Any) -> HFExport:
    """Convert an interp :class:`~interp.models.HookedTransformer` to a Hugging Face model in
    memory (weights, config, tokenizer files), checked against interp's logits."""
    import transformers

    config: ModelConfig = model.config
    arch = hf_architecture(config)
    notes: list[str] = []
    delta = _fold_unembed_bias(model, config, notes)
    hf = hf_config(arch, config, _special_ids(model))
    hf_model = getattr(transformers, arch)(hf).eval()
    w = _Weights(model)
    ARCHITECTURES[arch].weights(w, config, model, hf_model)
    w.used.add("unembed.b_U")  # zero, or folded above
    if not config.tied_embeddings:
        with torch.no_grad():
            hf_model.get_output_embeddings().weight.copy_(w("unembed.W_U").T)
    if delta is not None:
        with torch.no_grad():
            ARCHITECTURES[arch].final_norm(hf_model).bias.add_(delta)
    w.check_all_used()
    if config.positional == "none" and arch == "GPT2LMHeadModel":
        notes.append("no positional encoding: GPT-2's position table is zero")
    diff = _check_logits(model, hf_model, config)
    return HFExport(
        architecture=arch,
        hf_config=hf,
        state_dict=_without_tied_copies(hf_model.state_dict()),
        tokenizer_files=_tokenizer_files(model, config, notes),
        max_logit_diff=diff,
        notes=notes,
    )


def check_out(out: Path, overwrite: bool, source: Path | None = None) -> None:
    """Refuse, before any work, an ``out`` that is a file, a link, non-empty without
    ``--overwrite``, not an earlier export/run (no interp marker) with it, or the source run."""
    out = Path(out)
    if is_link(out) and not out.exists():
        raise ExportError(f"output path {out} is a broken symbolic link")
    if out.exists() and not out.is_dir():
        raise ExportError(f"output path {out} exists and is not a directory")
    if source is not None:
        a, b = Path(os.path.abspath(out)), Path(os.path.abspath(source))
        if a == b or a in b.parents or b in a.parents:
            raise ExportError(f"output path {out} overlaps the run being exported ({source})")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise ExportError(
                f"output directory {out} is not empty; pass --overwrite to replace it"
            )
        if not has_marker(out):
            raise ExportError(
                f"refusing to overwrite {out}: not a directory interp wrote (no {MARKER} marker); "
                "delete it yourself or choose another output directory"
            )


@dataclass(frozen=True)
class ExportResult:
    path: Path
    architecture: str
    max_logit_diff: float
    files: tuple[str, ...]
    notes: tuple[str, ...]


def export_hf(
    run: str | os.PathLike, out: str | os.PathLike, overwrite: bool = False
) -> ExportResult:
    """Export the model of interp run ``run`` as a Hugging Face directory ``out``.

    ``out`` must not exist, be empty, or (with ``overwrite``) be an earlier interp export or
    run; its old files are removed first.  Files go through :class:`interp.safefs.Tree`;
    ``config.json`` is written last, so an interrupted export is never a loadable directory.
    """

    run_path, out_path = Path(run), Path(out)
    if not (run_path / "config.json").is_file():
        raise ExportError(f"{run_path} is not an interp run directory (no config.json)")
    kind = RunDir(run_path).config().get("kind")
    if kind != "train":
        raise ExportError(
            f"{run_path} is a {kind!r} run; only trained models (kind 'train') export"
        )
    check_out(out_path, overwrite, run_path)
    model = load_run_model(run_path).float().eval()
    return write_hf(model, out_path, overwrite, source=run_path)


def write_hf(
    model: Any, out: str | os.PathLike, overwrite: bool = False, source: Path | None = None
) -> ExportResult:
    """Convert ``model`` (:func:`to_hf`) and write it to ``out`` (see :func:`export_hf`)."""
    out_path = Path(out)
    check_out(out_path, overwrite, source)
    export = to_hf(model)
    tree = Tree(out_path)
    tree.check((MARKER, *FILES))
    check_out(out_path, overwrite, source)  # unchanged while the model was converted
    if out_path.is_dir():
        tree.remove("config.json")  # first: a half-replaced export is never loadable
        for child in sorted(out_path.iterdir()):
            if child.name != MARKER:
                tree.remove(child.name)
    tree.mkdir()
    tree.write_json(MARKER, {"interp": "export", "format": "hf", "run": str(source or "")})
    from safetensors.torch import save

    tree.write_bytes("model.safetensors", save(export.state_dict, metadata={"format": "pt"}))
    for name, text in export.tokenizer_files.items():
        tree.write_text(name, text)
    tree.write_text("config.json", export.hf_config.to_json_string())
    files = tuple(n for n in FILES if n in export.tokenizer_files or n in FILES[:2])
    return ExportResult(
        path=out_path,
        architecture=export.architecture,
        max_logit_diff=export.max_logit_diff,
        files=files,
        notes=tuple(export.notes),
    )
