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
import time
from collections.abc import Callable
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


@dataclass
class ActivitySummary:
    """A spiking network on a test set: accuracy, synaptic operations per image (spike-driven
    events plus the first layer's multiply-accumulates under constant current) and mean spikes
    per image of every spiking layer."""

    steps: int
    accuracy: float
    synaptic_ops: float
    spikes_per_image: list[float]
    seconds: float


def summarise(simulate: Callable[[torch.Tensor], SpikingRun], images: torch.Tensor, labels: torch.Tensor,
              batch_size: int = 500) -> ActivitySummary:
    """Run ``simulate`` (images -> :class:`SpikingRun`) over the test set in batches and summarise."""
    started = time.perf_counter()
    correct, events, spikes, run = 0, 0.0, None, None
    for batch, batch_labels in zip(images.split(batch_size), labels.split(batch_size), strict=True):
        run = simulate(batch)
        correct += int((run.evidence.argmax(1) == batch_labels).sum())
        events += float(run.synaptic_ops.sum()) + run.input_ops * len(batch)
        layer_spikes = [float(counts.flatten(1).sum(1).sum()) for counts in run.spike_counts]
        spikes = layer_spikes if spikes is None else [a + b for a, b in zip(spikes, layer_spikes, strict=True)]
    count = len(labels)
    return ActivitySummary(steps=run.steps, accuracy=correct / count, synaptic_ops=events / count,
                           spikes_per_image=[total / count for total in spikes], seconds=time.perf_counter() - started)
