"""Spatial networks of Wołczyk, Śmieja, Tabor & Maszke, "Biologically-Inspired Spatial Neural
Networks", and their regular twin.

A sigmoid network n-128-128-128-256-20 whose neurons from the second hidden layer on have
trainable positions p(n) ∈ R² (:mod:`rate_models.positions`, starting N(0, 1)). The forward pass
ignores them; two costs on the layers from the third hidden layer on (the set 𝓛) use them::

    T(l) = (1 / (N_{l-1} N_l)) Σ_{n1 → n2, n2 ∈ l} |a_{n1 n2}| · ||p(n1) − p(n2)||      transport
    V(l) = (1 / N_l²) Σ_{n1, n2 ∈ l} exp(−||p(n1) − p(n2)||)                    density
    loss = L + (1 / |𝓛|) Σ_{l ∈ 𝓛} (α T(l) + β V(l))

Transport pulls connected neurons together, density pushes the neurons of a layer apart. The 20
outputs are two 10-way softmax heads: MNIST, then Fashion-MNIST (:mod:`idx_datasets.double`).

The greedy backward split (:func:`split_tasks`): output neurons belong to their head's task;
going backwards through the layers of 𝓛, each neuron joins the task to which it sends the largest
sum of |w|. Each sub-network is evaluated with the other task's neurons disabled (their outputs
set to zero, :func:`task_masks`).

The regular twin is the same network without positions or costs (``spatial=False``).

Deviations from the paper's text, following the authors' code (github gmum/SpatialNetworks):
T(l) is averaged over the layer's connections, where the paper divides the sum by N_l only. With
the paper's normalisation and α = 1 the transport cost outweighs the cross-entropy several times
and the network stays at chance (measured: 10.7 % after 10 epochs on concatenated input). The
weights start from Glorot's uniform initialisation: with PyTorch's default this five-layer
sigmoid net learns slowly (the MNIST head near chance after two epochs).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from idx_datasets.double import ABSENT  # a head with no label for an example (sequential input): its loss is masked
from rate_models.baselines import CLASSES, IMAGE_SIDE
from rate_models.positions import LayerPositions, distances, layout

TASKS = ("mnist", "fashion")


def double_cross_entropy(scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The two heads' cross-entropies of ``scores [B, 20]`` against ``labels [B, 2]``, summed over
    the heads that have a label and divided by the batch size."""
    heads = scores.unflatten(1, (len(TASKS), CLASSES)).flatten(0, 1)
    return nn.functional.cross_entropy(heads, labels.flatten(), ignore_index=ABSENT, reduction="sum") / len(labels)


def transport_cost(weights: torch.Tensor, source_positions: torch.Tensor,
                   target_positions: torch.Tensor) -> torch.Tensor:
    """T(l): |a| · distance over the connections into layer l, averaged over the connections (the
    authors' code; the paper's 1 / N_l is N_{l-1} times larger, see the module docstring)."""
    return (weights.abs() * distances(target_positions, source_positions)).mean()


def density_cost(positions: torch.Tensor) -> torch.Tensor:
    """V(l): the mean over all pairs of the layer's neurons of exp(−distance)."""
    return torch.exp(-distances(positions, positions)).mean()


@dataclass(frozen=True)
class SpatialConfig:
    """The network of Wołczyk et al.: ``inputs`` (1568 for concatenated input, else 784), hidden
    ``widths``, 20 outputs; costs with weights ``alpha``, ``beta`` on the layers from hidden layer
    ``first_cost_layer`` (1-based) on. ``spatial=False``: the regular twin."""

    inputs: int = 2 * IMAGE_SIDE * IMAGE_SIDE
    widths: tuple[int, ...] = (128, 128, 128, 256)
    spatial: bool = True
    alpha: float = 1.0
    beta: float = 3.0
    first_cost_layer: int = 3

    def __post_init__(self):
        if not 1 <= self.first_cost_layer <= len(self.widths) + 1:
            raise ValueError(f"costs cannot start at hidden layer {self.first_cost_layer}: the network has "
                             f"{len(self.widths)} hidden layers and the output layer ({len(self.widths) + 1})")
        if self.inputs < 1:
            raise ValueError(f"inputs must be >= 1, got {self.inputs}")

    @property
    def sizes(self) -> tuple[int, ...]:
        return (self.inputs, *self.widths, len(TASKS) * CLASSES)

    @property
    def cost_layers(self) -> list[int]:
        """Indices of the linear layers (0: into hidden layer 1) whose target layer is in 𝓛."""
        return list(range(self.first_cost_layer - 1, len(self.widths) + 1))


@dataclass(frozen=True)
class SpatialRegularConfig(SpatialConfig):
    """The regular twin: no positions, no costs."""

    spatial: bool = False


class SpatialNetwork(nn.Module):
    """Linear layers with sigmoids between them; positions for the layers the costs reach."""

    def __init__(self, config: SpatialConfig = SpatialConfig()):
        super().__init__()
        self.config = config
        sizes = config.sizes
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:], strict=True))
        for layer in self.layers:  # Glorot's initialisation, made for sigmoids: PyTorch's default stalls this net
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)
        first = config.cost_layers[0]  # positions from the source layer of the first cost layer on
        self.positions = LayerPositions([layout("normal", size) for size in sizes[first:]],
                                        [True] * len(sizes[first:])) if config.spatial else None

    def forward(self, images: torch.Tensor, masks: list[torch.Tensor] | None = None) -> torch.Tensor:
        """The outputs; ``masks`` (one per split layer, 1 keeps a neuron and 0 disables it)
        multiply the split layers' outputs."""
        signal = flat_inputs(images, self.config)
        for index, layer in enumerate(self.layers):
            signal = layer(signal)
            if index < len(self.layers) - 1:
                signal = torch.sigmoid(signal)
            signal = signal * layer_mask(self.config, masks, index)
        return signal

    def penalty(self) -> torch.Tensor:
        return spatial_penalty(self, self.config)

    def epoch_measures(self) -> dict[str, float]:
        return spatial_measures(self)


def flat_inputs(images: torch.Tensor, config: SpatialConfig) -> torch.Tensor:
    """``images`` flattened, refused in one line if they do not fit the network's inputs."""
    signal = images.flatten(1)
    if signal.shape[1] != config.inputs:
        raise ValueError(f"this network takes {config.inputs} inputs, the data give {signal.shape[1]} "
                         "(set model.inputs: 1568 for concatenated input, 784 otherwise)")
    return signal


def layer_mask(config: SpatialConfig, masks: list[torch.Tensor] | None, index: int) -> torch.Tensor | float:
    """The mask of the neurons that layer ``index`` feeds (1 where there is none)."""
    if masks is None or index not in config.cost_layers:
        return 1.0
    return masks[config.cost_layers.index(index)]


def layer_positions(network: nn.Module, neuron_layer: int) -> torch.Tensor:
    """Positions of the neurons of ``neuron_layer`` (0: the inputs) of a network whose
    ``positions`` start at the source layer of its first cost layer."""
    return network.positions[neuron_layer - network.config.cost_layers[0]]


def costs(network: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean over the layers of 𝓛 of T(l) and of V(l), for a network with ``layers``, ``positions``
    and a ``config`` that names its ``cost_layers``."""
    transport, density = [], []
    for index in network.config.cost_layers:
        target = layer_positions(network, index + 1)
        transport.append(transport_cost(network.layers[index].weight, layer_positions(network, index), target))
        density.append(density_cost(target))
    return torch.stack(transport).mean(), torch.stack(density).mean()


def spatial_penalty(network: nn.Module, config: SpatialConfig) -> torch.Tensor:
    """α T + β V, averaged over 𝓛 (zero for the regular twin), with α and β from ``config``."""
    if network.positions is None:
        return torch.zeros(())
    transport, density = costs(network)
    return config.alpha * transport + config.beta * density


def spatial_measures(network: nn.Module) -> dict[str, float]:
    """What the training loop records after each epoch: the costs and the cross-task weight share."""
    measures = {"cross_task_weight_share": cross_task_weight_share(network, split_tasks(network))}
    if network.positions is not None:
        with torch.no_grad():
            transport, density = costs(network)
        measures |= {"transport_cost": float(transport), "density_cost": float(density)}
    return measures


@torch.no_grad()
def split_tasks(network: nn.Module) -> list[torch.Tensor]:
    """The greedy backward split: per layer of 𝓛 (in order), the task index of each neuron. The
    outputs belong to their head; each earlier neuron joins the task it sends the largest Σ |w| to."""
    layers, cost_layers = network.layers, network.config.cost_layers
    assignment = torch.arange(len(TASKS)).repeat_interleave(CLASSES)  # the output neurons
    assignments = [assignment]
    for index in reversed(cost_layers[1:]):  # the weights out of the layer before
        strength = layers[index].weight.abs()  # [next, this]
        per_task = torch.stack([strength[assignment == task].sum(0) for task in range(len(TASKS))])
        assignment = per_task.argmax(0)
        assignments.insert(0, assignment)
    return assignments


def task_masks(assignments: list[torch.Tensor], task: int) -> list[torch.Tensor]:
    """Per split layer, 1 for the neurons of ``task`` and 0 for the other task's."""
    return [(assignment == task).float() for assignment in assignments]


@torch.no_grad()
def cross_task_weight_share(network: nn.Module, assignments: list[torch.Tensor]) -> float:
    """The share of Σ |w| between split layers that joins neurons of different tasks."""
    crossing = total = 0.0
    for position, index in enumerate(network.config.cost_layers[1:], start=1):
        strength = network.layers[index].weight.abs()
        different = assignments[position][:, None] != assignments[position - 1][None, :]
        crossing += float(strength[different].sum())
        total += float(strength.sum())
    return crossing / total
