"""Probes of the claims of Thériault & François (2021), for any classifier ``model(images) -> scores [B, classes]``:
removing the activation (linearisation), first-order perturbation response, and gradient attacks.

Attacks are L-infinity with pixels kept in [0, 1], on the cross-entropy of the scores:

- FGSM (Goodfellow et al. 2015): x' = clip(x + eps sign(grad_x loss)).
- PGD (Madry et al. 2018): from a random start in the eps-ball, ``steps`` steps of size
  2.5 eps / steps along sign(grad), each projected back into the ball.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from rate_models.log_network import LogNetwork, linearised_log_network

Attack = Callable[[nn.Module, torch.Tensor, torch.Tensor, float], torch.Tensor]


class _LinearisedLogNetwork(nn.Module):
    def __init__(self, network: LogNetwork):
        super().__init__()
        self.network = network

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return linearised_log_network(images, self.network.w1, self.network.w2)


def linearise(model: nn.Module) -> nn.Module:
    """A copy of ``model`` without its activation: the log network's log, or every ReLU of a
    ReLU network replaced by the identity (Thériault & François, "About linearity")."""
    if isinstance(model, LogNetwork):
        return _LinearisedLogNetwork(copy.deepcopy(model))
    linear = copy.deepcopy(model)
    replaced = 0
    for parent in linear.modules():
        for name, child in parent.named_children():
            if isinstance(child, nn.ReLU):
                setattr(parent, name, nn.Identity())
                replaced += 1
    if not replaced:
        raise ValueError(f"{type(model).__name__} has no ReLU to remove (and is not a log network)")
    return linear


def _input_gradient(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    images = images.detach().requires_grad_(True)
    loss = F.cross_entropy(model(images), labels)
    (gradient,) = torch.autograd.grad(loss, images)
    return gradient


def fgsm(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, epsilon: float) -> torch.Tensor:
    """One signed-gradient step of size ``epsilon``."""
    return (images + epsilon * _input_gradient(model, images, labels).sign()).clamp(0, 1).detach()


def pgd(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, epsilon: float, steps: int = 20,
        generator: torch.Generator | None = None) -> torch.Tensor:
    """Projected gradient ascent of the loss inside the eps-ball, from a random start."""
    step_size = 2.5 * epsilon / steps
    noise = torch.rand(images.shape, generator=generator, dtype=images.dtype) * 2 - 1
    adversarial = (images + epsilon * noise).clamp(0, 1)
    for _ in range(steps):
        adversarial = adversarial + step_size * _input_gradient(model, adversarial, labels).sign()
        adversarial = torch.min(torch.max(adversarial, images - epsilon), images + epsilon).clamp(0, 1)
    return adversarial.detach()


@dataclass
class AttackSweep:
    """An attack at every eps of a grid: accuracy against eps, and per image the smallest eps of
    the grid that flips a correctly classified image (inf if none does; nan if it starts wrong)."""

    epsilons: list[float]
    accuracy: list[float]
    smallest_epsilon: torch.Tensor

    def mean_smallest_epsilon(self) -> float:
        """Mean over the correctly classified images that some eps of the grid flips."""
        flipped = self.smallest_epsilon[torch.isfinite(self.smallest_epsilon)]
        return float(flipped.mean()) if flipped.numel() else float("inf")

    def never_flipped(self) -> float:
        """Share of the correctly classified images that no eps of the grid flips."""
        correct = ~torch.isnan(self.smallest_epsilon)
        return float(torch.isinf(self.smallest_epsilon[correct]).float().mean())


def attack_sweep(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, epsilons: list[float],
                 attack: Attack) -> AttackSweep:
    """Run ``attack`` at each eps (increasing) on every image, in evaluation mode (restored after)."""
    if sorted(epsilons) != list(epsilons) or epsilons[0] <= 0:
        raise ValueError("epsilons must be positive and increasing")
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            correct = model(images).argmax(1) == labels
        smallest = torch.full((len(labels),), float("inf"))
        smallest[~correct] = float("nan")
        accuracy = []
        for epsilon in epsilons:
            adversarial = attack(model, images, labels, epsilon)
            with torch.no_grad():
                still_correct = model(adversarial).argmax(1) == labels
            accuracy.append(float(still_correct.float().mean()))
            newly_flipped = correct & ~still_correct & torch.isinf(smallest)
            smallest[newly_flipped] = epsilon
    finally:
        model.train(was_training)
    return AttackSweep(list(epsilons), accuracy, smallest)


def perturbation_response(model: nn.Module, image: torch.Tensor, direction: torch.Tensor, sizes: torch.Tensor,
                          predict: Callable[[torch.Tensor], torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """The change of the scores ``model(image + s direction) - model(image)`` for every size s, and
    the first-order prediction ``predict(s direction)``; both ``[sizes, classes]``."""
    with torch.no_grad():
        base = model(image[None])
        perturbed = model(image[None] + sizes.view(-1, *[1] * image.dim()) * direction)
        predicted = torch.cat([predict(size * direction) for size in sizes])
    return perturbed - base, predicted


def relu_first_order(model: nn.Module, image: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    """delta scores ~ J delta x, the Jacobian of ``model`` at ``image`` (exact while no ReLU flips)."""

    def predict(perturbation: torch.Tensor) -> torch.Tensor:
        _, change = torch.func.jvp(model, (image[None],), (perturbation[None],))
        return change

    return predict


def agreement_limit(numerical: torch.Tensor, predicted: torch.Tensor, sizes: torch.Tensor,
                    tolerance: float = 0.1) -> float:
    """The largest size below which every class's prediction is within ``tolerance`` (relative)
    of the numerical change (an undefined prediction counts as a miss)."""
    error = (predicted - numerical).abs() / numerical.abs().clamp_min(1e-12)
    failing = (~(error <= tolerance)).any(1).nonzero().flatten()
    if failing.numel() == 0:
        return float(sizes[-1])
    first = int(failing[0])
    return float(sizes[first - 1]) if first > 0 else 0.0
