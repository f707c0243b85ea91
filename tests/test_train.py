"""Training loop, checkpoints and resume."""

from __future__ import annotations

import json
import math

import pytest
import torch
from helpers import tiny_config, tiny_task_job

from interp.errors import CorruptFileError, InterpError, LoadError, NumericalError
from interp.io import read_jsonl
from interp.models import HookedTransformer
from interp.train.checkpoint import (
    latest_checkpoint,
    load_model_weights,
    load_weights,
    restore_checkpoint,
    save_checkpoint,
)
from interp.train.job import run_training
from interp.train.optim import build_optimizer, lr_at


def _weights(path):
    return load_weights(path / "model.safetensors")


def test_task_training_learns_and_writes_a_run(tmp_path) -> None:
    run = run_training(tmp_path / "run", tiny_task_job(steps=150))
    for name in ("config.json", "env.json", "metrics.jsonl", "model.safetensors"):
        assert (run.path / name).is_file(), name
    rows = run.metrics()
    val = [r for r in rows if r["split"] == "val"]
    assert val[-1]["loss"] < 0.5 * val[0]["loss"]
    assert len(val[-1]["loss_by_pos"]) == 10  # 2 * length + 2 positions
    assert all(r["step"] % 5 == 0 for r in rows if r["split"] == "train")
    cfg = json.loads((run.path / "config.json").read_text())
    assert cfg["model"]["d_vocab"] == 8 and cfg["model"]["n_ctx"] == 10  # fixed by the task


def test_resume_after_stop_is_bit_identical(tmp_path) -> None:
    full = run_training(tmp_path / "full", tiny_task_job(steps=40))

    class Stop(Exception):
        pass

    def stop_at_25(done: int) -> None:  # killed between checkpoints 20 and 30
        if done == 25:
            raise Stop

    with pytest.raises(Stop):
        run_training(tmp_path / "part", tiny_task_job(steps=40), on_step=stop_at_25)
    assert not (tmp_path / "part" / "model.safetensors").exists()
    resumed = run_training(tmp_path / "part", tiny_task_job(steps=40), resume=True)
    a, b = _weights(full.path), _weights(resumed.path)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    strip = lambda rows: [{k: v for k, v in r.items() if k != "elapsed"} for r in rows]  # noqa: E731
    assert strip(full.metrics()) == strip(resumed.metrics())


def test_resume_drops_metrics_logged_after_the_checkpoint(tmp_path) -> None:
    run = run_training(tmp_path / "r", tiny_task_job(steps=20, checkpoint_every=10))
    # simulate a crash after step 20's metrics but with the step-20 checkpoint gone
    ckpt = latest_checkpoint(run.path)
    assert ckpt is not None and ckpt.step == 20
    import shutil

    shutil.rmtree(ckpt.path)
    (run.path / "checkpoints" / "latest.json").unlink()
    with open(run.metrics_path, "a") as f:
        f.write('{"step": 25, "split": "train", "lo')  # torn line
    resumed = run_training(tmp_path / "r", tiny_task_job(steps=20), resume=True)
    steps = [r["step"] for r in resumed.metrics() if r["split"] == "train"]
    assert steps == sorted(steps) and len(steps) == len(set(steps))


def test_resume_refuses_a_different_config(tmp_path) -> None:
    run_training(tmp_path / "r", tiny_task_job(steps=10))
    with pytest.raises(InterpError, match="optim"):
        run_training(tmp_path / "r", tiny_task_job(steps=10, optim={"lr": 0.5}), resume=True)


def test_existing_run_is_not_overwritten_silently(tmp_path) -> None:
    run_training(tmp_path / "r", tiny_task_job(steps=5))
    before = (tmp_path / "r" / "model.safetensors").read_bytes()
    with pytest.raises(InterpError, match="already exists"):
        run_training(tmp_path / "r", tiny_task_job(steps=5, seed=1))
    assert (tmp_path / "r" / "model.safetensors").read_bytes() == before
    run_training(tmp_path / "r", tiny_task_job(steps=5, seed=1), overwrite=True)
    assert (tmp_path / "r" / "model.safetensors").read_bytes() != before


def test_checkpoint_round_trip(tmp_path) -> None:
    model = HookedTransformer(tiny_config(), seed=1)
    opt = build_optimizer(model, tiny_task_job().train.optim)
    model(torch.randint(0, 20, (2, 5)), return_type="loss").backward()
    opt.step()
    save_checkpoint(tmp_path, 7, model, opt, extra={"note": "x"})
    ckpt = latest_checkpoint(tmp_path)
    assert ckpt is not None and ckpt.step == 7 and ckpt.extra == {"note": "x"}
    model2 = HookedTransformer(tiny_config(), seed=2)
    opt2 = build_optimizer(model2, tiny_task_job().train.optim)
    restore_checkpoint(ckpt, model2, opt2)
    for k, v in model.state_dict().items():
        assert torch.equal(v, model2.state_dict()[k])
    s1, s2 = opt.state_dict()["state"], opt2.state_dict()["state"]
    for idx in s1:
        for key in s1[idx]:
            assert torch.equal(torch.as_tensor(s1[idx][key]), torch.as_tensor(s2[idx][key]))
    assert not list(tmp_path.glob("checkpoints/.tmp-*")), "temporary checkpoint folders left behind"


def test_corrupt_and_mismatched_checkpoints_are_refused(tmp_path) -> None:
    model = HookedTransformer(tiny_config(), seed=1)
    from interp.train.checkpoint import save_weights

    save_weights(tmp_path / "w.safetensors", model.state_dict())
    data = (tmp_path / "w.safetensors").read_bytes()
    (tmp_path / "trunc.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptFileError):
        load_model_weights(model, tmp_path / "trunc.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"\x00garbage" * 10)
    with pytest.raises(CorruptFileError):
        load_model_weights(model, tmp_path / "junk.safetensors")
    bigger = HookedTransformer(tiny_config(d_model=32), seed=1)
    with pytest.raises(CorruptFileError, match="shape"):
        load_model_weights(bigger, tmp_path / "w.safetensors")
    torch.save(model.state_dict(), tmp_path / "w.pt")
    with pytest.raises(LoadError, match="pickle"):
        load_model_weights(model, tmp_path / "w.pt")


def test_non_finite_loss_stops_with_the_step(tmp_path, monkeypatch) -> None:
    from interp.train import loop

    calls = {"n": 0}
    real = loop.per_token_loss

    def poisoned(out, batch):
        calls["n"] += 1
        loss = real(out, batch)
        return loss * float("nan") if calls["n"] == 13 else loss

    monkeypatch.setattr(loop, "per_token_loss", poisoned)
    with pytest.raises(NumericalError, match="step 12"):
        run_training(tmp_path / "r", tiny_task_job(steps=30, eval_every=100))
    ckpt = latest_checkpoint(tmp_path / "r")
    assert ckpt is not None and ckpt.step == 10  # the last good checkpoint is kept


def test_lr_schedule_warmup_then_cosine() -> None:
    from interp.config import OptimConfig

    cfg = OptimConfig(lr=1.0, warmup_steps=10, min_lr_ratio=0.1)
    assert lr_at(0, 100, cfg) == pytest.approx(0.1)
    assert lr_at(9, 100, cfg) == pytest.approx(1.0)
    assert lr_at(100, 100, cfg) == pytest.approx(0.1)
    values = [lr_at(s, 100, cfg) for s in range(10, 101)]
    assert all(a >= b for a, b in zip(values, values[1:], strict=False))
    assert math.isclose(lr_at(55, 100, cfg), 0.55, rel_tol=1e-6)


def test_metrics_jsonl_tolerates_torn_tail(tmp_path) -> None:
    p = tmp_path / "m.jsonl"
    p.write_text('{"step": 1}\n{"step": 2}\n{"st')
    assert [r["step"] for r in read_jsonl(p)] == [1, 2]
    from interp.io import append_jsonl

    append_jsonl(p, [{"step": 3}])
    assert [r["step"] for r in read_jsonl(p)] == [1, 2, 3]


def test_the_grokking_models_declare_that_every_parameter_decays() -> None:
    """PAIR and Nanda et al. decay all parameters (Nanda's transformer overrides what its hooked
    modules declare); one AdamW group, as before."""
    from interp.config import OptimConfig
    from interp.grok.models import FixedFourierMLP, NandaTransformer, PairMLP, ParityMLP
    from interp.train.optim import decay_split

    for model in (PairMLP(7), FixedFourierMLP(7), ParityMLP(5), NandaTransformer(7, d_model=16)):
        decayed, kept = decay_split(model)
        trained = [p for p in model.parameters() if p.requires_grad]
        assert kept == [] and [id(p) for p in decayed] == [id(p) for p in trained]
        assert len(build_optimizer(model, OptimConfig(weight_decay=0.5)).param_groups) == 1
    # Nanda's model has no attention biases (#16): held at zero, never trained, never decayed
    frozen = [(n, p) for n, p in NandaTransformer(7, d_model=16).named_parameters()
              if not p.requires_grad]  # fmt: skip
    assert {n.rsplit(".", 1)[1] for n, _ in frozen} == {"b_Q", "b_K", "b_V", "b_O"}
    assert all(not p.any() for _, p in frozen)


def test_weight_decay_skips_biases_norms_and_position_tables() -> None:
    from interp.config import OptimConfig

    variants = [("absolute", {}), ("cope", {}), ("rel", {})]
    variants += [("cope", {"every": 2, "shared": True}), ("cope", {"sep_gate_key": True})]
    for pe, options in variants:  # cope+rel: the relative table is a module of its own
        config = tiny_config(positional=pe, positional_options=options, n_layers=2)
        model = HookedTransformer(config, seed=0)
        opt = build_optimizer(model, OptimConfig(weight_decay=0.5))
        decayed = {id(p) for p in opt.param_groups[0]["params"]}
        for name, p in model.named_parameters():
            positional = name.startswith("pos_embed.") or ".position." in name
            assert (id(p) in decayed) == (p.ndim >= 2 and not positional), name
        assert (
            opt.param_groups[0]["weight_decay"] == 0.5
            and opt.param_groups[1]["weight_decay"] == 0.0
        )
