"""``interp reproduce NAME --scale paper``: each preset's numbers are the paper's (the source of
each number in a comment), each runs for 2 steps on a CPU, and its time estimate is printed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cli_helpers import assert_one_line_error, invoke

import interp.reproductions  # noqa: F401  (registers the presets)
from interp import presets
from interp.estimates import transformer_params
from interp.experiments.reproduce import ReproduceConfig
from interp.presets import Work, estimate, estimate_seconds, get_preset, preset_names


def test_every_paper_preset_is_registered() -> None:
    assert preset_names("paper") == ("cope", "counting", "grokking", "precache")


def test_grokking_preset_is_nandas_config() -> None:
    n = get_preset("grokking", "paper").nanda.resolved()
    # mechanistic-interpretability-grokking/progress-measures-paper transformers.py, Config:
    # lr 1e-3, weight_decay 1.0, p 113, d_model 128, frac_train 0.3, seed 0, d_mlp 4*d_model,
    # num_heads 4, use_ln False; Trainer: AdamW betas (0.9, 0.98), LambdaLR min(step/10, 1)
    assert (n.p, n.train_fraction, n.pairs, n.d_model, n.width) == (113, 0.3, "all", 128, 512)
    assert (n.lr, n.weight_decay, n.beta1, n.beta2, n.seed) == (1e-3, 1.0, 0.9, 0.98, 0)
    assert n.optim.warmup == 10 and n.variant == "nanda"
    assert n.steps == 40_000  # the paper's 40k epochs (the code's num_epochs default is 50k)


def test_grokking_preset_is_pairs_notebook_config() -> None:
    q = get_preset("grokking", "paper").pair.resolved()
    # PAIR-code/ai-explorables server-side/grokking/MLP_Modular_Addition.ipynb, `hyper`:
    # n_tokens 67, percent_train .4, embed_size 500, hidden_size 24, weight_decay 1,
    # learning_rate 1e-3, max_steps 50000 (range(max_steps + 1) updates), seed 165,
    # is_symmetric_input True, embed_config 'tied', b1 .9, b2 .98
    assert (q.p, q.train_fraction, q.pairs, q.d_embed, q.width) == (67, 0.4, "ordered", 500, 24)
    assert (q.lr, q.weight_decay, q.beta1, q.beta2, q.seed) == (1e-3, 1.0, 0.9, 0.98, 165)
    assert q.steps == 50_001 and q.variant == "pair" and q.log_every == 100
    assert q.definition.loss == "class_mean" and q.definition.split == "pair"


def test_counting_preset_is_the_papers_setup() -> None:
    s = get_preset("counting", "paper").sweep
    # Yehudai et al. 2024 (arXiv 2407.15160), training setup (no public code): 2 layers,
    # 4 heads, d 8..128, m 5..150, n = 10 m, Adam 1e-4, batch 16, 100k steps
    assert (s.n_layers, s.n_heads, s.n_factor, s.lr, s.batch_size, s.steps) == (
        2, 4, 10, 1e-4, 16, 100_000,
    )  # fmt: skip
    assert (min(s.d_values), max(s.d_values), min(s.m_values), max(s.m_values)) == (8, 128, 5, 150)


def test_estimate_follows_the_work_and_the_throughput() -> None:
    work = Work(steps=1000, flops=2e12)
    assert estimate_seconds(work, "cpu", 1e10) == pytest.approx(1000 * 2e-4 + 200)
    assert estimate_seconds(work, "cuda", 1e12) == pytest.approx(1000 * 1.5e-3 + 2)
    e = estimate(get_preset("grokking", "paper"), "cuda", measure=False)
    assert e["throughput"] == "assumed" and e["steps"] == 90_001
    assert "on cuda" in e["text"] and e["seconds"] > 0


def _small_grokking() -> Any:
    """The grokking preset's code path at small moduli (p 113 spends a minute in analyses)."""
    preset = get_preset("grokking", "paper")
    return type(preset)(nanda=preset.nanda.replace(p=13, d_model=32, width=64),
                        pair=preset.pair.replace(p=11, d_embed=40))  # fmt: skip


def test_grokking_paper_preset_runs_two_steps(tmp_path: Path) -> None:
    notes: list[str] = []
    claims = _small_grokking().run(tmp_path, notes.append, "cpu", 2)
    assert len(claims) == 3
    for part in ("nanda", "pair"):
        rows = (tmp_path / part / "metrics.jsonl").read_text().splitlines()
        assert rows and '"step": 2' in rows[-1] or any('"step": 2' in r for r in rows)
    assert any("no attention or unembedding biases" in n for n in notes)


def test_counting_paper_preset_runs_two_steps(tmp_path: Path) -> None:
    preset = get_preset("counting", "paper")
    small = type(preset)(preset.sweep.replace(d_values=(8,), m_values=(5,), eval_samples=16))
    claims = small.run(tmp_path, lambda text: None, "cpu", 2)
    assert len(claims) == 2
    assert (tmp_path / "sweep" / "results.json").is_file()


def test_counting_paper_preset_trains_on_the_device_it_is_given(
    tmp_path: Path, monkeypatch: Any
) -> None:
    """--scale paper --device cuda reaches the count sweep (it once refused any device but the
    CPU, though the sweep's batched trainer takes one)."""
    import interp.experiments as experiments

    seen = {}

    class Stop(Exception):
        pass

    def execute(kind: str, config: Any, out: Path, **kw: Any) -> Any:
        seen["kind"], seen["device"], seen["steps"] = kind, config.sweep.device, config.sweep.steps
        raise Stop

    monkeypatch.setattr(experiments, "execute", execute)
    with pytest.raises(Stop):
        get_preset("counting", "paper").run(tmp_path, lambda text: None, "cuda:0", 2)
    assert seen == {"kind": "count-sweep", "device": "cuda:0", "steps": 2}


def test_cli_prints_the_estimate_and_runs(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setitem(presets._PRESETS, ("grokking", "paper"), _small_grokking())
    out = tmp_path / "run"
    result = invoke("reproduce", "grokking", "--scale", "paper", "--steps-override", "2",
                    "--out", str(out))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "grokking at paper scale: 90,001 optimizer steps" in result.output
    assert "GFLOP/s measured" in result.output
    assert (out / "claims.json").is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["collapse", "--scale", "paper"], "no paper preset"),
        (["grokking", "--scale", "huge"], "unknown --scale"),
        (["grokking", "--scale", "paper", "--quick"], "--quick is the cpu scale"),
        (["grokking", "--steps-override", "2"], "are for --scale paper"),
        (["grokking", "--scale", "paper", "--steps-override", "0"], "must be >= 1"),
    ],
)
def test_bad_scale_options_are_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    out = tmp_path / "never"
    result = invoke("reproduce", *args, "--out", str(out))
    assert_one_line_error(result, message)
    assert not out.exists()


def test_config_reads_back() -> None:
    c = ReproduceConfig(name="grokking", scale="paper", device="cpu", steps=2)
    assert ReproduceConfig.from_dict(c.to_dict()) == c


def test_precache_preset_is_wu_et_als_synthetic_config() -> None:
    s = get_preset("precache", "paper").synthetic
    m, t, o = s.model, s.train, s.train.optim
    # wiwu2390/FutureGPT2-public src/data/synthetic.py SyntheticSeqDataset: seq_len 64,
    # f = sin(10 x); src/notebooks/lit_synthetic_seq.ipynb: conv 10, shift 1 (y_n sums
    # f(x_{n-1..n-10})), p 1., batch_size 512, n_positions 64, n_inner None (4 n_embd), pdrops 0,
    # relu, in_dim 2; the checkpoints src/notebooks/synthetic_interp.ipynb reads:
    # "SYNTH-GPT2-FIN_conv-10_shift-1_p-1_lr-0.001_n_embd-128_n_head-2_n_layer-2_activation_
    # function-relu_global_step=58593" (the last logged step index: 58,594 steps)
    assert dict(s.data.task_options) == {"length": 64, "frequency": 10.0, "window": 10, "p": 1.0}
    assert (m.n_layers, m.d_model, m.n_heads, m.d_mlp, m.act_fn) == (2, 128, 2, 512, "relu")
    assert (m.positional, t.steps, t.batch_size) == ("absolute", 58_594, 512)
    # src/models/regression_model.py LitGPT2RegModel: AdamW(weight_decay=decay=0.01),
    # get_cosine_schedule_with_warmup(warmup 0.01 of the steps, to 0), no clipping, HuberLoss
    assert (o.lr, o.weight_decay, o.warmup_steps, o.min_lr_ratio, o.grad_clip) == (
        1e-3, 0.01, 585, 0.0, 0.0,
    )  # fmt: skip
    assert (o.beta1, o.beta2) == (0.9, 0.999)  # torch AdamW defaults
    assert s.myopia.seeds == (0,) and s.myopia.probe_layer == 1


def test_precache_preset_is_wu_et_als_gpt2_config() -> None:
    x = get_preset("precache", "paper").text
    m, t, o, d = x.model, x.train, x.train.optim, x.data
    # GPT-2 124M: src/notebooks/lit_gpt2.ipynb LitGPTModel, AutoConfig.from_pretrained('gpt2')
    # (12 layers, n_embd 768, 12 heads, gelu_new, tied wte/lm_head, no lm_head bias)
    assert (m.n_layers, m.d_model, m.n_heads, m.d_mlp, m.act_fn) == (12, 768, 12, 3072, "gelu_new")
    assert m.tied_embeddings and not m.unembed_bias and m.positional == "absolute"
    params = transformer_params(12, 768, 3072, d.bpe_vocab_size, 64, tied=True)
    assert 123e6 < params < 125e6 and d.bpe_vocab_size == 50_257
    # src/data/msmarco.py: BEIR's msmarco corpus, GPT-2 tokens cut at 64 (the notebooks load
    # msmarco_GPT2_64tokens_full), SPLIT_RATIO val 0.01; lit_gpt2.ipynb: Adam lr 6e-4,
    # num_warmup_steps 1000, cosine, batch_size 512, max_epochs 1; lit_myopic.ipynb loads
    # "GPT2-MSMARCO-COSINE_global_step=9099.0_val_loss=3.28" (9,100 steps)
    assert (m.n_ctx, d.corpus, d.val_fraction) == (64, "hf:BeIR/msmarco:corpus@corpus", 0.01)
    assert (t.steps, t.batch_size, o.lr, o.warmup_steps, o.weight_decay) == (
        9_100, 512, 6e-4, 1_000, 0.0,
    )  # fmt: skip
    assert (o.min_lr_ratio, o.beta2, o.grad_clip) == (0.0, 0.999, 0.0)


def test_cope_preset_is_rams_run_sh() -> None:
    preset = get_preset("cope", "paper")
    parts = preset.parts()
    assert list(parts) == ["count-vars-1", "count-vars-3", "count-vars-5", "flipflop"]
    for name, c in parts.items():
        o = c.train_config(0, c.steps).optim
        # facebookresearch/RAM projects/cope/run.sh MODEL_ARGS: --nlayers 4 --hid-sz 256
        # --nheads 4 --block-size 512 (simple_transformer.py: ff_sz = 4 hid_sz); GENERAL_ARGS:
        # --emb-tie --nepochs 100 --batch-sz 64 --lr 0.00007
        assert (c.n_layers, c.d_model, c.n_heads, c.d_mlp) == (4, 256, 4, 1024)
        assert c.tied_embeddings and c.model_config("cope").tied_embeddings
        # 100 epochs of scripts/count_data_gen.py's --ntrain 10000 at batch 64 (get_loader:
        # drop_last False): 157 steps an epoch
        assert (c.batch_size, c.steps, c.eval_sequences) == (64, 15_700, 1_000)  # --ntest 1000
        # src/trainer.py: --optimizer adam (torch Adam: betas 0.9, 0.999, no weight decay),
        # --lr-decay None (constant), --grad-clip 0
        assert (o.lr, o.weight_decay, o.warmup_steps, o.min_lr_ratio, o.grad_clip) == (
            7e-5, 0.0, 0, 1.0, 0.0,
        )  # fmt: skip
        assert (o.beta1, o.beta2) == (0.9, 0.999)
        # src/cope/context_position.py: --cope-npos unset -> block_size + 1, --cope-layers 1,
        # sep-key / val-gates / nodiv / shared off (interp's CoPE defaults)
        assert dict(c.positional_options["cope"]) == {"npos": 513}
        assert len(c.seeds) == 3  # README: "average test error rates of 3 random seeds"
        if name.startswith("count-vars"):
            # --max-steps 512, random.randint(3, args.max_steps), MAX_VAL 10; run.sh: abs, rel, cope
            assert dict(c.task_options) == {
                "n_vars": int(name[-1]), "min_steps": 3, "max_steps": 512, "max_value": 10,
            }  # fmt: skip
            assert c.encodings == ("absolute", "rel", "cope")
        else:  # 256 instructions = 512 tokens, the block size; Table 2: absolute, RoPE, CoPE
            assert dict(c.task_options) == {"length": 256}
            assert c.encodings == ("absolute", "rope", "cope")


def test_new_presets_print_their_estimate() -> None:
    for name, steps in (("precache", 2 * (58_594 + 9_100)), ("cope", 4 * 9 * 15_700)):
        e = estimate(get_preset(name, "paper"), "cuda", measure=False)
        assert e["steps"] == steps and e["seconds"] > 3600, e["text"]
        assert e["text"].startswith(f"{name} at paper scale: {steps:,} optimizer steps")


def test_cope_preset_host_memory_on_a_device() -> None:
    """With --device cuda the host holds no training activations: the count-vars parts (n_ctx
    ~1,545 for the out-of-distribution split) would otherwise be refused on a 128 GiB host; the
    CPU estimate is as before."""
    from interp.experiments.registry import get_experiment

    bench = get_experiment("pe-bench")
    part = get_preset("cope", "paper").parts()["count-vars-3"]
    assert bench.estimate(part).memory > 100 * 2**30
    assert bench.estimate(part.replace(device="cuda")).memory < 2**30


def _small_precache() -> Any:
    """The precache preset's code path with tiny twins: the synthetic model at d 16, GPT-2's
    shape at 2 layers and d 32 on a slice of the built-in corpus (byte tokens), small batches."""
    p = get_preset("precache", "paper")

    def small(cfg: Any, **data: Any) -> Any:
        model = cfg.model.replace(n_layers=2, d_model=16, n_heads=2, d_mlp=32)
        train = cfg.train.replace(batch_size=4, eval_batches=1)
        myopia = cfg.myopia.replace(probe_sequences=16, token_probe_tokens=600)
        return cfg.replace(model=model, train=train, data=cfg.data.replace(**data), myopia=myopia)

    text = small(p.text, corpus="builtin", tokenizer="byte", max_chars=30_000, val_fraction=0.2)
    return type(p)(synthetic=small(p.synthetic), text=text)


def test_precache_paper_preset_runs_two_steps(tmp_path: Path) -> None:
    notes: list[str] = []
    claims = _small_precache().run(tmp_path, notes.append, "cpu", 2)
    assert len(claims) == 8
    for part in ("synthetic", "text"):
        assert (tmp_path / part / "results.json").is_file()
    assert any("2 layers, d 16" in n for n in notes)
    rows = (tmp_path / "text" / "twins" / "seed0-myopic" / "metrics.jsonl").read_text()
    assert '"step": 2' in rows


def _small_cope() -> Any:
    """The cope preset's code path at small sizes (short programs, one seed, d 16)."""
    p = get_preset("cope", "paper")

    def small(cfg: Any, **options: Any) -> Any:
        return cfg.replace(task_options={**cfg.task_options, **options}, seeds=(0,), n_layers=1,
                           d_model=16, d_mlp=32, n_heads=2, batch_size=4, eval_sequences=8,
                           n_maps=1)  # fmt: skip

    counting = tuple(small(c, max_steps=6) for c in p.counting)
    return type(p)(counting=counting, flipflop=small(p.flipflop, length=8))


def test_cope_paper_preset_runs_two_steps(tmp_path: Path) -> None:
    claims = _small_cope().run(tmp_path, lambda text: None, "cpu", 2)
    assert len(claims) == 4
    for part in ("count-vars-1", "count-vars-3", "count-vars-5", "flipflop"):
        assert (tmp_path / "pe-bench" / part / "results.json").is_file()


@pytest.mark.parametrize(("name", "small", "steps"),
                         [("precache", _small_precache, "135,388"), ("cope", _small_cope, "")])  # fmt: skip
def test_cli_prints_the_new_estimates_and_runs(
    tmp_path: Path, monkeypatch: Any, name: str, small: Any, steps: str
) -> None:
    monkeypatch.setitem(presets._PRESETS, (name, "paper"), small())
    out = tmp_path / "run"
    result = invoke("reproduce", name, "--scale", "paper", "--steps-override", "2",
                    "--out", str(out))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert f"{name} at paper scale: {steps}" in result.output
    assert "GFLOP/s measured" in result.output
    assert (out / "claims.json").is_file()


def test_precache_paper_preset_refuses_an_unreachable_hub(tmp_path: Path, monkeypatch: Any) -> None:
    from interp.models import hub

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    monkeypatch.setattr(hub, "hub_problem", lambda: "https://huggingface.co: gaierror: no DNS")
    out = tmp_path / "never"
    result = invoke("reproduce", "precache", "--scale", "paper", "--out", str(out))
    assert_one_line_error(result, r"trains GPT-2 on hf:BeIR/msmarco:corpus@corpus and the hub "
                                  r"does not answer \(https://huggingface.co: gaierror")  # fmt: skip
    assert not out.exists()


def test_precache_paper_preset_offline_needs_the_cached_corpus(
    tmp_path: Path, monkeypatch: Any
) -> None:
    from interp.data import corpus
    from interp.errors import LoadError

    def missing(spec: str, max_chars: int | None = None) -> Any:
        raise LoadError(f"could not load corpus {spec!r}: tried ...: ConnectionError: not cached")

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(corpus, "load_corpus", missing)
    out = tmp_path / "never"
    result = invoke("reproduce", "precache", "--scale", "paper", "--out", str(out))
    assert_one_line_error(result, "it is not in the local datasets cache .*HF_HUB_OFFLINE=1")
    assert not out.exists()


def test_preset_configs_read_back() -> None:
    """The new fields round-trip, and are left out of config.json at their defaults (a
    cpu-scale pe-bench config.json reads as before)."""
    from interp.analysis.pe_bench import PEBenchConfig
    from interp.experiments.precache import PrecacheConfig

    for cfg in get_preset("cope", "paper").parts().values():
        assert PEBenchConfig.from_dict(cfg.to_dict()) == cfg
        assert cfg.to_dict()["optim"]["lr"] == 7e-5 and cfg.to_dict()["tied_embeddings"]
    assert not {"optim", "tied_embeddings"} & set(PEBenchConfig().to_dict())
    for cfg in get_preset("precache", "paper").parts().values():
        assert PrecacheConfig.from_dict(cfg.to_dict()) == cfg
