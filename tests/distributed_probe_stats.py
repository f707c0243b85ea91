"""Run under ``torchrun`` (or alone) by ``tests/test_distributed.py``: the probe's sufficient
statistics of a model, all-reduced over the ranks, saved by rank 0.

``python distributed_probe_stats.py MODEL OUT``: twice, with float64 products (the tiny model's
own) and with float32 products (``FLOAT32_PRODUCTS_FROM`` lowered below its width: the path of
GPT-2-sized models, rows shifted by the first batch's means); keys ``float64.*`` and ``float32.*``.
"""

from __future__ import annotations

import sys
from typing import Any

import torch
from safetensors.torch import save_file


def main(model_spec: str, out: str) -> None:
    import probes.run as run
    import probes.statistics as statistics
    from interp import distributed, load_model

    torch.set_num_threads(1)
    model = load_model(model_spec)
    config = run.ProbeConfig(model=model_spec, horizon=2, tokens=3000, seq_len=16, batch_size=4)
    prep = run.prepare(model, config, model_spec)
    tensors: dict[str, torch.Tensor] = {}
    for products, float32_from in (("float64", 512), ("float32", 8)):
        statistics.FLOAT32_PRODUCTS_FROM = float32_from
        state = run.collect_statistics(model, prep)
        tensors.update({f"{products}.{k}": v for k, v in _tensors(state).items()})
    if distributed.is_main():
        save_file(tensors, out)


def _tensors(state: Any) -> dict[str, torch.Tensor]:
    tensors: dict[str, torch.Tensor] = {}
    for which, ridges in (("train", state.train), ("val", state.val)):
        for layer, ridge in ridges.items():
            names = ("sx", "sy", "xtx", "xty", "yy", "shift_x", "shift_y")
            for name in names:
                tensors[f"{which}.{layer}.{name}"] = getattr(ridge, name).contiguous()
            tensors[f"{which}.{layer}.n"] = torch.tensor([ridge.n], dtype=torch.float64)
    tensors["unigram"] = torch.from_numpy(state.ngrams.unigram.copy())
    tensors["products_float32"] = torch.tensor([state.products == torch.float32])
    return tensors


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
