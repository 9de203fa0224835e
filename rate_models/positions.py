"""Neurons with positions: one component for every model that places its neurons in space.

A network's neurons get per-layer coordinates ``[neurons, dimension]``, each layer fixed (a
buffer) or trained (a parameter), and the models use the distances between the neurons of
connected layers in their own way:

- Shader's positional layers (:mod:`rate_models.positional`) put distance into the forward pass,
  effective weight b(d)·w;
- the spatial networks of Wołczyk et al. leave the forward pass alone and add transport and
  density costs over the same distances.

Layouts: positions drawn from N(0, 1) (the hidden layers of both papers), the pixel grid of an
image spanning [−extent, extent] on both axes (Shader's fixed input layer), points on a circle
(Shader's fixed outputs in the paper) or on a line (his early code).
"""

from __future__ import annotations

import math

import torch
from torch import nn

LAYOUTS = ("normal", "grid", "circle", "line")


def squared_distances(targets: torch.Tensor, sources: torch.Tensor) -> torch.Tensor:
    """||p(target) − p(source)||² of every pair, ``[targets, sources]``, with a gradient everywhere
    (also where two neurons meet, unlike the distance itself). Computed as |t|² + |s|² − 2 t·s,
    one matrix product: six times faster forward and backward than differences of every pair
    (``benchmarks/positional.py``), exact to float rounding (about 1e-6 at these scales)."""
    norms = targets.square().sum(1, keepdim=True) + sources.square().sum(1)
    return torch.addmm(norms, targets, sources.T, alpha=-2)


def distances(targets: torch.Tensor, sources: torch.Tensor) -> torch.Tensor:
    """||p(target) − p(source)||, ``[targets, sources]``."""
    return squared_distances(targets, sources).clamp_min(1e-12).sqrt()


def layout(name: str, neurons: int, dimension: int = 2, extent: float = 2.0,
           generator: torch.Generator | None = None) -> torch.Tensor:
    """Coordinates ``[neurons, dimension]`` of a layer laid out as ``name`` (:data:`LAYOUTS`):
    ``normal`` N(0, 1); ``grid`` a square grid spanning [−extent, extent]² (row-major, as pixels
    are flattened); ``circle`` evenly on a circle of radius ``extent``; ``line`` evenly on the x
    axis over [−extent, extent]."""
    if name not in LAYOUTS:
        raise ValueError(f"unknown layout {name!r}; choose one of {LAYOUTS}")
    if name == "normal":
        return torch.randn(neurons, dimension, generator=generator)
    if dimension != 2:
        raise ValueError(f"the {name} layout is two-dimensional, not {dimension}-dimensional")
    if name == "grid":
        side = math.isqrt(neurons)
        if side * side != neurons:
            raise ValueError(f"{neurons} neurons make no square grid")
        axis = torch.linspace(-extent, extent, side)
        rows, columns = torch.meshgrid(axis, axis, indexing="ij")
        return torch.stack([columns.flatten(), -rows.flatten()], 1)  # x to the right, y up, as an image is seen
    if name == "circle":
        angle = 2 * math.pi * torch.arange(neurons) / neurons
        return extent * torch.stack([angle.cos(), angle.sin()], 1)
    return torch.stack([torch.linspace(-extent, extent, neurons), torch.zeros(neurons)], 1)


class LayerPositions(nn.Module):
    """The coordinates of every layer of a network, ``layers[l]`` ``[neurons_l, dimension]``; layer
    ``l`` is trained when ``trainable[l]``, else a buffer that never moves."""

    def __init__(self, coordinates: list[torch.Tensor], trainable: list[bool]):
        super().__init__()
        if len(coordinates) != len(trainable):
            raise ValueError("give one trainable flag per layer of coordinates")
        dimensions = {c.shape[1] for c in coordinates}
        if len(dimensions) != 1:
            raise ValueError(f"every layer needs the same dimension, got {sorted(dimensions)}")
        self.trainable = list(trainable)
        for index, (points, train) in enumerate(zip(coordinates, trainable, strict=True)):
            if train:
                self.register_parameter(f"layer_{index}", nn.Parameter(points.clone()))
            else:
                self.register_buffer(f"layer_{index}", points.clone())

    def __len__(self) -> int:
        return len(self.trainable)

    def __getitem__(self, index: int) -> torch.Tensor:
        return getattr(self, f"layer_{index % len(self)}")

    def squared_distances(self, layer: int) -> torch.Tensor:
        """Squared distances from the neurons of layer ``layer`` to those of ``layer + 1``,
        ``[neurons_{l+1}, neurons_l]`` (the shape of the weights between them)."""
        return squared_distances(self[layer + 1], self[layer])

    def keep(self, layer: int, neurons: torch.Tensor) -> None:
        """Keep only ``neurons`` (indices) of layer ``layer`` (pruning)."""
        kept = self[layer].detach()[neurons].clone()
        name = f"layer_{layer % len(self)}"
        delattr(self, name)
        if self.trainable[layer % len(self)]:
            self.register_parameter(name, nn.Parameter(kept))
        else:
            self.register_buffer(name, kept)
