"""Future-token probes (``interp probe``): from the residual stream at t, predict the token at t+k.

* :mod:`probes.collect`: held-out token blocks, activations streamed batch by batch;
* :mod:`probes.ridge`: streaming float64 ridge (future-lens probe), λ chosen on held-out stats;
* :mod:`probes.vocab`: softmax probe over the vocabulary or top-K + "other" (memory stated first);
* :mod:`probes.metrics`: top-1 / top-5 / cross-entropy, bootstrap intervals, n-gram baselines;
* :mod:`probes.run`: ``run_probe``, the one library call behind the CLI.
"""
