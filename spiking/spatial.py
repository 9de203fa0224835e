"""The spatial networks of Wołczyk et al. (:mod:`rate_models.spatial`) with leaky
integrate-and-fire neurons in place of the sigmoids, trained with surrogate gradients
(:mod:`spiking.surrogate_models`), with the same transport and density costs on the same
weights and positions.

Does the spatial prior still separate the two tasks when the neurons spike? Besides the split
and its accuracy, :func:`cross_task_spike_traffic` counts the spikes one task's neurons send to
the other's, weighted by |w|: it says whether the halves really work apart.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from rate_models.spatial import (
    SpatialConfig,
    SpatialNetwork,
    flat_inputs,
    layer_mask,
    spatial_measures,
    spatial_penalty,
)
from spiking.surrogate_models import Simulation, SpikingLayerStack, SurrogateSettings, encode, over_time


@dataclass(frozen=True)
class SpikingSpatialConfig(SurrogateSettings):
    """The network of :class:`rate_models.spatial.SpatialConfig` with LIF neurons, constant-current
    input (a mixed pair's pixels reach 2) and a membrane readout by default."""

    readout: str = "membrane"
    inputs: int = SpatialConfig.inputs
    widths: tuple[int, ...] = SpatialConfig.widths
    spatial: bool = SpatialConfig.spatial
    alpha: float = SpatialConfig.alpha
    beta_cost: float = SpatialConfig.beta  # the density cost's weight (beta is the neurons' decay)
    first_cost_layer: int = SpatialConfig.first_cost_layer

    def rate_config(self) -> SpatialConfig:
        return SpatialConfig(inputs=self.inputs, widths=self.widths, spatial=self.spatial, alpha=self.alpha,
                             beta=self.beta_cost, first_cost_layer=self.first_cost_layer)

    def __post_init__(self):
        super().__post_init__()
        if self.learn_beta:
            raise ValueError("the spiking spatial network keeps one beta for all neurons")
        self.rate_config()

    @property
    def cost_layers(self) -> list[int]:
        return self.rate_config().cost_layers


class SpikingSpatial(SpikingLayerStack):
    """LIF neurons between the spatial network's layers; ``masks`` disable neurons as in the rate net."""

    def __init__(self, config: SpikingSpatialConfig = SpikingSpatialConfig()):
        super().__init__(config, SpatialNetwork(config.rate_config()))

    def penalty(self) -> torch.Tensor:
        return spatial_penalty(self, self.config.rate_config())

    def epoch_measures(self) -> dict[str, float]:
        return spatial_measures(self)

    def forward(self, images: torch.Tensor, steps: int | None = None,
                masks: list[torch.Tensor] | None = None) -> torch.Tensor:
        return self.simulate(images, steps or self.config.steps, masks=masks).readout

    def simulate(self, images: torch.Tensor, steps: int, measure: bool = False,
                 masks: list[torch.Tensor] | None = None) -> Simulation:
        signal = flat_inputs(images, self.config)
        if self.config.input_coding == "current":
            current = self.layers[0](signal)
            currents, input_counts = current.expand(steps, *current.shape), None
        else:
            input_spikes = encode(signal.clamp(0, 1), self.config.input_coding, steps)
            currents, input_counts = over_time(self.layers[0], input_spikes), input_spikes.sum(0)
        spike_counts = []
        for index, (neurons, layer) in enumerate(zip(self.neurons, self.layers[1:], strict=True)):
            spikes = neurons(currents) * layer_mask(self.config, masks, index)
            currents = over_time(layer, spikes)
            if measure:
                spike_counts.append(spikes.sum(0))
        readout = self.read_out(currents * layer_mask(self.config, masks, len(self.layers) - 1))
        if not measure:
            return Simulation(readout)
        passed = list(spike_counts)
        if self.output_neurons is not None:
            spike_counts.append(readout.sum(0))
        return Simulation(readout, input_counts, spike_counts, passed)


@torch.no_grad()
def cross_task_spike_traffic(network: SpikingSpatial, spike_counts: list[torch.Tensor],
                             assignments: list[torch.Tensor]) -> dict[str, float]:
    """Per image, the spikes of split-layer neurons that reach neurons of the other task (each spike
    counted once per such synapse), and the share of the |w|-weighted spike traffic between split
    layers that crosses tasks. ``spike_counts``: per hidden layer ``[B, N]``; ``assignments``:
    :func:`rate_models.spatial.split_tasks`."""
    crossing_events = crossing = total = 0.0
    cost_layers = network.config.cost_layers
    for position, index in enumerate(cost_layers[1:], start=1):  # from split layer to split layer
        counts = spike_counts[index - 1].float().mean(0)  # the spikes of the layer that weights `index` read
        strength = network.layers[index].weight.abs()  # [next, this]
        different = (assignments[position][:, None] != assignments[position - 1][None, :]).float()
        crossing_events += float((counts * different.sum(0)).sum())
        crossing += float((strength * different * counts).sum())
        total += float((strength * counts).sum())
    return {"cross_task_spikes_per_image": crossing_events, "cross_task_spike_share": crossing / max(total, 1e-12)}
