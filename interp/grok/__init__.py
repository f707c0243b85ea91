"""Grokking: memorisation, then generalisation (PAIR 2023; Nanda et al. 2023).

models   the PAIR MLP (tied embedding), the 5-neuron fixed (cos, sin) model, Nanda's 1-layer
         transformer (from the hooked family), the sparse-parity MLP
loop     full-batch AdamW on every example at once; no file I/O, callbacks out
batched  many small MLPs trained at once (stacked parameters, one AdamW) for sweeps
detect   memorisation / grokking steps, PAIR's run labels
job      config -> run directory (config.json, metrics.jsonl, checkpoints, results.json)
"""
