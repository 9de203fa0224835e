"""Quantisation-clip-floor-shift activation (QCFS; Bu et al. 2022, "Optimal ANN-SNN conversion
for high-accuracy and ultra-low-latency spiking neural networks", ICLR, eq. 13)::

    h(x) = lambda * clip(floor(x L / lambda + 1/2) / L, 0, 1)

with a trainable threshold lambda per layer and L quantisation levels. An integrate-and-fire
neuron with threshold lambda, reset by subtraction and initial membrane lambda / 2 fires exactly
L h(x) / lambda times in L steps under constant input x, so a network trained with QCFS converts
without loss at T = L steps. The floor passes gradients straight through.
"""

from __future__ import annotations

import torch
from torch import nn


class _FloorStraightThrough(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return torch.floor(x)

    @staticmethod
    def backward(ctx, grad):
        return grad


def qcfs(x: torch.Tensor, threshold: torch.Tensor, levels: int) -> torch.Tensor:
    """h(x) of the module docstring."""
    steps = _FloorStraightThrough.apply(x / threshold * levels + 0.5) / levels
    return torch.clamp(steps, 0, 1) * threshold


class QCFS(nn.Module):
    """ReLU replacement for conversion-friendly training; ``threshold`` is lambda (trained)."""

    def __init__(self, levels: int = 8, threshold: float = 1.0):
        super().__init__()
        if levels < 1:
            raise ValueError(f"QCFS needs at least one level, got {levels}")
        self.levels = levels
        self.threshold = nn.Parameter(torch.tensor(float(threshold)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return qcfs(x, self.threshold, self.levels)

    def extra_repr(self) -> str:
        return f"levels={self.levels}"
