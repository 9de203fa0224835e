"""One neuron step for every spiking network of the toolkit: pure, differentiable, the surrogate
gradient chosen by name.

The leaky integrate-and-fire neuron of snntorch's ``Leaky`` (Eshraghian et al. 2023, "Training
spiking neural networks using lessons from deep learning"), whose reset takes effect at the step
after a spike, with a threshold that may grow with each spike::

    v[t] = β v[t-1] + I[t] − s[t-1] θ[t-1]      reset by subtraction   (or β (1 − s[t-1]) v[t-1] + I[t]: to zero)
    θ[t] = θ[t-1] (1 + (r − 1) s[t-1])          r = 1: a fixed threshold
    s[t] = H(v[t] − θ[t])                       forward: Heaviside; backward: the surrogate's derivative

β = 1, θ = 1, r = 1 is the integrate-and-fire neuron of the converted ReLU networks (Rueckauer
et al. 2017), r > 1 the log-coding neuron of the converted log networks (Thériault & François
2021). The spike s[t-1] in the reset is detached, as in snntorch: gradients flow through the
membrane and the threshold, not through the reset. ``v`` here is the membrane before the reset.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import NamedTuple

import torch
from snntorch import surrogate

# name -> (snntorch surrogate factory, the name of its sharpness argument)
SURROGATES: dict[str, tuple[Callable[..., Callable[[torch.Tensor], torch.Tensor]], str]] = {
    "atan": (surrogate.atan, "alpha"),
    "fast_sigmoid": (surrogate.fast_sigmoid, "slope"),
    "sigmoid": (surrogate.sigmoid, "slope"),
}
RESETS = ("subtract", "zero")


@dataclass(frozen=True)
class NeuronParams:
    """A layer's neuron constants; ``beta`` and ``threshold`` may be tensors (learned, or one per
    neuron). ``slope`` is the surrogate's sharpness (None: snntorch's default for it);
    ``fire_at_threshold`` makes H(0) = 1 (v ≥ θ fires, the converted networks' convention)
    instead of snntorch's H(0) = 0."""

    beta: float | torch.Tensor = 1.0
    threshold: float | torch.Tensor = 1.0
    reset: str = "subtract"
    growth: float = 1.0
    surrogate: str = "atan"
    slope: float | None = None
    fire_at_threshold: bool = False

    def __post_init__(self):
        if self.reset not in RESETS:
            raise ValueError(f"reset must be one of {RESETS}, got {self.reset!r}")
        if self.surrogate not in SURROGATES:
            raise ValueError(f"unknown surrogate {self.surrogate!r}; choose one of {sorted(SURROGATES)}")
        if self.growth < 1:
            raise ValueError(f"growth must be >= 1 (1: a fixed threshold), got {self.growth}")

    @cached_property
    def spike(self) -> Callable[[torch.Tensor], torch.Tensor]:
        """The surrogate's spike function, made once per parameter set (not once per step)."""
        return spike_function(self.surrogate, self.slope)

    def needs_gradient(self, *tensors: torch.Tensor | float) -> bool:
        """Whether autograd must see the step: gradients on, and an input or a constant that needs one."""
        return torch.is_grad_enabled() and any(isinstance(value, torch.Tensor) and value.requires_grad
                                               for value in (*tensors, self.beta, self.threshold))


class NeuronState(NamedTuple):
    """The membrane before its reset, the last step's spikes (detached) and the thresholds (a
    number while they are fixed and the same for every neuron)."""

    v: torch.Tensor
    spikes: torch.Tensor
    threshold: torch.Tensor | float

    @classmethod
    def start(cls, like: torch.Tensor, params: NeuronParams, v: float | torch.Tensor = 0.0) -> NeuronState:
        """Neurons shaped like ``like`` at membrane ``v``, no spike yet, threshold θ."""
        zeros = torch.zeros_like(like)
        threshold = params.threshold
        if isinstance(threshold, torch.Tensor) or params.growth != 1:
            threshold = zeros + threshold
        return cls(zeros + v, zeros, threshold)

    def membrane(self) -> torch.Tensor:
        """The membrane after the last step's reset (what a reset-immediately neuron holds)."""
        return self.v - self.spikes * self.threshold


def spike_function(name: str, slope: float | None) -> Callable[[torch.Tensor], torch.Tensor]:
    """snntorch's surrogate ``name``: Heaviside of its input forward, the surrogate's derivative backward."""
    factory, argument = SURROGATES[name]
    return factory() if slope is None else factory(**{argument: slope})


def fire(v: torch.Tensor, threshold: torch.Tensor | float, params: NeuronParams,
         out: torch.Tensor | None = None) -> torch.Tensor:
    """H(v − θ), with a gradient path (the surrogate's) only where one is needed; without one, the
    spikes may be written into ``out``."""
    if not params.needs_gradient(v, threshold):
        compare = torch.ge if params.fire_at_threshold else torch.gt
        return compare(v, threshold, out=out) if out is not None else compare(v, threshold).to(v.dtype)
    spikes = params.spike(v - threshold)  # snntorch's: H(0) = 0
    if not params.fire_at_threshold:
        return spikes
    hard = (v >= threshold).to(v.dtype)
    return hard + (spikes - spikes.detach())  # the value of `hard`, the gradient of the surrogate


def step(current: torch.Tensor, state: NeuronState, params: NeuronParams, out: torch.Tensor | None = None
         ) -> tuple[torch.Tensor, NeuronState]:
    """One time step of the neurons (see the module docstring); returns the spikes (written into
    ``out`` when given and no gradient is needed) and the new state."""
    if isinstance(params.beta, torch.Tensor):
        decayed = params.beta.clamp(0, 1) * state.v
    else:
        decayed = state.v if params.beta == 1 else params.beta * state.v
    if params.reset == "zero":
        v = decayed * (1 - state.spikes) + current
    elif isinstance(state.threshold, float):
        v = torch.sub(decayed, state.spikes, alpha=state.threshold).add_(current)
    else:
        v = (decayed - state.spikes * state.threshold) + current
    threshold = state.threshold
    if params.growth != 1:
        threshold = threshold * (1 + (params.growth - 1) * state.spikes)
    spikes = fire(v, threshold, params, out)
    return spikes, NeuronState(v, spikes.detach(), threshold)


def run(currents: torch.Tensor, state: NeuronState, params: NeuronParams) -> tuple[torch.Tensor, NeuronState]:
    """:func:`step` over the leading (time) axis of ``currents [T, ...]``: the spikes ``[T, ...]``
    and the final state. Without gradients the spikes go straight into one ``[T, ...]`` tensor."""
    if params.needs_gradient(currents, *state):
        spikes = []
        for current in currents:
            spiked, state = step(current, state, params)
            spikes.append(spiked)
        return torch.stack(spikes), state
    spikes = torch.empty_like(currents)
    for time_step, current in enumerate(currents):
        _, state = step(current, state, params, out=spikes[time_step])
    return spikes, state
