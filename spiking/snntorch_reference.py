"""The plain snntorch way of simulating this toolkit's surrogate-trained networks: a Python loop over
the T steps that calls every layer once per step, with snntorch's own ``Leaky`` and ``RLeaky``
neurons (the tutorials of Eshraghian et al. 2023).

It shares the network's weights, decays and thresholds, so the tests check that the multi-step
form of :mod:`spiking.surrogate_models` gives its spikes and gradients, and
``benchmarks/surrogate.py`` times it against the multi-step form on the same architecture.
"""

from __future__ import annotations

import snntorch as snn
import torch
from torch import nn

from spiking.neuron import spike_function
from spiking.surrogate_models import LIFLayer, SpikingFeedForward, SpikingRowReader, SurrogateNetwork


def snntorch_neuron(layer: LIFLayer, recurrent: nn.Linear | None = None) -> snn.Leaky | snn.RLeaky:
    """snntorch's ``Leaky`` (or ``RLeaky`` with the all-to-all weights ``recurrent``) with the
    layer's decay, threshold, reset and surrogate."""
    settings = dict(beta=layer.beta, threshold=layer.threshold, reset_mechanism=layer.reset,
                    spike_grad=spike_function(layer.surrogate, layer.slope))
    if recurrent is None:
        return snn.Leaky(**settings)
    neurons = snn.RLeaky(linear_features=recurrent.out_features, **settings)
    neurons.recurrent = recurrent
    return neurons


class PlainSnntorchLoop(nn.Module):
    """The network's layers called once per step with snntorch neurons; its forward returns the
    same readout ``[T, batch, classes]`` as the network's."""

    def __init__(self, network: SurrogateNetwork):
        super().__init__()
        if network.config.readout != "count" or network.config.input_coding != "current":
            raise ValueError("the plain snntorch reference covers the count readout of constant-current input")
        self.network = network
        if isinstance(network, SpikingFeedForward):
            self.snn_neurons = nn.ModuleList(snntorch_neuron(layer) for layer in network.neurons)
        elif isinstance(network, SpikingRowReader):
            self.snn_neurons = nn.ModuleList([snntorch_neuron(network.hidden_neurons, network.recurrent),
                                              snntorch_neuron(network.dense_neurons),
                                              snntorch_neuron(network.output_neurons)])
        else:
            raise TypeError(f"no plain snntorch loop for {type(network).__name__}")

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        for neurons in self.snn_neurons:
            neurons.reset_mem()
        if isinstance(self.network, SpikingFeedForward):
            return torch.stack([self._feed_forward_step(images) for _ in range(self.network.config.steps)])
        rows = images.reshape(-1, *images.shape[-2:]).transpose(0, 1)
        return torch.stack([self._row_step(row) for row in rows.repeat_interleave(self.network.config.steps, 0)])

    def _feed_forward_step(self, images: torch.Tensor) -> torch.Tensor:
        network, signal = self.network, images
        gates = [*network.pools, nn.Identity()]
        for stack, neurons, gate in zip(network.stacks, self.snn_neurons, gates, strict=True):
            signal, _ = neurons(stack(signal))
            signal = gate(signal)
        return signal

    def _row_step(self, row: torch.Tensor) -> torch.Tensor:
        network = self.network
        hidden_neurons, dense_neurons, output_neurons = self.snn_neurons
        spikes, _ = hidden_neurons(network.input(row))
        spikes, _ = dense_neurons(network.dense(spikes))
        spikes, _ = output_neurons(network.output(spikes))
        return spikes

