"""Positional neuron layers of Shader, "Positional Neuron Layers", and their plain twin.

Every neuron has a position (:mod:`rate_models.positions`); a layer stores raw weights w and
computes its effective weights from the distance d between the neurons they join in every
forward pass::

    w_eff[j, i] = b(d²(j, i)) · w[j, i]        b(d²) = 1 / (1 + d²)   (the author's falloff, on d²)

Regularisers (``regulariser``), with S = Σ over layers of Σ (w² + bias²) over raw weights:

    l2         l2_strength · S
    distance   distance_strength · mean over layers of mean over pairs of d² · w²   + l2_strength · S
    mean_square distance_strength · mean over layers of mean over pairs of w²      + l2_strength · S

``mean_square`` is the distance penalty with every d² = 1: the plain network regularised at the
same strength, the comparison the paper says it still owes.

The network: [784, 112, 56, 50, 50, 50, 10], swish between layers. Input positions are fixed to
the pixel grid spanning [−2, 2]², outputs fixed on a circle of radius 5 (the paper, and the
author's later code) or on a line x ∈ [−3, 3] (his early code); hidden positions start N(0, σ²)
with σ = 1, 1.5, 2, 2, 2 and train with the weights. Raw weights start Glorot-uniform divided by
the mean of b over the layer's pairs, so that effective weights start at the usual scale; biases
start at zero. All from the author's public Julia code (jonahshader/position_neurons_julia).

Pruning (:func:`prune`) removes whole hidden neurons, the lowest-scoring ones over all hidden
layers together; the author's score is a neuron's mean squared raw weight, incoming and outgoing
(:func:`mean_squared_weight`). Pruned neurons leave the weight matrices (the author zeroes them).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from rate_models.baselines import CLASSES, IMAGE_SIDE
from rate_models.positions import LayerPositions, layout

FALLOFFS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {  # b of the squared distance
    "inverse_square": lambda squared: 1 / (1 + squared),  # the author's bell curve
    "gaussian": lambda squared: torch.exp(-squared),
}
REGULARISERS = ("none", "l2", "distance", "mean_square")
OUTPUT_LAYOUTS = {"circle": 5.0, "line": 3.0}  # layout -> extent (radius, or half-length), the author's
INPUT_EXTENT = 2.0  # the pixel grid spans [-2, 2] on both axes
HIDDEN_SPREADS = (1.0, 1.5, 2.0)  # std of the first, second and later hidden layers' starting positions


def effective_weights(weights: torch.Tensor, squared_distances: torch.Tensor, falloff: str) -> torch.Tensor:
    """b(d²) · w, elementwise (``[out, in]`` both)."""
    return FALLOFFS[falloff](squared_distances) * weights


class PositionalLinear(nn.Linear):
    """A linear layer that stores raw weights w and computes its effective weights b(d²) · w in
    every call from the squared distances ``[out, in]`` between the neurons it joins (None: the
    plain layer, for the positional net's twin)."""

    def __init__(self, in_features: int, out_features: int, falloff: str = "inverse_square"):
        super().__init__(in_features, out_features)
        self.falloff = falloff

    def effective_weight(self, squared_distances: torch.Tensor | None) -> torch.Tensor:
        if squared_distances is None:
            return self.weight
        return effective_weights(self.weight, squared_distances, self.falloff)

    def forward(self, inputs: torch.Tensor, squared_distances: torch.Tensor | None = None) -> torch.Tensor:
        return nn.functional.linear(inputs, self.effective_weight(squared_distances), self.bias)


@dataclass(frozen=True)
class PositionalConfig:
    """Shader's network (see the module docstring). ``positional=False`` is the plain twin: the
    same sizes and swish, no positions (``distance`` then has no distances to weigh)."""

    widths: tuple[int, ...] = (IMAGE_SIDE * IMAGE_SIDE, 112, 56, 50, 50, 50, CLASSES)
    positional: bool = True
    falloff: str = "inverse_square"
    outputs: str = "circle"
    dimension: int = 2
    regulariser: str = "distance"
    distance_strength: float = 0.25  # the author's: the sum over layers divided by (layers x 4)
    l2_strength: float = 2e-6  # the author's plain penalty on sum(w^2 + bias^2)

    def __post_init__(self):
        if self.falloff not in FALLOFFS:
            raise ValueError(f"unknown falloff {self.falloff!r}; choose one of {sorted(FALLOFFS)}")
        if self.outputs not in OUTPUT_LAYOUTS:
            raise ValueError(f"outputs must be one of {sorted(OUTPUT_LAYOUTS)}, got {self.outputs!r}")
        if self.regulariser not in REGULARISERS:
            raise ValueError(f"regulariser must be one of {REGULARISERS}, got {self.regulariser!r}")
        if self.regulariser == "distance" and not self.positional:
            raise ValueError("the distance regulariser needs positions; the plain twin takes l2 or mean_square")
        if len(self.widths) < 2 or self.widths[0] != IMAGE_SIDE * IMAGE_SIDE or self.widths[-1] != CLASSES:
            raise ValueError(f"widths must run from 784 to 10, got {self.widths}")


@dataclass(frozen=True)
class VanillaConfig(PositionalConfig):
    """The plain twin: no positions, no regularisation (the paper's "Vanilla")."""

    positional: bool = False
    regulariser: str = "none"


def starting_positions(config: PositionalConfig) -> LayerPositions:
    """Inputs on the pixel grid and outputs on a circle or line (fixed); hidden layers N(0, σ²), trained."""
    widths = config.widths
    hidden = [layout("normal", width, config.dimension) * HIDDEN_SPREADS[min(index, len(HIDDEN_SPREADS) - 1)]
              for index, width in enumerate(widths[1:-1])]
    inputs = layout("grid", widths[0], config.dimension, INPUT_EXTENT)
    outputs = layout(config.outputs, widths[-1], config.dimension, OUTPUT_LAYOUTS[config.outputs])
    return LayerPositions([inputs, *hidden, outputs], [False, *[True] * len(hidden), False])


class PositionalNetwork(nn.Module):
    """Linear layers whose effective weights depend on the positions of the neurons they join
    (plain linear layers when ``config.positional`` is False), swish between them."""

    def __init__(self, config: PositionalConfig = PositionalConfig()):
        super().__init__()
        self.config = config
        self.layers = nn.ModuleList(PositionalLinear(fan_in, fan_out, config.falloff)
                                    for fan_in, fan_out in zip(config.widths[:-1], config.widths[1:], strict=True))
        self.positions = starting_positions(config) if config.positional else None
        with torch.no_grad():
            for index, layer in enumerate(self.layers):
                nn.init.xavier_uniform_(layer.weight)
                nn.init.zeros_(layer.bias)
                if self.positions is not None:
                    layer.weight /= FALLOFFS[config.falloff](self.positions.squared_distances(index)).mean()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        signal = images.flatten(1)
        for index, layer in enumerate(self.layers):
            signal = layer(signal, layer_distances(self, index))
            if index < len(self.layers) - 1:
                signal = nn.functional.silu(signal)
        return signal

    def penalty(self) -> torch.Tensor:
        """The regulariser's term of the loss (see the module docstring)."""
        return regularisation(self, self.config)


def layer_distances(network: nn.Module, index: int) -> torch.Tensor | None:
    """The squared distances ``[out, in]`` that layer ``index`` of a network with ``layers``
    (:class:`PositionalLinear`) and ``positions`` joins (None without positions)."""
    return None if network.positions is None else network.positions.squared_distances(index)


def regularisation(network: nn.Module, config: PositionalConfig) -> torch.Tensor:
    """The penalty of ``config.regulariser`` on a network with ``layers`` (and ``positions``)."""
    layers = network.layers
    total = torch.zeros(())
    if config.regulariser == "none":
        return total
    if config.regulariser in ("distance", "mean_square"):
        terms = [layer.weight.square() for layer in layers]
        if config.regulariser == "distance":
            terms = [term * network.positions.squared_distances(index) for index, term in enumerate(terms)]
        total = config.distance_strength * torch.stack([term.mean() for term in terms]).mean()
    return total + config.l2_strength * sum(layer.weight.square().sum() + layer.bias.square().sum()
                                            for layer in layers)


def mean_squared_weight(network: nn.Module) -> list[torch.Tensor]:
    """Per hidden layer, each neuron's mean squared raw weight over its incoming and outgoing
    connections (the author's pruning score; biases left out)."""
    layers = network.layers
    return [(incoming.weight.square().sum(1) + outgoing.weight.square().sum(0))
            / (incoming.in_features + outgoing.out_features)
            for incoming, outgoing in zip(layers[:-1], layers[1:], strict=True)]


def prune(network: nn.Module, proportion: float, scores: list[torch.Tensor] | None = None) -> nn.Module:
    """A copy of ``network`` without the ``proportion`` of its hidden neurons that score lowest
    over all hidden layers together (``scores``: one tensor per hidden layer, by default
    :func:`mean_squared_weight`); their rows, columns and positions leave the matrices. The
    network must have ``layers`` (:class:`PositionalLinear`) and ``positions`` (or None)."""
    if not 0 <= proportion < 1:
        raise ValueError(f"the pruned proportion must be in [0, 1), got {proportion}")
    scores = [score.detach() for score in (scores or mean_squared_weight(network))]
    flat = torch.cat(scores)
    removed = torch.zeros(len(flat), dtype=torch.bool)
    removed[flat.argsort()[: round(proportion * len(flat))]] = True
    pruned = copy.deepcopy(network)
    start = 0
    for index, score in enumerate(scores):
        keep = (~removed[start : start + len(score)]).nonzero().squeeze(1)
        start += len(score)
        if len(keep) == 0:
            keep = score.argmax().view(1)  # a layer keeps at least its best neuron
        incoming, outgoing = pruned.layers[index], pruned.layers[index + 1]
        pruned.layers[index] = _positional_linear(incoming.weight[keep], incoming.bias[keep], incoming.falloff)
        pruned.layers[index + 1] = _positional_linear(outgoing.weight[:, keep], outgoing.bias, outgoing.falloff)
        if getattr(pruned, "positions", None) is not None:
            pruned.positions.keep(index + 1, keep)
    return pruned


def _positional_linear(weight: torch.Tensor, bias: torch.Tensor, falloff: str) -> PositionalLinear:
    layer = PositionalLinear(weight.shape[1], weight.shape[0], falloff)
    with torch.no_grad():
        layer.weight.copy_(weight)
        layer.bias.copy_(bias)
    return layer
