"""The neural mesh of Papakipos & Beck (:mod:`rate_models.mesh`) with spiking neurons, trained
with surrogate gradients (:mod:`spiking.surrogate_models`).

Every grid cell is a leaky integrate-and-fire neuron whose membrane potential is its energy. A
spike carries threshold θ's worth of firing energy through the rate mesh's own exchange
(:func:`rate_models.mesh.exchange`): each neighbour receives θ · W_dir / 4 at the next step, and
the sender gives up what it sent, θ · Σ_dir |W_dir| / 4 (reset by subtraction; θ itself when every
|W| = 1)::

    v[t] = β v[t-1] + F x[t] + (I − D)(θ s[t-1])        s[t] = H(v[t] − θ)   (the surrogate's gradient)

so spikes conserve energy (β = 1, every W ≥ 0) or spend it to inhibit (W < 0) exactly as the rate
mesh does; the membranes ``v`` (before their reset) are the energy still held plus the energy of
the spikes in flight. The image drives the input layer F as current, at the first step only or at
every step (``input_every_step``), or as Poisson spikes at every step. The mesh's spikes drive a
linear readout (spike count of LIF output neurons, or the running mean of their input current).

Deviation from a plain LIF reset: the sender drops by what its spike delivers, not always by θ.
Dropping by θ would lose θ (1 − Σ_dir W_dir / 4) per spike even with positive weights, which the
rate mesh never does.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from rate_models.baselines import CLASSES, IMAGE_SIDE
from rate_models.mesh import (
    DIRECTIONS,
    MeshConfig,
    direction_weights,
    exchange,
    grid_shape,
    neighbour_sources,
    transfer_coefficients,
)
from spiking import neuron
from spiking.surrogate_models import LIFLayer, Simulation, SurrogateNetwork, SurrogateSettings, encode, over_time


@dataclass(frozen=True)
class SpikingMeshConfig(SurrogateSettings):
    """A spiking neural mesh of ``neurons`` cells (a square grid, or ``width`` wide) run for
    ``steps`` steps per image (the rate mesh's window); no leak (β = 1) by default, so that
    energy is conserved as in the rate mesh; readout and loss: the membrane's."""

    steps: int = MeshConfig.window
    beta: float = 1.0
    threshold: float = 0.1  # chosen over 1.0 on held-out training images (held_out_snn_mesh.json)
    readout: str = "membrane"
    neurons: int = MeshConfig.neurons
    width: int | None = MeshConfig.width
    input_every_step: bool = MeshConfig.input_every_step
    input_bias: bool = MeshConfig.input_bias
    init_scale: float = MeshConfig.init_scale

    def __post_init__(self):
        super().__post_init__()
        if self.reset != "subtract":
            raise ValueError("the spiking mesh resets by subtraction (a spike's energy leaves its sender)")
        MeshConfig(neurons=self.neurons, width=self.width, init_scale=self.init_scale)  # checks the grid


class SpikingMesh(SurrogateNetwork):
    """The spiking neural mesh (see the module docstring)."""

    def __init__(self, config: SpikingMeshConfig = SpikingMeshConfig()):
        super().__init__()
        self.config = config
        self.grid = grid_shape(config.neurons, config.width)
        self.input = nn.Linear(IMAGE_SIDE * IMAGE_SIDE, config.neurons, bias=config.input_bias)
        self.weights = direction_weights(self.grid, config.init_scale)
        self.mesh_neurons = LIFLayer((config.neurons,), config)
        self.output = nn.Linear(config.neurons, CLASSES)
        self.output_neurons = LIFLayer((CLASSES,), config) if config.readout == "count" else None
        self.register_buffer("sources", neighbour_sources(*self.grid), persistent=False)
        # a pixel drives every mesh neuron; a mesh spike reaches 4 neighbours and the 10 readout neurons
        self.keep_fan_outs([torch.full((1, IMAGE_SIDE, IMAGE_SIDE), float(config.neurons)),
                            torch.full((config.neurons,), float(len(DIRECTIONS) + CLASSES))])

    @torch.no_grad()
    def constrain_(self) -> None:
        """|W_dir| ≤ 1, as in the rate mesh."""
        self.weights.clamp_(-1, 1)

    def drive(self, images: torch.Tensor, steps: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The input current ``[T, B, N]`` (zero after the first step unless input is shown every
        step or coded as spikes) and the input spike counts (None for current)."""
        if self.config.input_coding == "current":
            current = self.input(images.flatten(1))
            later = current if self.config.input_every_step else torch.zeros_like(current)
            return torch.stack([current, *[later] * (steps - 1)]), None
        input_spikes = encode(images.flatten(1), self.config.input_coding, steps)
        return over_time(self.input, input_spikes), input_spikes.sum(0).view(-1, 1, IMAGE_SIDE, IMAGE_SIDE)

    def trajectory(self, images: torch.Tensor, steps: int | None = None
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """The membranes (before reset) and spikes of the mesh, each ``[T, B, N]``, and the input
        spike counts (None for current input)."""
        steps = steps or self.config.steps
        currents, input_counts = self.drive(images, steps)
        params: neuron.NeuronParams = self.mesh_neurons.params()
        beta = params.beta.clamp(0, 1) if isinstance(params.beta, torch.Tensor) else params.beta
        coefficients = transfer_coefficients(self.weights)
        v, spikes = torch.zeros_like(currents[0]), torch.zeros_like(currents[0])
        membranes, spike_trains = [], []
        for current in currents:
            v = beta * v + current + exchange(params.threshold * spikes, coefficients, self.sources)
            spikes = neuron.fire(v, params.threshold, params)
            membranes.append(v)
            spike_trains.append(spikes)
        return torch.stack(membranes), torch.stack(spike_trains), input_counts

    def simulate(self, images: torch.Tensor, steps: int, measure: bool = False) -> Simulation:
        _, spikes, input_counts = self.trajectory(images, steps)
        readout = self.read_out(over_time(self.output, spikes))
        if not measure:
            return Simulation(readout)
        spike_counts = [spikes.sum(0)]
        if self.output_neurons is not None:
            spike_counts.append(readout.sum(0))
        return Simulation(readout, input_counts, spike_counts, spike_counts[:1])
