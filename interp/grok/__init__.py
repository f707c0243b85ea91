"""Grokking: memorisation, then generalisation (PAIR 2023; Nanda et al. 2023).

models   the PAIR MLP (tied embedding), the 5-neuron fixed (cos, sin) model, Nanda's 1-layer
         transformer (from the hooked family), the sparse-parity MLP; the MLPs' hand-batched
         forwards for sweeps
detect   memorisation / grokking steps, PAIR's run labels
job      config -> run directory (config.json, metrics.jsonl, checkpoints, results.json)

Training itself is :mod:`interp.train.full_batch` (one model, or many stacked) on the one loop.
"""
