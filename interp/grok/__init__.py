"""Grokking: memorisation, then generalisation (PAIR 2023; Nanda et al. 2023).

models   the PAIR MLP (tied embedding), the 5-neuron fixed (cos, sin) model, Nanda's 1-layer
         transformer (from the hooked family), the sparse-parity MLP; the MLPs' hand-batched
         forwards for sweeps
detect   memorisation / grokking steps, PAIR's run labels
tasks    the grok tasks by name (modadd, sparse-parity): models, defaults, data, estimates
config   GrokConfig (one run) and GrokSweepConfig (a grid), inert and validated on use
measures the Fourier rows and summary of a modular-addition run
progress Nanda et al.'s restricted and excluded losses

The experiments ``grok`` and ``grok-sweep`` (run directory, checkpoints, cells, results) are
:mod:`interp.experiments.grok` and :mod:`interp.experiments.grok_sweep`.

Training itself is :mod:`interp.train.full_batch` (one model, or many stacked) on the one loop.
"""
