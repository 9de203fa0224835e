"""What one simulation of a spiking network produced, counted one way for every spiking network of
the toolkit: the converted ones (:mod:`bridges`) and the ones trained with surrogate gradients
(:mod:`spiking.surrogate_models`).

A layer's synaptic operations are its input spikes times their fan-out: a spike of a neuron with
k synapses onto the next layer costs k additions (Rueckauer et al. 2017, section 2.5). Constant
input current is not a spike train: the first layer's multiply-accumulates are counted once per
image (``input_ops``).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

AFFINE = (nn.Linear, nn.Conv2d)


@dataclass
class SpikingRun:
    """What one simulation produced, per image: class evidence (a converted network's output
    current averaged over the steps, on the ANN logits' scale; a trained network's class scores),
    spike counts of every spiking layer, and synaptic operations (spikes times fan-out)."""

    evidence: torch.Tensor
    spike_counts: list[torch.Tensor]
    steps: int
    synaptic_ops: torch.Tensor  # [B] spike-driven synaptic events (input spikes included for spiking input)
    input_ops: float  # per image: MACs of the first layer under constant-current input (computed once), else 0

    def rates(self) -> list[torch.Tensor]:
        return [counts / self.steps for counts in self.spike_counts]

    def spikes_per_image(self) -> list[float]:
        """The mean number of spikes per image of every spiking layer."""
        return [float(counts.flatten(1).sum(1).mean()) for counts in self.spike_counts]


def fan_out(stack: nn.Module, input_shape: tuple[int, ...]) -> torch.Tensor:
    """The number of synapses each input neuron of ``stack`` makes onto its outputs (its fan-out),
    so that a layer's synaptic events per image are the sum of activity times fan-out. With every
    weight 1 and no bias the stack is a linear map u, and the gradient of sum(u(x)) is the fan-out."""
    with torch.inference_mode(False), torch.enable_grad():  # also when called in inference mode
        unit = copy.deepcopy(stack).eval()  # Dropout off
        for op in unit.modules():
            if isinstance(op, AFFINE):
                op.weight = nn.Parameter(torch.ones_like(op.weight))
                if op.bias is not None:
                    op.bias = nn.Parameter(torch.zeros_like(op.bias))
        activity = torch.zeros(1, *input_shape, requires_grad=True)
        unit(activity).sum().backward()
    return activity.grad[0]


def synaptic_events(fan_out: torch.Tensor, activity: torch.Tensor) -> torch.Tensor:
    """Per image: the synaptic events of ``activity [B, ...]`` (spike counts; see :func:`fan_out`)."""
    return (activity * fan_out).flatten(1).sum(1)
