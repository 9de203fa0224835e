"""Functional core of the converted spiking networks: pure functions of tensors.

Integrate-and-fire with reset by subtraction (Rueckauer et al. 2017, eq. 2), unit threshold,
the neuron step of :mod:`spiking.neuron` with β = 1, θ = 1 and H(0) = 1::

    v[t] = v[t-1] + I[t];   s[t] = (v[t] >= 1);   v[t] -= s[t]

Driven by a constant current I for T steps from v[0] = v_init, the neuron fires
floor(I T + v_init) times (for 0 <= I <= 1), so its rate s/T is within 1/T of clip(I, 0, 1):
the ReLU of Gupta & Naveed, section 3.5, read as a spike count.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.nn.modules.utils import _pair

from spiking import neuron

SPARSE_DENSITY = 0.25  # below this fraction of active inputs, summing weight rows beats a dense product
Pool = tuple[tuple[int, int], tuple[int, int]]  # a max-pool gate's kernel and stride
INTEGRATE_AND_FIRE = neuron.NeuronParams(beta=1.0, threshold=1.0, reset="subtract", fire_at_threshold=True)


def integrate_and_fire(v: torch.Tensor, currents: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Run IF neurons over the leading (time) axis of ``currents [T, ...]`` from membrane ``v``.

    Returns the spikes ``[T, ...]`` (0/1, same dtype) and the final membrane potential.
    """
    spikes, state = neuron.run(currents, neuron.NeuronState.start(v, INTEGRATE_AND_FIRE, v), INTEGRATE_AND_FIRE)
    return spikes, state.membrane()


def integrate_and_fire_constant(current: torch.Tensor, v_init: float, first_step: int, steps: int) -> torch.Tensor:
    """Spikes ``[steps, ...]`` at steps ``first_step + 1 .. first_step + steps`` of IF neurons
    driven by a constant ``current`` from ``v_init`` (in [0, 1)), in closed form: the loop of
    :func:`integrate_and_fire` has fired n(t) = floor(v_init + t clip(I, 0, 1)) times after t steps.
    """
    t = torch.arange(first_step, first_step + steps + 1, dtype=current.dtype, device=current.device)
    fired = (t.view(-1, *[1] * current.dim()) * current.clamp(0, 1)).add_(v_init).floor_()  # one temporary
    return torch.diff(fired, dim=0)


def max_pool_gate(spikes: torch.Tensor, counts: torch.Tensor, kernel: int | tuple[int, int],
                  stride: int | tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Spiking max-pooling (Rueckauer et al. 2017, section 2.2.4): each pooling window passes on
    the spikes of the unit that has fired most so far.

    ``spikes [T, B, C, H, W]`` (0/1), ``counts [B, C, H, W]`` spikes before this chunk. Returns the pooled
    spikes ``[T, B, C, H', W']`` and the updated counts (on a CPU, in channels-last memory).
    """
    kernel, stride = _pair(kernel), _pair(stride)
    if spikes.device.type != "cpu":
        return max_pool_gate_stepwise(spikes, counts, kernel, stride)
    from bridges import cpu_kernels

    counts = _channels_last(counts, copy=True)  # the kernel adds into it
    out_h, out_w = _output_size(spikes.shape[-2:], kernel, stride, (0, 0))
    pooled = torch.empty(*spikes.shape[:2], out_h, out_w, spikes.shape[2], dtype=spikes.dtype)
    _use_torch_threads()
    cpu_kernels.max_pool_gate(_channels_last(spikes).numpy(), counts.numpy(), pooled.numpy(), *kernel, *stride)
    return _channels_first(pooled), _channels_first(counts)


def max_pool_gate_stepwise(spikes: torch.Tensor, counts: torch.Tensor, kernel: tuple[int, int],
                           stride: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`max_pool_gate` in torch operations, one step at a time (any device)."""
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


def spike_driven_linear(spikes: torch.Tensor, weight_t: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """``spikes [N, inputs] @ weight_t [inputs, outputs] + bias`` for 0/1 spikes: each row sums
    the weight rows of its active inputs (event-driven, as a neuromorphic chip would), which is
    cheaper than a dense product when few inputs spike."""
    if spikes.numel() == 0 or float(spikes.mean()) > SPARSE_DENSITY:
        currents = spikes @ weight_t
    else:
        rows, inputs = spikes.nonzero(as_tuple=True)
        offsets = torch.zeros(spikes.shape[0], dtype=torch.long, device=spikes.device)
        offsets[1:] = torch.bincount(rows, minlength=spikes.shape[0]).cumsum(0)[:-1]
        currents = F.embedding_bag(inputs, weight_t, offsets, mode="sum")
    return currents + bias if bias is not None else currents


def sum_over_steps(spikes: torch.Tensor) -> torch.Tensor:
    """``spikes.sum(0)`` in the memory order of ``spikes`` (summed into a contiguous result, a
    channels-last view takes ten times longer)."""
    return torch.sum(spikes, 0, out=torch.empty_like(spikes[0]))


def count_and_gate(spikes: torch.Tensor, counts: torch.Tensor, pool: Pool | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Add the spikes ``[T, ...]`` to ``counts`` and pass them through the max-pool gate ``pool``
    (kernel, stride), or pass them all when ``pool`` is None. Returns the passed spikes and counts."""
    if pool is None:
        return spikes, counts + sum_over_steps(spikes)
    return max_pool_gate(spikes, counts, *pool)


def conv2d_integrate_and_fire(spikes: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                              stride: tuple[int, int], padding: tuple[int, int], membrane: torch.Tensor,
                              counts: torch.Tensor, pool: Pool | None = None
                              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`integrate_and_fire` driven by ``conv2d(spikes[t], weight) + bias`` for the 0/1 spikes
    ``[T, N, C, H, W]``, then :func:`count_and_gate`; ``membrane`` and ``counts`` ``[N, O, OH, OW]``.
    Returns the passed spikes ``[T, N, O, PH, PW]``, the counts and the final membrane. Event-driven
    and fused on a CPU (each spike adds one weight column per kernel offset,
    :func:`bridges.cpu_kernels.conv2d_integrate_and_fire`; the results are in channels-last memory,
    and spikes in it are read without a copy); dense on a GPU or when many inputs spike."""
    if spikes.device.type != "cpu" or spikes.numel() == 0 or float(spikes.mean()) > SPARSE_DENSITY:
        currents = F.conv2d(spikes.flatten(0, 1), weight, bias, stride, padding).unflatten(0, spikes.shape[:2])
        out_spikes, membrane = integrate_and_fire(membrane, currents)
        return *count_and_gate(out_spikes, counts, pool), membrane
    from bridges import cpu_kernels

    steps, images = spikes.shape[:2]
    outputs, out_h, out_w = membrane.shape[1:]
    kernel, pool_stride = pool or ((1, 1), (1, 1))
    membrane, counts = _channels_last(membrane, copy=True), _channels_last(counts, copy=True)  # updated in place
    out_spikes = torch.empty(steps, images, *_output_size((out_h, out_w), kernel, pool_stride, (0, 0)), outputs,
                             dtype=spikes.dtype)
    bias = torch.zeros(outputs, dtype=spikes.dtype) if bias is None else bias.detach()
    weight_rows = weight.detach().permute(1, 2, 3, 0).reshape(-1, outputs).contiguous()  # (c, ky, kx): W[:, c, ky, kx]
    _use_torch_threads()
    cpu_kernels.conv2d_integrate_and_fire(
        _channels_last(spikes).numpy(), weight_rows.numpy(), *weight.shape[2:], bias.contiguous().numpy(),
        membrane.numpy(), counts.numpy(), out_spikes.numpy(), *stride, *padding, *kernel, *pool_stride)
    return _channels_first(out_spikes), _channels_first(counts), _channels_first(membrane)


def _channels_last(tensor: torch.Tensor, copy: bool = False) -> torch.Tensor:
    """``[..., C, H, W]`` as a contiguous ``[..., H, W, C]`` tensor (the compiled kernels' layout):
    a view when its memory is already in that order, unless ``copy``."""
    moved = tensor.movedim(-3, -1)
    return moved.clone(memory_format=torch.contiguous_format) if copy else moved.contiguous()


def _channels_first(tensor: torch.Tensor) -> torch.Tensor:
    """The ``[..., C, H, W]`` view of a ``[..., H, W, C]`` tensor."""
    return tensor.movedim(-1, -3)


def _output_size(size: tuple[int, int], kernel: tuple[int, int], stride: tuple[int, int],
                 padding: tuple[int, int]) -> tuple[int, int]:
    """Height and width of a window operation's output (no dilation, floor mode)."""
    return tuple((n + 2 * p - k) // s + 1 for n, k, s, p in zip(size, kernel, stride, padding, strict=True))


def _use_torch_threads() -> None:
    """The compiled kernels use as many threads as torch."""
    import numba

    numba.set_num_threads(min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS))
