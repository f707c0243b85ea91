"""Gradient modes of the training loop: ``vanilla`` and ``myopic`` (Wu, Morris, Levine 2024).

Myopic training: the loss at position t sends no gradient into the hidden states of positions
before t, in any layer; the weights still receive gradient through every position, and the
forward pass is unchanged.  The efficient form lives in :class:`interp.models.attention.Attention`
(past keys and values from the detached layer input through the live weights, live diagonal);
this module switches it on and off, and holds the slow, obvious reference it is tested against.

Definition used here (and by the reference): "the hidden state of position s in layer l" is the
attention input of that layer (after ``ln1``), as in the paper's GPT-2 code, so ``ln1`` and the
layers below receive gradient at position s only from losses at positions >= s.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn

from interp.config import GRAD_MODES
from interp.errors import ConfigError
from interp.models.attention import Attention

__all__ = ["GRAD_MODES", "get_grad_mode", "grad_mode", "naive_myopic_backward", "set_grad_mode"]


def _attention_layers(model: nn.Module) -> list[Attention]:
    return [m for m in model.modules() if isinstance(m, Attention)]


def set_grad_mode(model: nn.Module, mode: str) -> str:
    """Switch every attention layer of ``model`` to ``mode``; returns the previous mode."""
    if mode not in GRAD_MODES:
        raise ConfigError(f"unknown gradient mode {mode!r}; choose {' or '.join(GRAD_MODES)}")
    layers = _attention_layers(model)
    if mode == "myopic" and not layers:
        raise ConfigError(
            "myopic gradients need a model of the hooked interp family (no interp attention found)"
        )
    previous = get_grad_mode(model)
    for layer in layers:
        layer.myopic = mode == "myopic"
    return previous


def get_grad_mode(model: nn.Module) -> str:
    layers = _attention_layers(model)
    return "myopic" if layers and all(layer.myopic for layer in layers) else "vanilla"


@contextmanager
def grad_mode(model: nn.Module, mode: str) -> Iterator[nn.Module]:
    """``with grad_mode(model, "myopic"):`` ... restores the previous mode on exit."""
    previous = set_grad_mode(model, mode)
    try:
        yield model
    finally:
        set_grad_mode(model, previous)


def naive_myopic_backward(
    model: nn.Module,
    inputs: Tensor,
    per_position_loss: Callable[[Tensor], Tensor],
) -> None:
    """Accumulate the myopic gradient into ``.grad`` the slow, obvious way (tests, benchmarks).

    For every position t: rerun the (vanilla) forward with the attention inputs of positions
    < t detached in every layer (their keys and values are still computed by the live projection
    weights from the detached inputs), and backpropagate only the loss at t.  Summed over t this
    is the myopic gradient of ``per_position_loss(outputs).sum()``.

    ``per_position_loss`` maps the model's outputs to a [pos] tensor of loss terms.
    """
    layers = _attention_layers(model)
    previous = set_grad_mode(model, "vanilla")
    t_now = [0]

    def detach_past(module: nn.Module, args: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
        x = args[0]
        t = t_now[0]
        return (torch.cat([x[:, :t].detach(), x[:, t:]], dim=1), *args[1:])

    handles = [layer.register_forward_pre_hook(detach_past) for layer in layers]
    try:
        for t in range(inputs.shape[1]):
            t_now[0] = t
            loss_t = per_position_loss(model(inputs))[t]
            if loss_t.requires_grad:
                loss_t.backward()
    finally:
        for handle in handles:
            handle.remove()
        set_grad_mode(model, previous)
