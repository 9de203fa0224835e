"""Spiking networks trained directly with surrogate gradients (snntorch's method), in multi-step form.

Each layer's synaptic input is computed for all T steps in one call, then the neurons of
:mod:`spiking.neuron` run over T; with constant-current input the first layer's current is
computed once. That is the multi-step mode of SpikingJelly (Fang et al. 2023), and it gives the
spikes and gradients of the plain snntorch loop that calls every layer once per step
(:mod:`spiking.snntorch_reference`).

The feed-forward networks are the rate networks of :mod:`rate_models.baselines` with LIF neurons
in place of each ReLU (a max-pool after a ReLU pools the spikes); the row reader replaces the GRU
with a recurrent LIF layer (snntorch's ``RLeaky``) that reads one image row per step.

A network's forward pass returns its readout for every step, ``[T, batch, classes]``: the output
neurons' spikes (``readout="count"``: the class with the most spikes wins) or the output layer's
running mean input current, the membrane of a non-leaky integrator divided by the steps so far
(``readout="membrane"``: the class with the largest final value wins, the class evidence of the
converted networks). Its ``scores`` method turns a readout into one score per class; the losses
of :data:`SPIKING_LOSSES` read the whole readout. ``run`` measures spike counts and synaptic
operations as for the converted networks (:class:`spiking.activity.SpikingRun`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import torch
from snntorch import functional, spikegen
from torch import nn

from rate_models.baselines import (
    CLASSES,
    IMAGE_SIDE,
    CNNConfig,
    GRUConfig,
    MLPConfig,
    build_gupta_naveed_cnn,
    build_mlp,
)
from rate_models.spatial import double_cross_entropy
from spiking import neuron
from spiking.activity import AFFINE, SpikingRun, fan_out, synaptic_events

INPUT_CODINGS = ("current", "poisson", "latency")
READOUTS = ("count", "membrane")


@dataclass(frozen=True)
class SurrogateSettings:
    """How a network is simulated and trained with surrogate gradients.

    steps: time steps T per image. input_coding: ``current`` (pixels as constant input current),
    ``poisson`` (a spike with probability = pixel per step, snntorch ``spikegen.rate``) or
    ``latency`` (one spike per pixel, earlier when brighter, ``spikegen.latency``, linear and
    spread over T). beta, threshold: the LIF neurons' decay per step and threshold, each
    learned (one per neuron or channel for beta) if ``learn_beta`` / ``learn_threshold``.
    reset: ``subtract`` (snntorch's default) or ``zero`` (NIR's reset to v_reset = 0).
    surrogate, slope: the surrogate gradient by name (:data:`spiking.neuron.SURROGATES`) and its
    sharpness (None: snntorch's default). readout: ``count`` or ``membrane`` (see the module docstring).
    """

    steps: int = 8
    input_coding: str = "current"
    beta: float = 0.9
    learn_beta: bool = False
    threshold: float = 1.0
    learn_threshold: bool = False
    reset: str = "subtract"
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
        # refuses an unknown reset or surrogate, naming the known ones
        neuron.NeuronParams(reset=self.reset, surrogate=self.surrogate)


@dataclass(frozen=True)
class SpikingMLPConfig(SurrogateSettings):
    """The MLP of :class:`rate_models.baselines.MLPConfig` with LIF neurons in place of each ReLU."""

    widths: tuple[int, ...] = MLPConfig.widths
    dropout: float = MLPConfig.dropout

    def rate_network(self) -> nn.Sequential:
        return build_mlp(MLPConfig(widths=self.widths, dropout=self.dropout))


@dataclass(frozen=True)
class SpikingCNNConfig(SurrogateSettings):
    """The CNN of Gupta & Naveed (:class:`rate_models.baselines.CNNConfig`) with LIF neurons in
    place of each ReLU."""

    channels: tuple[int, int, int] = CNNConfig.channels
    dense: int = CNNConfig.dense
    dropout_conv: float = CNNConfig.dropout_conv
    dropout_dense: float = CNNConfig.dropout_dense

    def rate_network(self) -> nn.Sequential:
        return build_gupta_naveed_cnn(CNNConfig(channels=self.channels, dense=self.dense,
                                                dropout_conv=self.dropout_conv, dropout_dense=self.dropout_dense))


@dataclass(frozen=True)
class SpikingRowReaderConfig(SurrogateSettings):
    """The row-reading GRU of Gupta & Naveed (:class:`rate_models.baselines.GRUConfig`) as a
    recurrent LIF layer of ``hidden`` neurons, then Dense ``dense`` with LIF neurons, then the
    readout. ``steps`` here are steps per image row: the network runs 28 x steps steps."""

    steps: int = 1
    hidden: int = GRUConfig.hidden
    dense: int = GRUConfig.dense


def encode(pixels: torch.Tensor, coding: str, steps: int) -> torch.Tensor:
    """The input spikes ``[T, batch, ...]`` of pixels in [0, 1] (``poisson`` or ``latency`` coding)."""
    if coding == "poisson":
        return spikegen.rate(pixels, num_steps=steps)
    return spikegen.latency(pixels, num_steps=steps, normalize=True, linear=True)


def over_time(layer: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    """``layer`` applied to every step of ``inputs [T, batch, ...]`` in one call."""
    return layer(inputs.flatten(0, 1)).unflatten(0, inputs.shape[:2])


def membrane_cross_entropy(readout: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the membrane readout at every step, averaged over the steps."""
    return nn.functional.cross_entropy(readout.flatten(0, 1), labels.repeat(readout.shape[0]))


def double_membrane_cross_entropy(readout: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The two heads' cross-entropy (:func:`rate_models.spatial.double_cross_entropy`) of the
    membrane readout at every step, averaged over the steps."""
    return double_cross_entropy(readout.flatten(0, 1), labels.repeat(readout.shape[0], 1))


# losses of a readout [T, batch, classes] and the labels (snntorch.functional, and the membrane's)
SPIKING_LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "ce_rate": functional.ce_rate_loss(),  # cross-entropy of the output spikes at every step
    "ce_count": functional.ce_count_loss(),  # cross-entropy of the spike counts
    "mse_count": functional.mse_count_loss(correct_rate=0.8, incorrect_rate=0.2),  # counts against targets
    "ce_membrane": membrane_cross_entropy,
    "double_ce_membrane": double_membrane_cross_entropy,  # Wołczyk et al.'s double task
}


class LIFLayer(nn.Module):
    """LIF neurons of :mod:`spiking.neuron` whose beta (one per neuron, or per channel of a
    feature map) and threshold may be learned (parameters); fixed ones stay numbers, which the
    neuron step handles faster."""

    def __init__(self, shape: tuple[int, ...], settings: SurrogateSettings):
        super().__init__()
        beta_shape = (shape[0], *[1] * (len(shape) - 1))
        self.beta = nn.Parameter(torch.full(beta_shape, settings.beta)) if settings.learn_beta else settings.beta
        self.threshold = nn.Parameter(torch.tensor(settings.threshold)) if settings.learn_threshold \
            else settings.threshold
        self.reset, self.surrogate, self.slope = settings.reset, settings.surrogate, settings.slope

    def params(self) -> neuron.NeuronParams:
        return neuron.NeuronParams(beta=self.beta, threshold=self.threshold, reset=self.reset,
                                   surrogate=self.surrogate, slope=self.slope)

    def forward(self, currents: torch.Tensor) -> torch.Tensor:
        """The spikes ``[T, ...]`` of neurons driven by ``currents [T, ..., *shape]`` from rest."""
        params = self.params()
        spikes, _ = neuron.run(currents, neuron.NeuronState.start(currents[0], params), params)
        return spikes


class Simulation(NamedTuple):
    """One forward pass: the readout ``[T, B, classes]`` and, when measured, per image the input
    spike counts (None for constant current), every spiking layer's spike counts and the counts
    of the spikes its synapses pass on (after a max-pool, if any)."""

    readout: torch.Tensor
    input_counts: torch.Tensor | None = None
    spike_counts: list[torch.Tensor] | None = None
    passed_counts: list[torch.Tensor] | None = None


class SurrogateNetwork(nn.Module):
    """What every surrogate-trained network shares: the readout, scores, and the measurement.

    A subclass sets ``config``, ``output_neurons`` (None for a membrane readout) and
    ``fan_outs`` (per synaptic stage, the fan-out of each of its input neurons: the input's
    first, then one per spiking layer that sends spikes on), and implements ``simulate``.
    """

    config: SurrogateSettings

    def initialise_weights(self) -> None:
        """He et al.'s (2015) normal initialisation, std sqrt(2 / fan-in), biases zero: with
        PyTorch's default (about 2.4 times smaller) the CNN's third spiking layer is nearly silent
        on MNIST at the start and its training stalls."""
        for op in self.modules():
            if isinstance(op, AFFINE):
                nn.init.kaiming_normal_(op.weight, nonlinearity="relu")
                nn.init.zeros_(op.bias)

    def keep_fan_outs(self, fan_outs: list[torch.Tensor]) -> None:
        for index, fan in enumerate(fan_outs):  # buffers: they move with the network, and are not saved
            self.register_buffer(f"fan_out_{index}", fan, persistent=False)
        self.stages = len(fan_outs)

    @property
    def fan_outs(self) -> list[torch.Tensor]:
        return [getattr(self, f"fan_out_{index}") for index in range(self.stages)]

    def simulate(self, images: torch.Tensor, steps: int, measure: bool = False) -> Simulation:
        raise NotImplementedError

    def forward(self, images: torch.Tensor, steps: int | None = None) -> torch.Tensor:
        """The readout ``[T, batch, classes]`` (T = the configuration's steps unless given)."""
        return self.simulate(images, steps or self.config.steps).readout

    def read_out(self, currents: torch.Tensor) -> torch.Tensor:
        """The output layer's readout of its input currents ``[T, B, classes]``."""
        if self.output_neurons is not None:
            return self.output_neurons(currents)
        steps = torch.arange(1, currents.shape[0] + 1, dtype=currents.dtype).view(-1, 1, 1)
        return currents.cumsum(0) / steps

    def describe(self) -> str:
        """The method and its settings in a few words, for tables."""
        config = self.config
        return f"surrogate gradients ({config.surrogate}), T = {self.steps_text()}, {config.input_coding} input"

    def steps_text(self) -> str:
        return str(self.config.steps)

    def scores(self, readout: torch.Tensor) -> torch.Tensor:
        """One score per class: the output spike count, or the membrane after the last step."""
        return readout.sum(0) if self.config.readout == "count" else readout[-1]

    @torch.no_grad()
    def run(self, images: torch.Tensor, steps: int | None = None) -> SpikingRun:
        """Simulate and count, as for the converted networks: class scores, spike counts per
        spiking layer (the output's too for a count readout) and synaptic operations per image."""
        steps = steps or self.config.steps
        simulation = self.simulate(images, steps, measure=True)
        events = sum(synaptic_events(fan, counts)
                     for fan, counts in zip(self.fan_outs[1:], simulation.passed_counts, strict=True))
        input_ops = float(self.fan_outs[0].sum())  # constant current: the first layer's MACs, once per image
        if simulation.input_counts is not None:
            events, input_ops = events + synaptic_events(self.fan_outs[0], simulation.input_counts), 0.0
        return SpikingRun(evidence=self.scores(simulation.readout), spike_counts=simulation.spike_counts,
                          steps=len(simulation.readout), synaptic_ops=events, input_ops=input_ops)


class SpikingLayerStack(SurrogateNetwork):
    """A rate network's fully connected ``layers`` and its ``positions`` (None if it has none),
    with LIF neurons after every layer but the last and LIF output neurons for a count readout.
    Every layer's neurons reach every neuron of the next, also after pruning."""

    def __init__(self, config: SurrogateSettings, rate_network: nn.Module):
        super().__init__()
        self.config = config
        self.layers, self.positions = rate_network.layers, rate_network.positions
        self.neurons = nn.ModuleList(LIFLayer((layer.out_features,), config) for layer in self.layers[:-1])
        self.output_neurons = LIFLayer((self.layers[-1].out_features,), config) if config.readout == "count" else None

    @property
    def fan_outs(self) -> list[torch.Tensor]:
        return [torch.full((layer.in_features,), float(layer.out_features)) for layer in self.layers]


def cut_at_relus(rate_network: nn.Sequential) -> tuple[list[nn.Sequential], list[nn.Module]]:
    """The synaptic stacks between a ReLU network's ReLUs, and per ReLU what gates its output: a
    max-pool that follows it (it then pools the spikes) or Identity."""
    stacks, pools, current = [], [], []
    for module in rate_network:
        if isinstance(module, nn.ReLU):
            stacks.append(nn.Sequential(*current))
            pools.append(nn.Identity())
            current = []
        elif isinstance(module, nn.MaxPool2d) and not current and stacks:
            pools[-1] = module
        else:
            current.append(module)
    return [*stacks, nn.Sequential(*current)], pools


class SpikingFeedForward(SurrogateNetwork):
    """A feed-forward ReLU network (the configuration's ``rate_network()``) with LIF neurons in
    place of each ReLU, and LIF output neurons for a count readout.

    """

    def __init__(self, config: SpikingMLPConfig | SpikingCNNConfig):
        super().__init__()
        self.config = config
        self.input_shape = (1, IMAGE_SIDE, IMAGE_SIDE)
        stacks, pools = cut_at_relus(config.rate_network())
        self.stacks, self.pools = nn.ModuleList(stacks), nn.ModuleList(pools)
        layers, fan_outs = [], []
        signal = torch.zeros(1, *self.input_shape)
        with torch.no_grad():
            for index, stack in enumerate(stacks):
                fan_outs.append(fan_out(stack, tuple(signal.shape[1:])))
                signal = stack(signal)
                layers.append(LIFLayer(tuple(signal.shape[1:]), config))
                if index < len(pools):
                    signal = pools[index](signal)
        self.neurons = nn.ModuleList(layers if config.readout == "count" else layers[:-1])
        self.keep_fan_outs(fan_outs)
        self.initialise_weights()

    @property
    def output_neurons(self) -> LIFLayer | None:
        return self.neurons[-1] if self.config.readout == "count" else None

    def simulate(self, images: torch.Tensor, steps: int, measure: bool = False) -> Simulation:
        if self.config.input_coding == "current":  # constant input: the first stack's current, once
            first = self.stacks[0](images)
            signal, input_counts = first.expand(steps, *first.shape), None
        else:
            input_spikes = encode(images, self.config.input_coding, steps)
            signal, input_counts = over_time(self.stacks[0], input_spikes), input_spikes.sum(0)
        spike_counts, passed_counts = [], []
        for stack, neurons, pool in zip(self.stacks[1:], self.neurons, self.pools, strict=False):
            spikes = neurons(signal)
            passed = over_time(pool, spikes)
            signal = over_time(stack, passed)
            if measure:
                spike_counts.append(spikes.sum(0))
                passed_counts.append(passed.sum(0))
        readout = self.read_out(signal)
        if not measure:
            return Simulation(readout)
        if self.output_neurons is not None:
            spike_counts.append(readout.sum(0))
        return Simulation(readout, input_counts, spike_counts, passed_counts)


class SpikingRowReader(SurrogateNetwork):
    """Reads the image one row per ``config.steps`` steps, as the GRU does: the row's pixels drive
    a recurrent LIF layer (snntorch ``RLeaky`` with all-to-all recurrent weights,
    I[t] = W x[t] + V s[t-1]), whose spikes over all steps drive Dense-LIF and the readout."""

    def __init__(self, config: SpikingRowReaderConfig):
        super().__init__()
        self.config = config
        self.input = nn.Linear(IMAGE_SIDE, config.hidden)
        self.recurrent = nn.Linear(config.hidden, config.hidden)
        self.hidden_neurons = LIFLayer((config.hidden,), config)
        self.dense = nn.Linear(config.hidden, config.dense)
        self.dense_neurons = LIFLayer((config.dense,), config)
        self.output = nn.Linear(config.dense, CLASSES)
        self.output_neurons = LIFLayer((CLASSES,), config) if config.readout == "count" else None
        self.keep_fan_outs([torch.full((IMAGE_SIDE, IMAGE_SIDE), float(config.hidden)),
                            torch.full((config.hidden,), float(config.hidden + config.dense)),
                            torch.full((config.dense,), float(CLASSES))])
        self.initialise_weights()

    def steps_text(self) -> str:
        return f"{IMAGE_SIDE * self.config.steps} ({self.config.steps} per row)"

    def simulate(self, images: torch.Tensor, steps: int, measure: bool = False) -> Simulation:
        rows = images.reshape(-1, IMAGE_SIDE, IMAGE_SIDE)
        if self.config.input_coding == "current":  # each row's current once, held for its steps
            currents = self.input(rows).transpose(0, 1).repeat_interleave(steps, 0)
            input_counts = None
        else:  # [steps, B, row, pixel] -> row after row
            input_spikes = encode(rows, self.config.input_coding, steps)
            currents = self.input(input_spikes.permute(2, 0, 1, 3).flatten(0, 1))
            input_counts = input_spikes.sum(0)
        params = self.hidden_neurons.params()
        state = neuron.NeuronState.start(currents[0], params)
        hidden = [torch.zeros_like(currents[0])]
        for current in currents:  # the recurrent input carries the surrogate gradient, as in RLeaky
            spikes, state = neuron.step(current + self.recurrent(hidden[-1]), state, params)
            hidden.append(spikes)
        hidden = torch.stack(hidden[1:])
        dense = self.dense_neurons(over_time(self.dense, hidden))
        readout = self.read_out(over_time(self.output, dense))
        if not measure:
            return Simulation(readout)
        spike_counts = [hidden.sum(0), dense.sum(0)]
        if self.output_neurons is not None:
            spike_counts.append(readout.sum(0))
        return Simulation(readout, input_counts, spike_counts, spike_counts[:2])
