"""Training throughput: the hooked transformer against a plain PyTorch GPT of the same math.

Run by hand (not a test); prints a small table:

    python bench/train_throughput.py                  # 4 layers, d_model 128, ctx 128, batch 16
    python bench/train_throughput.py --positional rope
    python bench/train_throughput.py --profile        # plus a torch.profiler op table per model

The plain model is nanoGPT style (fused qkv ``nn.Linear``, ``nn.LayerNorm``, a precomputed causal
mask buffer, no HookPoints, no einops) with the hooked model's exact shape and math: pre-LayerNorm,
the same GELU, learned absolute positions (or RoPE, NeoX layout), explicit attention (scores,
-inf causal mask, softmax, @ v), biases, untied unembedding.  The hooked weights are copied into
it and the logits are checked equal at start-up, so the ratio compares implementations only.

Throughput is forward + backward + AdamW step on one fixed batch, the models interleaved
round by round (order alternating) after warm-up; medians are reported.  Model FLOP/s use the
standard estimate 6*N*T + 12*L*ctx*d_model*T per step (N = parameters outside the token and
position tables, W_U included since the unembedding is untied), against the best fp32 square
matmul measured in the same run.
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import platform
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from interp.config import ModelConfig
from interp.models import HookedTransformer, lm_loss

GELU = {"gelu": F.gelu, "gelu_new": lambda x: F.gelu(x, approximate="tanh")}


# --------------------------------------------------------------------------- plain model
class PlainAttention(nn.Module):
    def __init__(self, cfg: ModelConfig, sdpa: bool) -> None:
        super().__init__()
        self.n_heads, self.d_head = cfg.n_heads, cfg.head_dim
        inner = cfg.n_heads * cfg.head_dim
        self.qkv = nn.Linear(cfg.d_model, 3 * inner)
        self.proj = nn.Linear(inner, cfg.d_model)
        self.scale = 1.0 / math.sqrt(cfg.head_dim)
        self.sdpa = sdpa
        future = torch.ones(cfg.n_ctx, cfg.n_ctx, dtype=torch.bool).triu(1)
        self.register_buffer("future", future, persistent=False)
        self.rope = cfg.positional == "rope"
        if self.rope:
            half = self.d_head // 2
            inv_freq = 1.0 / (10000.0 ** (torch.arange(half, dtype=torch.float32) / half))
            angles = torch.arange(cfg.n_ctx, dtype=torch.float32)[:, None] * inv_freq[None, :]
            self.register_buffer("cos", torch.cat([angles.cos()] * 2, -1), persistent=False)
            self.register_buffer("sin", torch.cat([angles.sin()] * 2, -1), persistent=False)

    def rotate(self, x: Tensor) -> Tensor:  # (B, nh, T, hs), rotate halves (GPT-NeoX)
        T, half = x.shape[2], self.d_head // 2
        rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
        return x * self.cos[:T] + rotated * self.sin[:T]

    def forward(self, x: Tensor) -> Tensor:
        B, T, _ = x.shape
        q, k, v = self.qkv(x).view(B, T, 3, self.n_heads, self.d_head).permute(2, 0, 3, 1, 4)
        if self.rope:
            q, k = self.rotate(q), self.rotate(k)  # (B, nh, T, hs)
        if self.sdpa:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            att = (q @ k.transpose(-2, -1)) * self.scale  # (B, nh, T, T)
            att = att.masked_fill(self.future[:T, :T], float("-inf"))
            y = att.softmax(dim=-1) @ v  # (B, nh, T, hs)
        return self.proj(y.transpose(1, 2).reshape(B, T, self.n_heads * self.d_head))


class PlainBlock(nn.Module):
    def __init__(self, cfg: ModelConfig, sdpa: bool) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(cfg.d_model, eps=cfg.eps)
        self.attn = PlainAttention(cfg, sdpa)
        self.ln2 = nn.LayerNorm(cfg.d_model, eps=cfg.eps)
        self.fc = nn.Linear(cfg.d_model, cfg.d_mlp)
        self.out = nn.Linear(cfg.d_mlp, cfg.d_model)
        self.act = GELU[cfg.act_fn]

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.out(self.act(self.fc(self.ln2(x))))


class PlainGPT(nn.Module):
    def __init__(self, cfg: ModelConfig, sdpa: bool = False) -> None:
        super().__init__()
        self.wte = nn.Embedding(cfg.d_vocab, cfg.d_model)
        self.wpe = nn.Embedding(cfg.n_ctx, cfg.d_model) if cfg.positional == "absolute" else None
        self.blocks = nn.ModuleList([PlainBlock(cfg, sdpa) for _ in range(cfg.n_layers)])
        self.ln_f = nn.LayerNorm(cfg.d_model, eps=cfg.eps)
        self.lm_head = nn.Linear(cfg.d_model, cfg.d_vocab)

    def forward(self, tokens: Tensor) -> Tensor:
        x = self.wte(tokens)  # (B, T, C)
        if self.wpe is not None:
            x = x + self.wpe(torch.arange(tokens.shape[1], device=tokens.device))
        for block in self.blocks:
            x = block(x)
        return self.lm_head(self.ln_f(x))  # (B, T, vocab)


@torch.no_grad()
def copy_weights(hooked: HookedTransformer, plain: PlainGPT) -> None:
    """TransformerLens layout -> nn.Linear layout ([out, in] weights, fused q|k|v)."""
    plain.wte.weight.copy_(hooked.embed.W_E)
    if plain.wpe is not None:
        plain.wpe.weight.copy_(hooked.pos_embed.W_pos)
    for hb, pb in zip(hooked.blocks, plain.blocks, strict=True):
        a = hb.attn
        heads = lambda W: W.permute(0, 2, 1).flatten(0, 1)  # noqa: E731  [nh, C, hs] -> [nh*hs, C]
        pb.attn.qkv.weight.copy_(torch.cat([heads(a.W_Q), heads(a.W_K), heads(a.W_V)]))
        pb.attn.qkv.bias.copy_(torch.cat([a.b_Q.flatten(), a.b_K.flatten(), a.b_V.flatten()]))
        pb.attn.proj.weight.copy_(a.W_O.flatten(0, 1).T)
        pb.attn.proj.bias.copy_(a.b_O)
        for hn, pn in ((hb.ln1, pb.ln1), (hb.ln2, pb.ln2)):
            pn.weight.copy_(hn.w)
            pn.bias.copy_(hn.b)
        pb.fc.weight.copy_(hb.mlp.W_in.T)
        pb.fc.bias.copy_(hb.mlp.b_in)
        pb.out.weight.copy_(hb.mlp.W_out.T)
        pb.out.bias.copy_(hb.mlp.b_out)
    plain.ln_f.weight.copy_(hooked.ln_final.w)
    plain.ln_f.bias.copy_(hooked.ln_final.b)
    plain.lm_head.weight.copy_(hooked.unembed.W_U.T)
    plain.lm_head.bias.copy_(hooked.unembed.b_U)


# --------------------------------------------------------------------------- measurement
def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {os.cpu_count()} logical CPUs; torch {torch.__version__}"


def matmul_peak(sizes: tuple[int, ...] = (1024, 2048), repeats: int = 3) -> tuple[float, int]:
    """Best fp32 square-matmul FLOP/s over sizes x repeats (after one warm-up each)."""
    best, best_n = 0.0, 0
    g = torch.Generator().manual_seed(0)
    for n in sizes:
        a, b = torch.randn(n, n, generator=g), torch.randn(n, n, generator=g)
        a @ b
        for _ in range(repeats):
            t0 = time.perf_counter()
            a @ b
            rate = 2 * n**3 / (time.perf_counter() - t0)
            if rate > best:
                best, best_n = rate, n
    return best, best_n


def flops_per_step(cfg: ModelConfig, model: HookedTransformer, tokens: int) -> tuple[float, int]:
    embedding = model.embed.W_E.numel() + (
        model.pos_embed.W_pos.numel() if cfg.positional == "absolute" else 0
    )
    n = sum(p.numel() for p in model.parameters()) - embedding
    return 6 * n * tokens + 12 * cfg.n_layers * cfg.n_ctx * cfg.d_model * tokens, n


def check_equivalence(hooked: HookedTransformer, plains: list[PlainGPT], tokens: Tensor) -> str:
    ref_logits = hooked(tokens)
    ref_loss = lm_loss(ref_logits, tokens)
    ref_loss.backward()
    ref_gnorm = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in hooked.parameters()]))
    worst_logit, worst_grad = 0.0, 0.0
    for plain in plains:
        logits = plain(tokens)
        worst_logit = max(worst_logit, float((logits - ref_logits).detach().abs().max()))
        lm_loss(logits, tokens).backward()
        gnorm = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in plain.parameters()]))
        worst_grad = max(worst_grad, float((gnorm - ref_gnorm).abs() / ref_gnorm))
        plain.zero_grad(set_to_none=True)
    hooked.zero_grad(set_to_none=True)
    assert worst_logit <= 1e-4, f"hooked and plain logits differ by {worst_logit:.2e} (> 1e-4)"
    assert worst_grad <= 1e-4, f"hooked and plain gradient norms differ by {worst_grad:.2e} (rel)"
    return (
        f"max |logit diff| {worst_logit:.1e} (<= 1e-4 asserted), "
        f"grad-norm rel diff {worst_grad:.1e}, loss {ref_loss.item():.4f}"
    )


PHASES = ("fwd", "bwd", "adamw")


def make_step(model: nn.Module, tokens: Tensor, hooked: bool) -> Callable[[int], list[float]]:
    """A function running n training steps; returns seconds spent in [fwd+loss, bwd, AdamW]."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.1)

    def run(steps: int) -> list[float]:
        spent = [0.0, 0.0, 0.0]
        for _ in range(steps):
            t0 = time.perf_counter()
            if hooked:
                loss = model(tokens, return_type="loss")
            else:
                loss = lm_loss(model(tokens), tokens)
            t1 = time.perf_counter()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            t2 = time.perf_counter()
            optimizer.step()
            t3 = time.perf_counter()
            spent[0], spent[1], spent[2] = (
                spent[0] + t1 - t0,
                spent[1] + t2 - t1,
                spent[2] + t3 - t2,
            )
        return spent

    return run


def profile(runs: dict[str, Callable[[int], list[float]]], steps: int) -> None:
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    for name, run in runs.items():
        with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
            run(steps)
        print(f"\n--- torch.profiler, {name}, {steps} steps (self CPU time, top 18) ---")
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=18))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--d-model", type=int, default=128)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--d-mlp", type=int, default=None, help="default 4 * d_model")
    p.add_argument("--ctx", type=int, default=128)
    p.add_argument("--vocab", type=int, default=2048)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--steps", type=int, default=10, help="timed steps per model per round")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--positional", choices=("absolute", "rope"), default="absolute")
    p.add_argument("--act", choices=tuple(GELU), default="gelu")
    p.add_argument("--no-sdpa", action="store_true", help="skip the informational SDPA model")
    p.add_argument("--profile", action="store_true", help="print torch.profiler op tables")
    args = p.parse_args()

    torch.set_num_threads(args.threads)
    cfg = ModelConfig(
        n_layers=args.layers,
        d_model=args.d_model,
        n_heads=args.heads,
        d_mlp=args.d_mlp or 4 * args.d_model,
        n_ctx=args.ctx,
        d_vocab=args.vocab,
        act_fn=args.act,
        positional=args.positional,
    )
    hooked = HookedTransformer(cfg, seed=0)
    plain = PlainGPT(cfg)
    copy_weights(hooked, plain)
    models: dict[str, nn.Module] = {"hooked": hooked, "plain": plain}
    if not args.no_sdpa:
        models["plain+sdpa"] = PlainGPT(cfg, sdpa=True)
        copy_weights(hooked, models["plain+sdpa"])
    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, cfg.d_vocab, (args.batch, cfg.n_ctx), generator=g)
    n_tok = tokens.numel()

    print(f"date     {datetime.date.today()}")
    print(f"machine  {machine()}; threads {torch.get_num_threads()}")
    load = "/".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        f"config   layers={cfg.n_layers} d_model={cfg.d_model} heads={cfg.n_heads} "
        f"d_head={cfg.head_dim} d_mlp={cfg.d_mlp} ctx={cfg.n_ctx} vocab={cfg.d_vocab} "
        f"batch={args.batch} positional={cfg.positional} act={cfg.act_fn}; {n_tok} tokens/step"
    )
    print(
        f"check    {check_equivalence(hooked, [m for m in models.values() if m is not hooked], tokens)}"
    )

    runs = {name: make_step(m, tokens, m is hooked) for name, m in models.items()}
    for run in runs.values():
        run(args.warmup)
    rounds: dict[str, list[list[float]]] = {name: [] for name in runs}  # [round][phase] seconds
    names = list(runs)
    for r in range(args.rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:  # rotate the order
            rounds[name].append(runs[name](args.steps))

    peak, peak_n = matmul_peak()
    end_load = "/".join(f"{x:.2f}" for x in os.getloadavg())
    flops, n_params = flops_per_step(cfg, hooked, n_tok)
    print(
        f"flops    6*N*T + 12*L*ctx*d_model*T = {flops / 1e9:.2f} GFLOP/step "
        f"(N = {n_params:,} params excl. W_E/W_pos, incl. W_U; T = {n_tok} tokens)"
    )
    print(
        f"peak     fp32 matmul {peak / 1e9:.1f} GFLOP/s (best of 3 at n = 1024, 2048; best n={peak_n})"
    )
    print(
        f"timing   {args.rounds} interleaved rounds x {args.steps} steps after {args.warmup} "
        "warm-up; fwd + bwd + AdamW on one fixed batch; medians over rounds"
    )
    print(f"load     1/5/15-min load average {load} at start, {end_load} at end")
    print()
    header = f"{'model':<11} {'tokens/s':>9} {'min-max':>15} {'ms/step':>8}"
    header += "".join(f" {ph:>6}" for ph in PHASES) + f" {'GFLOP/s':>8} {'MFU':>6}"
    print(header)
    tps = {}
    for name, rs in rounds.items():
        rates = [args.steps * n_tok / sum(r) for r in rs]
        tps[name] = med = statistics.median(rates)
        phases = [1e3 * statistics.median(r[i] for r in rs) / args.steps for i in range(3)]
        print(
            f"{name:<11} {med:>9,.0f} {f'{min(rates):,.0f}-{max(rates):,.0f}':>15} "
            f"{1e3 * n_tok / med:>8.1f}"
            + "".join(f" {x:>6.1f}" for x in phases)
            + f" {flops * med / n_tok / 1e9:>8.1f} {flops * med / n_tok / peak:>6.1%}"
        )
    paired = [sum(p) / sum(h) for h, p in zip(rounds["hooked"], rounds["plain"], strict=True)]
    ratio = tps["hooked"] / tps["plain"]
    print()
    print(
        f"hooked/plain  {ratio:.3f}x (target >= 0.9x: {'ok' if ratio >= 0.9 else 'BELOW'}); "
        f"per round {' '.join(f'{x:.3f}' for x in paired)} (median {statistics.median(paired):.3f})"
    )
    if "plain+sdpa" in tps:
        print(f"hooked/plain+sdpa  {tps['hooked'] / tps['plain+sdpa']:.3f}x (information only)")
    if args.profile:
        profile(runs, args.steps)


if __name__ == "__main__":
    main()
