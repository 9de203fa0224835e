"""Shader's positional neuron layers (:mod:`rate_models.positional`) with leaky integrate-and-fire
neurons in place of swish, trained with surrogate gradients (:mod:`spiking.surrogate_models`).

The layers, positions, effective weights b(d²)·w and regularisers are the rate network's own
objects; only the neurons differ. The image enters as spikes (``poisson``, rate-coded, by
default, or ``latency``) or as constant current; each hidden layer's LIF neurons fire into the
next positional layer, and the output layer is read as a membrane or by spike count.

Pruning (:func:`rate_models.positional.prune`) works on the spiking network as on the rate one.
Beside the author's score (mean squared weight), :func:`spike_weighted_scores` weighs it by how
often the neuron fires: a neuron that never fires costs nothing to remove.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from rate_models.positional import (
    PositionalConfig,
    PositionalNetwork,
    layer_distances,
    mean_squared_weight,
    regularisation,
)
from spiking.surrogate_models import Simulation, SpikingLayerStack, SurrogateSettings, encode


@dataclass(frozen=True)
class SpikingPositionalConfig(SurrogateSettings):
    """The positional network of :class:`rate_models.positional.PositionalConfig` with LIF neurons,
    rate-coded (Poisson) input and a membrane readout by default."""

    input_coding: str = "poisson"
    readout: str = "membrane"
    widths: tuple[int, ...] = PositionalConfig.widths
    positional: bool = PositionalConfig.positional
    falloff: str = PositionalConfig.falloff
    outputs: str = PositionalConfig.outputs
    dimension: int = PositionalConfig.dimension
    regulariser: str = PositionalConfig.regulariser
    distance_strength: float = PositionalConfig.distance_strength
    l2_strength: float = PositionalConfig.l2_strength

    def __post_init__(self):
        super().__post_init__()
        if self.learn_beta:
            raise ValueError("the spiking positional network keeps one beta for all neurons (pruning removes neurons)")
        self.rate_config()  # checks the positional settings

    def rate_config(self) -> PositionalConfig:
        names = PositionalConfig.__dataclass_fields__
        return PositionalConfig(**{name: getattr(self, name) for name in names})


class SpikingPositional(SpikingLayerStack):
    """LIF neurons between positional layers (see the module docstring)."""

    def __init__(self, config: SpikingPositionalConfig = SpikingPositionalConfig()):
        super().__init__(config, PositionalNetwork(config.rate_config()))

    def penalty(self) -> torch.Tensor:
        return regularisation(self, self.config.rate_config())

    def simulate(self, images: torch.Tensor, steps: int, measure: bool = False) -> Simulation:
        weights = [layer.effective_weight(layer_distances(self, index)) for index, layer in enumerate(self.layers)]
        first = self.layers[0]
        if self.config.input_coding == "current":
            current = nn.functional.linear(images.flatten(1), weights[0], first.bias)
            signal, input_counts = current.expand(steps, *current.shape), None
        else:
            input_spikes = encode(images.flatten(1), self.config.input_coding, steps)
            signal = nn.functional.linear(input_spikes, weights[0], first.bias)
            input_counts = input_spikes.sum(0)
        spike_counts = []
        for neurons, layer, weight in zip(self.neurons, self.layers[1:], weights[1:], strict=True):
            spikes = neurons(signal)
            signal = nn.functional.linear(spikes, weight, layer.bias)
            if measure:
                spike_counts.append(spikes.sum(0))
        readout = self.read_out(signal)
        if not measure:
            return Simulation(readout)
        passed = list(spike_counts)
        if self.output_neurons is not None:
            spike_counts.append(readout.sum(0))
        return Simulation(readout, input_counts, spike_counts, passed)


@torch.no_grad()
def spike_weighted_scores(network: SpikingPositional, images: torch.Tensor) -> list[torch.Tensor]:
    """Per hidden layer, each neuron's mean squared weight times its mean spike count per image on
    ``images`` (training images: a pruning choice never looks at the test set)."""
    counts = network.run(images).spike_counts[: len(network.neurons)]
    return [score * count.float().mean(0) for score, count in zip(mean_squared_weight(network), counts, strict=True)]

