"""Shared fixtures: offline hub, a private cache, deterministic torch, tiny model builders."""

from __future__ import annotations

import os

import pytest
import torch

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
# collapse --mode auto follows the measured native bf16/fp16 speed; tests pin it to "slow" (auto =
# emulated on a CPU) so that no result depends on a timing (tests/test_precision.py measures)
os.environ["INTERP_NATIVE_LOWP"] = "slow"
torch.set_num_threads(1)  # tiny test models: one thread is fastest, and CI cores are few


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path_factory):
    """Every test: offline hub, its own interp cache, and a fixed global seed."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("INTERP_CACHE", str(tmp_path_factory.mktemp("interp-cache")))
    torch.manual_seed(0)


from report_runs import reports  # noqa: E402, F401  (session fixture: one run of every report kind)
