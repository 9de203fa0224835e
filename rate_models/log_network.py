"""The log network of Thériault & François (2021), "A biophysically inspired neural network"::

    x2[j] = log((1/N) sum_k w1[j, k] x1[k])        (Weber-Fechner: the first layer reads log drive)
    x3[i] = sum_j w2[i, j] x2[j]

with w1 kept in [0, 1] (negative entries replaced by their absolute value, entries above 1 set to
1) and w2 >= 0, enforced by :func:`constrain_` after every optimiser step. Trained by minimising
-x3[y] (the paper's error function) or, as an option, cross-entropy on x3.

Guard against log 0: the mean projection is clamped below at :data:`LOG_FLOOR` before the log.
It is zero only for an image with no ink where the prototype has weight (a blank image, or a
prototype that is zero on the image's support); the clamp then gives x2 = log(LOG_FLOOR) = -23,
finite, with zero gradient, instead of -inf and NaN gradients.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

LOG_FLOOR = 1e-10
PIXELS = 28 * 28
CLASSES = 10


def mean_projection(images: torch.Tensor, w1: torch.Tensor) -> torch.Tensor:
    """``(1/N) sum_k w1[j, k] x1[k]`` for ``images [B, ...]`` flattened to N pixels: ``[B, hidden]``."""
    flat = images.flatten(1)
    return flat @ w1.t() / flat.shape[1]


def log_activation(images: torch.Tensor, w1: torch.Tensor) -> torch.Tensor:
    """x2 = log of the mean projection, clamped at :data:`LOG_FLOOR` (see the module docstring)."""
    return torch.log(mean_projection(images, w1).clamp_min(LOG_FLOOR))


def log_network(images: torch.Tensor, w1: torch.Tensor, w2: torch.Tensor) -> torch.Tensor:
    """x3 = w2 x2: the class scores ``[B, classes]``."""
    return log_activation(images, w1) @ w2.t()


def linearised_log_network(images: torch.Tensor, w1: torch.Tensor, w2: torch.Tensor) -> torch.Tensor:
    """The log network with its activation removed: x3 = w2 (1/N) w1 x1 (Thériault & François, "linearize")."""
    return mean_projection(images, w1) @ w2.t()


@torch.no_grad()
def constrain_(w1: torch.Tensor, w2: torch.Tensor) -> None:
    """The paper's constraints, in place: w1 <- min(|w1|, 1), w2 <- max(w2, 0)."""
    w1.abs_().clamp_(max=1.0)
    w2.clamp_(min=0.0)


def first_order_change(images: torch.Tensor, perturbation: torch.Tensor, w1: torch.Tensor, w2: torch.Tensor
                       ) -> torch.Tensor:
    """Thériault & François' prediction of the relative output change, delta x3 / x3 in ordinary space
    (x3 = prod_j projection_j ** w2[i, j])::

        delta x3[i] / x3[i] = sum_j w2[i, j] (w1[j] . delta x1) / (w1[j] . x1)

    Returns ``[B, classes]``; log(1 + this) is the predicted change of the log-space output.
    """
    ratios = mean_projection(perturbation, w1) / mean_projection(images, w1).clamp_min(LOG_FLOOR)
    return ratios @ w2.t()


@dataclass(frozen=True)
class LogNetConfig:
    """``hidden`` prototypes (the paper trains ten per class in its control network); initial
    weights are Keras' glorot-uniform after the constraints (|U(-a, a)|, a = sqrt(6 / (fan_in + fan_out)))."""

    hidden: int = 100
    inputs: int = PIXELS
    classes: int = CLASSES
    train_first_layer: bool = True  # False: w1 frozen (the control network's second stage)


class LogNetwork(nn.Module):
    """Module wrapper of :func:`log_network` holding ``w1 [hidden, N]`` and ``w2 [classes, hidden]``."""

    def __init__(self, config: LogNetConfig = LogNetConfig()):
        super().__init__()
        self.w1 = nn.Parameter(_glorot(config.hidden, config.inputs))
        self.w2 = nn.Parameter(_glorot(config.classes, config.hidden))
        self.w1.requires_grad_(config.train_first_layer)
        self.constrain_()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return log_network(images, self.w1, self.w2)

    def hidden(self, images: torch.Tensor) -> torch.Tensor:
        """x2, the log activations ``[B, hidden]``."""
        return log_activation(images, self.w1)

    def constrain_(self) -> None:
        constrain_(self.w1.data, self.w2.data)


def _glorot(fan_out: int, fan_in: int) -> torch.Tensor:
    bound = math.sqrt(6.0 / (fan_in + fan_out))
    return torch.empty(fan_out, fan_in).uniform_(-bound, bound)


def fit_prototypes(w1: torch.Tensor, image_sets: torch.Tensor, steps: int, learning_rate: float) -> torch.Tensor:
    """First stage of Thériault & François' control network: row j of ``w1 [hidden, N]`` minimises
    -mean over its own image set of x2[j] by gradient descent, under the constraints.

    ``image_sets [hidden, set_size, N]`` (row j's set holds images of one class). The gradient,
    -mean_s x_s / (w1[j] . x_s), is a weighted mean of the set's images, so from a small start w1[j]
    grows into the set's average digit (until entries reach the clip at 1). Returns the new w1.
    """
    w1 = w1.detach().clone().requires_grad_(True)
    for _ in range(steps):
        projections = torch.einsum("jsk,jk->js", image_sets, w1) / image_sets.shape[-1]
        loss = -torch.log(projections.clamp_min(LOG_FLOOR)).mean(1).sum()
        (gradient,) = torch.autograd.grad(loss, w1)
        with torch.no_grad():
            w1 -= learning_rate * gradient
            w1.abs_().clamp_(max=1.0)
    return w1.detach()


def class_image_sets(images: torch.Tensor, labels: torch.Tensor, hidden: int, set_size: int,
                     classes: int = CLASSES) -> torch.Tensor:
    """``[hidden, set_size, N]``: prototype j's own set, the (j // classes)-th block of ``set_size``
    images of class j % classes (Thériault & François: w1[0], w1[10], ... learn 0s on different sets)."""
    flat = images.flatten(1)
    sets = []
    for j in range(hidden):
        members = (labels == j % classes).nonzero().flatten()
        block = members[(j // classes) * set_size : (j // classes + 1) * set_size]
        if len(block) < set_size:
            raise ValueError(f"class {j % classes} has too few images for {hidden} prototypes of {set_size} each")
        sets.append(flat[block])
    return torch.stack(sets)
