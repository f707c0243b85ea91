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
