"""The model an analysis studies: a spec (run directory, HF directory, hub name), the cached
default model when none is given, or a model object a notebook already holds.

One place for what every analysis did for itself before: load, label, and find the model's
own interp run directory (its ``analyses/<kind>`` copy and report).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from interp.errors import InterpError
from interp.models.loading import load_model
from interp.progress import SILENT, Callbacks, Progress


@dataclass
class Subject:
    model: Any
    run_dir: Path | None  # the model's own interp run (results are copied there), if any
    label: str  # what results and reports call the model
    default: bool = False  # the cached default model (no --model given)


def model_run_dir(spec: str | Path) -> Path | None:
    """``spec`` when it is an interp training run directory, else None."""
    from interp.io import read_json

    path = Path(spec).expanduser()
    if not (path / "config.json").is_file():
        return None
    try:
        data = read_json(path / "config.json", "run config")
    except InterpError:
        return None
    return path if isinstance(data, dict) and data.get("kind") == "train" else None


def default_model_run(progress: Progress = SILENT) -> Path:
    """The cached default model's run directory (trained on first use)."""
    from interp.demo import ensure_demo_model

    progress.note("default model: the cached demo model (trained once on first use)")
    bar = Callbacks(
        on_start=lambda start, total: progress.start(total, start, "default model"),
        on_step=lambda done: progress.advance(done),
    )
    run, _ = ensure_demo_model(
        on_start=bar.on_start, on_step=bar.on_step, on_wait=progress.note, on_note=progress.note
    )
    return run.path


def as_model(obj: Any, device: str = "cpu") -> Any:
    """A model object interp can analyse: interp's own and ``TransformerBridge`` models as they
    are; a Hugging Face ``PreTrainedModel`` wrapped (GPT-2 imported into interp's hooked family,
    any other causal LM booted as a ``TransformerBridge`` around the very same weights)."""
    from interp.models.transformer import HookedTransformer

    if isinstance(obj, HookedTransformer) or type(obj).__name__ == "TransformerBridge":
        return obj
    try:
        from transformers import PreTrainedModel
    except ImportError:  # pragma: no cover - transformers is a dependency
        PreTrainedModel = ()  # type: ignore[assignment]  # noqa: N806
    if not isinstance(obj, PreTrainedModel):
        raise InterpError(
            f"cannot analyse a {type(obj).__name__}: give an interp model, a TransformerBridge, "
            "a Hugging Face PreTrainedModel, or a model spec (run dir, HF dir, hub name)"
        )
    if getattr(obj.config, "model_type", None) == "gpt2":
        from interp.models.gpt2 import from_hf_gpt2

        model = from_hf_gpt2(obj)
        model.tokenizer = _hf_tokenizer(obj)
        return model.to(device).eval()
    return _bridge_around(obj, device)


def _hf_tokenizer(obj: Any) -> Any:
    """The tokenizer saved beside a Hugging Face model (its ``name_or_path``), if any."""
    name = getattr(obj, "name_or_path", "") or ""
    if not name:
        return None
    from interp.data import HFTokenizer

    try:
        return HFTokenizer.from_pretrained(name)
    except InterpError:
        return None


def _bridge_around(obj: Any, device: str) -> Any:
    from transformer_lens.model_bridge.transformer_bridge import TransformerBridge

    from interp.models.bridge import quiet_loading

    name = getattr(obj, "name_or_path", "") or ""
    if not name:
        raise InterpError(
            f"cannot wrap this {type(obj).__name__}: it has no name_or_path to read its config "
            "and tokenizer from; save it with save_pretrained and pass the directory"
        )
    try:
        with quiet_loading():
            bridge = TransformerBridge.boot_transformers(
                name, hf_model=obj, device=device, trust_remote_code=False
            )
    except InterpError:
        raise
    except Exception as e:  # noqa: BLE001 - a third-party loader's failure becomes one line
        raise InterpError(f"could not wrap {type(obj).__name__} {name!r} as a bridge: {e}") from e
    return bridge.eval()


def load_subject(
    spec: str | None,
    device: str = "cpu",
    model: Any = None,
    progress: Progress = SILENT,
    kind: str | None = None,
) -> Subject:
    """The model to analyse: ``model`` itself when given, else ``spec`` loaded, else the
    cached default model.  With ``kind``, a model run whose ``analyses/<kind>`` copy would be
    written through a planted link is refused at once, before any work."""
    if model is not None:
        return Subject(as_model(model, device), None, f"{type(model).__name__} (in memory)")
    from interp.runs import RunDir

    if spec is None:
        path = default_model_run(progress)
        subject = Subject(load_model(path, device=device), path, f"default model ({path})", True)
    else:
        subject = Subject(load_model(spec, device=device), model_run_dir(spec), str(spec))
    if kind is not None and subject.run_dir is not None:
        RunDir(subject.run_dir).check_analysis(kind)
    return subject


__all__ = ["Subject", "as_model", "default_model_run", "load_subject", "model_run_dir"]
