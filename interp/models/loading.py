"""One entry point from a model spec to a hooked model.

``load_model(spec)`` accepts, in this order:

1. an interp run directory (``config.json`` with ``"kind": "train"``): the hooked model of the
   run, with its final weights (or its latest checkpoint) and its tokenizer;
2. a local Hugging Face directory: GPT-2 checkpoints are imported into the hooked family
   (logits equal to ``transformers``); other causal LMs boot through TransformerBridge;
3. a hub name (``gpt2``): the same, downloaded or read from the HF cache.  ``HF_HUB_OFFLINE=1``
   is honoured: then only the cache is read, and a miss fails at once.

Every failure is one ``LoadError`` line naming the spec and what was tried.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from interp.errors import ConfigError, CorruptFileError, InterpError, LoadError
from interp.resources import model_config_preflight

_HF_ERRORS = (OSError, ValueError, KeyError, EnvironmentError)


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def load_run_model(run_dir: Path, device: str = "cpu") -> Any:
    """The model of an interp run: final weights if present, else the latest checkpoint.

    The run's ``config.json`` is checked before anything is built: an invalid field, or sizes
    that cannot fit in memory (a lying config), is one line naming the file."""
    from interp.models.transformer import HookedTransformer, check_model_config
    from interp.runs import RunDir
    from interp.weights import latest_checkpoint, load_job, load_model_weights, load_weights

    run = RunDir.open(run_dir, writable=False)
    job = load_job(run)
    try:
        check_model_config(job.model)  # its encoding's name and options: the registry's
    except ConfigError as e:
        raise CorruptFileError(f"run config {run.config_path}: {e}") from e
    # the model, and its weights read back from the safetensors file: two copies at once
    model_config_preflight(job.model.to_dict(), run.config_path, copies=2)
    task = None
    if not (run.path / "tokenizer").is_dir() and job.data.source == "task":
        from interp.tasks import build_task

        try:
            task = build_task(job.data.task or "", job.data.task_options)
        except ConfigError as e:
            raise CorruptFileError(f"run config {run.config_path}: {e}") from e
    model = HookedTransformer(job.model, seed=None)
    if run.weights_path.is_file():
        weights = run.weights_path
    else:
        ckpt = latest_checkpoint(run.path)
        if ckpt is None:
            raise LoadError(
                f"run {run_dir} has no weights yet (no model.safetensors, no checkpoint)"
            )
        weights = ckpt.path / "model.safetensors"
    state = load_weights(weights)
    earlier = model.earlier_variant(state)
    if earlier:
        # weights of an earlier definition of the encoding (CoPE before it followed the public
        # code: per-head tables, ...): built as that variant, which model.config (and every
        # label read from it) names; config.json is left as it is
        options = {**job.model.positional_options, **earlier}
        del model  # never three copies at once
        model = HookedTransformer(job.model.replace(positional_options=options), seed=None)
    load_model_weights(model, weights, state)
    if (run.path / "tokenizer").is_dir():
        from interp.data import load_tokenizer

        model.tokenizer = load_tokenizer(run.path / "tokenizer")
    elif task is not None:
        model.tokenizer = None
        model.task = task
    return model.to(device).eval()


def _weights_error(spec: str, local: bool, exc: BaseException) -> LoadError:
    """One line for a failed ``from_pretrained``, naming the weight file when it is at fault."""
    from interp.models.bridge import refused_pickle, weight_files

    text = str(exc).strip()
    reason = text.splitlines()[0][:200] if text else type(exc).__name__
    files = weight_files(spec) if local else spec
    chain, cur = [], exc
    while cur is not None and len(chain) < 8:
        chain.append(cur)
        cur = cur.__cause__ or cur.__context__
    names = {type(c).__name__ for c in chain}
    pickled = refused_pickle(spec, exc)
    if pickled is not None:
        return pickled
    if "SafetensorError" in names or any("deserializ" in str(c) for c in chain):
        return CorruptFileError(f"could not load {files}: not a valid safetensors file ({reason})")
    return LoadError(f"could not load GPT-2 weights or tokenizer for {spec!r} ({reason})")


def _config_where(spec: str, local: bool) -> Path | None:
    """The ``config.json`` a load reads: the local directory's, or the hub cache's copy."""
    if local:
        return Path(spec) / "config.json"
    from interp.models.bridge import cached_config

    return cached_config(spec)


def _gpt2_weights(spec: str, local: bool, offline: bool) -> list[Path] | None:
    """The safetensors files of a GPT-2 checkpoint (local, or from the hub or its cache), None
    when it has only a pickled ``pytorch_model.bin`` (then ``transformers`` reads it)."""
    from interp.models.gpt2 import safetensors_files

    if local:
        return safetensors_files(Path(spec))
    from huggingface_hub import hf_hub_download

    for name in ("model.safetensors", "model.safetensors.index.json"):
        try:
            found = Path(hf_hub_download(spec, name, local_files_only=offline))
        except Exception:  # noqa: BLE001 - not in the repo (or the cache): try the next form
            continue
        return safetensors_files(found.parent)
    return None


def _load_hf(spec: str, device: str) -> Any:
    from interp.models.bridge import boot_bridge

    local = Path(spec).is_dir()
    offline = _offline()
    if not local and not offline:
        # one quick look at the hub first: without a network huggingface_hub retries for ~25 s
        # before it fails; a model in the cache is then read from there, else one line at once
        offline = check_hub(spec)
    config_file = _sized_config(spec, local)
    hf_cfg = _hf_config(spec, local, offline, config_file)
    gpt2 = getattr(hf_cfg, "model_type", None) == "gpt2"
    if config_file is None:  # downloaded just now: size it from what transformers read
        config_file = _config_where(spec, local) or Path(spec) / "config.json"
        model_config_preflight(hf_cfg.to_dict(), config_file, copies=2 if gpt2 else 1)
    if gpt2:
        return _load_gpt2(spec, hf_cfg, config_file, local, offline).to(device).eval()
    return boot_bridge(spec, device=device)


def _sized_config(spec: str, local: bool) -> Path | None:
    """The model's ``config.json`` where it is already on disk, sized before transformers reads
    it (some configs build per-layer lists at once); None when it is not on disk yet."""
    from interp.models.bridge import read_model_config

    config_file = _config_where(spec, local)
    if config_file is not None:
        # a GPT-2 without safetensors is imported through transformers: two models exist together
        raw = read_model_config(config_file)
        gpt2 = raw.get("model_type") == "gpt2"
        single = local and (Path(spec) / "model.safetensors").is_file()
        model_config_preflight(raw, config_file, copies=2 if gpt2 and not single else 1)
    return config_file


def _hf_config(spec: str, local: bool, offline: bool, config_file: Path | None) -> Any:
    """transformers' config of ``spec``; its failure is one line saying where it looked."""
    from transformers import AutoConfig

    from interp.models.bridge import hub_offline, quiet_loading

    try:
        with quiet_loading(), hub_offline(offline):
            return AutoConfig.from_pretrained(
                spec, local_files_only=local or offline, trust_remote_code=False
            )
    except _HF_ERRORS as e:
        where = (
            "a local directory"
            if local
            else (
                "the HF cache (HF_HUB_OFFLINE=1)"
                if _offline()
                else "the Hugging Face hub and its cache"
            )
        )
        reason = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        if "custom code" in reason or "trust_remote_code" in reason:
            raise LoadError(
                f"refusing to load model {spec!r}: it needs its own Python code "
                "(trust_remote_code), which interp never runs"
            ) from e
        if local:
            raise LoadError(
                f"could not load model {spec!r}: transformers cannot read its config "
                f"{config_file} ({reason})"
            ) from e
        raise LoadError(
            f"could not load model {spec!r}: not an interp run, and no config found in {where} ({reason})"
        ) from e


def _load_gpt2(spec: str, hf_cfg: Any, config_file: Path, local: bool, offline: bool) -> Any:
    """GPT-2 as interp's own hooked model: straight from safetensors (else through
    transformers' loader, which reads a pickle as tensors only), with its tokenizer."""
    from transformers import AutoTokenizer

    from interp.data import HFTokenizer
    from interp.models.bridge import hub_offline, quiet_loading
    from interp.models.gpt2 import from_hf_gpt2, from_safetensors, gpt2_config

    try:
        gpt2_config(hf_cfg)  # what the importer refuses, refused before the weights load
    except InterpError as e:
        raise LoadError(f"could not load model {spec!r}: {config_file}: {e}") from e
    try:
        with quiet_loading(), hub_offline(offline):
            files = _gpt2_weights(spec, local, local or offline)
            hf_model = None
            if files is None:
                # only a pickled pytorch_model.bin: transformers reads it with
                # torch.load(weights_only=True), which refuses anything but tensors
                from transformers import GPT2LMHeadModel

                hf_model = GPT2LMHeadModel.from_pretrained(
                    spec, local_files_only=local or offline, weights_only=True
                )
            tokenizer = AutoTokenizer.from_pretrained(
                spec, local_files_only=local or offline, trust_remote_code=False
            )
    except InterpError:
        raise
    except Exception as e:  # noqa: BLE001 - a third-party loader's failure becomes one line
        raise _weights_error(spec, local, e) from e
    # never run code from the checkpoint: safetensors hold tensors only
    model = from_safetensors(hf_cfg, files) if files is not None else from_hf_gpt2(hf_model)
    del hf_model
    model.tokenizer = HFTokenizer(tokenizer)
    return model


def check_hub(spec: str) -> bool:
    """Whether a hub name must be read from the cache only (True: the hub is unreachable and
    the model is in the cache); one line at once when it is unreachable and not cached."""
    from interp.models.bridge import cached_config, hub_problem

    problem = hub_problem()
    if problem is None:
        return False
    if cached_config(spec) is not None:
        return True
    raise LoadError(
        f"could not load model {spec!r}: not a local directory, the Hugging Face hub is "
        f"unreachable ({problem}) and the model is not in the local cache; give a local "
        "directory, or run where the hub can be reached"
    )


def load_model(spec: str | os.PathLike, device: str = "cpu") -> Any:
    """Load a hooked model (see the module docstring for what ``spec`` may be)."""
    spec_str = str(spec)
    if not spec_str.strip():
        raise LoadError("empty model spec")
    path = Path(spec_str).expanduser()
    if path.is_dir():
        config_file = path / "config.json"
        if not (config_file.exists() or config_file.is_symlink()):
            raise LoadError(
                f"could not load model {spec_str!r}: the directory has no config.json "
                "(neither an interp run nor a Hugging Face model)"
            )
        from interp.models.bridge import read_model_config

        if read_model_config(config_file).get("kind") == "train":
            return load_run_model(path, device)
        return _load_hf(str(path), device)
    if path.exists():
        raise LoadError(
            f"could not load model {spec_str!r}: it is a file; give a run directory, "
            "a Hugging Face directory or a hub name"
        )
    looks_like_path = spec_str.startswith((".", "/", "~")) or spec_str.count("/") > 1
    if looks_like_path:
        raise LoadError(f"could not load model {spec_str!r}: no such directory")
    try:
        return _load_hf(spec_str, device)
    except InterpError:
        raise
    except Exception as e:  # noqa: BLE001 - anything from a third-party loader becomes one line
        raise LoadError(f"could not load model {spec_str!r} ({type(e).__name__}: {e})") from e


__all__ = ["load_model", "load_run_model"]
