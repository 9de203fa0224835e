"""Spiking networks trained directly with surrogate gradients (snntorch's method), in multi-step form.

Each layer's synaptic input is computed for all T steps in one call, then the neurons of
:mod:`spiking.neuron` run over T; with constant-current input the first layer's current is
computed once. That is the multi-step mode of SpikingJelly (Fang et al. 2023), and it gives the
spikes and gradients of the plain snntorch loop that calls every layer once per step.

A network's forward pass returns its readout for every step, ``[T, batch, classes]``: the output
neurons' spikes (``readout="count"``: the class with the most spikes wins) or the output layer's
running mean input current, the membrane of a non-leaky integrator divided by the steps so far
(``readout="membrane"``: the class with the largest final value wins, the class evidence of the
converted networks). Its ``scores`` method turns a readout into one score per class; the losses
of :data:`SPIKING_LOSSES` read the whole readout.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from snntorch import functional, spikegen
from torch import nn

from spiking import neuron

INPUT_CODINGS = ("current", "poisson", "latency")
READOUTS = ("count", "membrane")


@dataclass(frozen=True)
class SurrogateSettings:
    """How a network is simulated and trained with surrogate gradients.

    steps: time steps T per image. input_coding: ``current`` (pixels as constant input current),
    ``poisson`` (a spike with probability = pixel per step, snntorch ``spikegen.rate``) or
    ``latency`` (one spike per pixel, earlier when brighter, ``spikegen.latency``, linear and
    spread over T). beta, threshold: the LIF neurons' decay per step and threshold, each
    learned (one per neuron for beta) if ``learn_beta`` / ``learn_threshold``. surrogate, slope:
    the surrogate gradient by name (:data:`spiking.neuron.SURROGATES`) and its sharpness (None:
    snntorch's default). readout: ``count`` or ``membrane`` (see the module docstring).
    """

    steps: int = 8
    input_coding: str = "current"
    beta: float = 0.9
    learn_beta: bool = False
    threshold: float = 1.0
    learn_threshold: bool = False
    surrogate: str = "atan"
    slope: float | None = None
    readout: str = "count"

    def __post_init__(self):
        if self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")
        if self.input_coding not in INPUT_CODINGS:
            raise ValueError(f"input_coding must be one of {INPUT_CODINGS}, got {self.input_coding!r}")
        if self.readout not in READOUTS:
            raise ValueError(f"readout must be one of {READOUTS}, got {self.readout!r}")
        if not 0 <= self.beta <= 1 or self.threshold <= 0:
            raise ValueError(f"beta must be in [0, 1] and threshold > 0, got {self.beta}, {self.threshold}")
        neuron.NeuronParams(surrogate=self.surrogate)  # refuses an unknown surrogate, naming the known ones


@dataclass(frozen=True)
class SpikingMLPConfig(SurrogateSettings):
    """The MLP of :class:`rate_models.MLPConfig` with LIF neurons in place of each ReLU."""

    widths: tuple[int, ...] = (784, 1200, 1200, 10)

    def __post_init__(self):
        super().__post_init__()
        if len(self.widths) < 2:
            raise ValueError(f"widths needs an input and an output width, got {self.widths}")


def encode(images: torch.Tensor, settings: SurrogateSettings) -> torch.Tensor:
    """The input spikes ``[T, batch, ...]`` of pixels in [0, 1] (Poisson or latency coding)."""
    if settings.input_coding == "poisson":
        return spikegen.rate(images, num_steps=settings.steps)
    return spikegen.latency(images, num_steps=settings.steps, normalize=True, linear=True)


def over_time(layer: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    """``layer`` applied to every step of ``inputs [T, batch, ...]`` in one call."""
    return layer(inputs.flatten(0, 1)).unflatten(0, inputs.shape[:2])


def membrane_cross_entropy(readout: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the membrane readout at every step, averaged over the steps."""
    return nn.functional.cross_entropy(readout.flatten(0, 1), labels.repeat(readout.shape[0]))


# losses of a readout [T, batch, classes] and the labels (snntorch.functional, and the membrane's)
SPIKING_LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "ce_rate": functional.ce_rate_loss(),  # cross-entropy of the output spikes at every step
    "ce_count": functional.ce_count_loss(),  # cross-entropy of the spike counts
    "mse_count": functional.mse_count_loss(correct_rate=0.8, incorrect_rate=0.2),  # counts against targets
    "ce_membrane": membrane_cross_entropy,
}


class LIFLayer(nn.Module):
    """LIF neurons of :mod:`spiking.neuron` whose beta (one per neuron) and threshold may be
    learned (parameters); fixed ones stay numbers, which the neuron step handles faster."""

    def __init__(self, size: int, settings: SurrogateSettings):
        super().__init__()
        self.beta = nn.Parameter(torch.full((size,), settings.beta)) if settings.learn_beta else settings.beta
        self.threshold = nn.Parameter(torch.tensor(settings.threshold)) if settings.learn_threshold \
            else settings.threshold
        self.surrogate, self.slope = settings.surrogate, settings.slope

    def forward(self, currents: torch.Tensor) -> torch.Tensor:
        """The spikes ``[T, ...]`` of neurons driven by ``currents [T, ..., size]`` from rest."""
        params = neuron.NeuronParams(beta=self.beta, threshold=self.threshold, surrogate=self.surrogate,
                                     slope=self.slope)
        spikes, _ = neuron.run(currents, neuron.NeuronState.start(currents[0], params), params)
        return spikes


class SpikingMLP(nn.Module):
    """Linear layers with LIF neurons after each (the output's too, for a count readout)."""

    def __init__(self, config: SpikingMLPConfig):
        super().__init__()
        self.config = config
        widths = config.widths
        self.linears = nn.ModuleList(nn.Linear(n_in, n_out) for n_in, n_out in zip(widths, widths[1:], strict=False))
        spiking_widths = widths[1:] if config.readout == "count" else widths[1:-1]
        self.neurons = nn.ModuleList(LIFLayer(width, config) for width in spiking_widths)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        pixels = images.flatten(1)
        if self.config.input_coding == "current":  # constant input: the first layer's current, once
            signal = self.linears[0](pixels).expand(self.config.steps, -1, -1)
        else:
            signal = over_time(self.linears[0], encode(pixels, self.config))
        for linear, neurons in zip(self.linears[1:], self.neurons, strict=False):  # the output's come last
            signal = over_time(linear, neurons(signal))
        if self.config.readout == "count":
            return self.neurons[-1](signal)
        steps = torch.arange(1, signal.shape[0] + 1, dtype=signal.dtype).view(-1, 1, 1)
        return signal.cumsum(0) / steps

    def scores(self, readout: torch.Tensor) -> torch.Tensor:
        """One score per class: the output spike count, or the membrane after the last step."""
        return readout.sum(0) if self.config.readout == "count" else readout[-1]
