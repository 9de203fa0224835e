"""Functional core of the converted spiking networks: pure functions of tensors.

Integrate-and-fire with reset by subtraction (Rueckauer et al. 2017, eq. 2), unit threshold::

    v[t] = v[t-1] + I[t];   s[t] = (v[t] >= 1);   v[t] -= s[t]

Driven by a constant current I for T steps from v[0] = v_init, the neuron fires
floor(I T + v_init) times (for 0 <= I <= 1), so its rate s/T is within 1/T of clip(I, 0, 1):
the ReLU of seed 002, section 3.5, read as a spike count.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def integrate_and_fire(v: torch.Tensor, currents: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Run IF neurons over the leading (time) axis of ``currents [T, ...]`` from membrane ``v``.

    Returns the spikes ``[T, ...]`` (0/1, same dtype) and the final membrane potential.
    """
    spikes = torch.empty_like(currents)
    for step in range(currents.shape[0]):
        v = v + currents[step]
        fired = (v >= 1.0).to(currents.dtype)
        v = v - fired
        spikes[step] = fired
    return spikes, v


def max_pool_gate(spikes: torch.Tensor, counts: torch.Tensor, kernel: int, stride: int
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Spiking max-pooling (Rueckauer et al. 2017, section 2.2.4): each pooling window passes on
    the spikes of the unit that has fired most so far.

    ``spikes [T, B, C, H, W]``, ``counts [B, C, H, W]`` spikes before this chunk. Returns the pooled
    spikes ``[T, B, C, H', W']`` and the updated counts.
    """
    pooled = []
    for step in range(spikes.shape[0]):
        counts = counts + spikes[step]
        _, winner = F.max_pool2d(counts, kernel, stride, return_indices=True)
        pooled.append(spikes[step].flatten(2).gather(2, winner.flatten(2)).view_as(winner).to(spikes.dtype))
    return torch.stack(pooled), counts


def poisson_spikes(rates: torch.Tensor, steps: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Bernoulli spikes ``[steps, ...]`` with probability ``rates`` (in [0, 1]) per step."""
    noise = torch.rand((steps, *rates.shape), generator=generator, dtype=rates.dtype, device=rates.device)
    return (noise < rates).to(rates.dtype)
