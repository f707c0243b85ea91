"""Every registered experiment's config reads back from the ``config.json`` it writes (#14):
the config, through ``run_config`` and JSON, then ``from_dict``, is the same config.  A new
experiment is covered automatically (its default config, or an example below)."""

from __future__ import annotations

import json

import pytest

from interp.experiments.execute import run_config
from interp.experiments.registry import experiment_kinds, get_experiment
from interp.io import dumps_json


def _example(kind: str):
    """A config of ``kind`` with non-default parts where the defaults would say little."""
    from interp.config import DataConfig, ModelConfig, TrainConfig, TrainJob
    from interp.experiments.precache import PrecacheConfig
    from interp.experiments.reproduce import ReproduceConfig

    examples = {
        "train": lambda: TrainJob(ModelConfig(positional="cope", positional_options={"npos": 8}),
                                  TrainConfig(steps=7), DataConfig(source="task", task="copy")),
        "precache": lambda: PrecacheConfig.default().replace(),
        "reproduce": lambda: ReproduceConfig(name="collapse", quick=True),
    }  # fmt: skip
    return examples.get(kind, get_experiment(kind).config_cls)()


@pytest.mark.parametrize("kind", experiment_kinds())
def test_every_config_reads_back_from_its_config_json(kind: str) -> None:
    exp = get_experiment(kind)
    config = _example(kind)
    written = json.loads(dumps_json(run_config(kind, config)))
    assert written["kind"] == kind
    assert exp.config_cls.from_dict(written) == config


def test_grok_configs_with_and_without_the_variant_fields_read_back() -> None:
    """The grok config's per-variant fields (variant, d_embed, seed: ``None`` until resolved)
    round-trip unresolved and resolved; a config.json written before variants (no ``variant``,
    d_embed 32, seed 0) reads back as interp's MLP, unchanged."""
    from interp.experiments.grok import GrokRun
    from interp.grok.config import GrokConfig

    for cfg in (GrokConfig(), GrokConfig().resolved(),
                GrokConfig(variant="interp", d_embed=32, seed=0),
                GrokConfig(variant="pair", d_embed=64, seed=7).resolved()):  # fmt: skip
        written = json.loads(dumps_json(run_config("grok", GrokRun(cfg))))
        assert GrokRun.from_dict(written) == GrokRun(cfg)
    old = GrokConfig(variant="interp", d_embed=32, seed=0).resolved().to_dict()
    del old["variant"]
    back = GrokConfig.from_dict(old)
    assert (back.variant, back.d_embed, back.seed) == ("interp", 32, 0)
    assert back == back.resolved() == GrokConfig(variant="interp").resolved()
