"""Compiled (numba) CPU kernels of the converted networks' event-driven simulation; the torch
functions of :mod:`bridges.neurons` call them for CPU tensors and compute the same on a GPU.

``conv2d_integrate_and_fire``: integrate-and-fire neurons driven by a convolution of spikes,
one output position at a time, with their max-pool gate. The channels that spiked at each input
position are listed first; an output's current is then its bias plus the weight column
W[:, c, ky, kx] of every listed spike in its window: one vector add per spike and kernel offset,
where a dense convolution does one per output position, input channel and offset. The current
is integrated at once, so no current tensor is written, and only the gated spikes leave.

The max-pool gate (Rueckauer et al. 2017) passes the spike of the unit of each window that has
fired most so far (the first such unit in row-major order, as ``max_pool2d``). The kernels take
spikes, counts and membranes channels-last (``[..., H, W, C]``): the spikes at one position are
listed in one pass, and the gate compares whole rows of channels at a time (:func:`_gate_step`).
``max_pool_gate`` applies the gate to given spikes.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, boundscheck=False)
def _gate_step(counts, fired, gated, kernel_h, kernel_w, stride_y, stride_x):  # pragma: no cover
    """Max-pool gate of one step. ``counts`` and ``fired`` ``[H, W, C]``: spikes so far (this
    step's included) and this step's spikes (0/1). Writes ``gated [PH, PW, C]``: each window
    passes the spike of its unit with the most spikes, the first in row-major order among ties.
    Each unit's key, count * 2K + 2 (K - 1 - its index in the window) + its spike, orders the
    units of a K-unit window in that way, so the winner's spike is the parity of the largest key
    (a plain maximum over each row of channels, which the compiler vectorises; exact while
    count * 2K < 2**24)."""
    height, width, channels = counts.shape
    best = np.empty(channels, np.float32)
    span = np.float32(2 * kernel_h * kernel_w)
    for out_y in range(gated.shape[0]):
        for out_x in range(gated.shape[1]):
            top, left = out_y * stride_y, out_x * stride_x
            best[:] = -1.0
            rank = span
            for y in range(top, min(top + kernel_h, height)):
                for x in range(left, min(left + kernel_w, width)):
                    rank -= np.float32(2.0)
                    unit_counts, unit_fired = counts[y, x], fired[y, x]
                    for c in range(channels):
                        key = unit_counts[c] * span + rank + unit_fired[c]
                        best[c] = key if key > best[c] else best[c]
            window = gated[out_y, out_x]
            for c in range(channels):
                window[c] = np.int32(best[c]) & 1


@numba.njit(parallel=True, cache=True, boundscheck=False)
def conv2d_integrate_and_fire(spikes, weight, kernel_h, kernel_w, bias, membrane, counts, out_spikes, stride_y,
                              stride_x, pad_y, pad_x, pool_h, pool_w, pool_stride_y, pool_stride_x):  # pragma: no cover
    """spikes ``[T, N, H, W, C]`` (nonzero = spike); weight ``[C * KH * KW, O]``, whose row
    (c KH + ky) KW + kx is W[:, c, ky, kx]; bias ``[O]``; membrane and counts (spikes so far)
    ``[N, OH, OW, O]``, both updated in place. Writes the gated spikes ``out_spikes [T, N, PH, PW, O]``
    (a 1 x 1 pool with stride 1 passes every spike). IF with unit threshold, reset by
    subtraction: v += I; spike where v >= 1; v -= spike."""
    steps, images, height, width, channels = spikes.shape
    out_h, out_w, outputs = counts.shape[1:]
    for n in numba.prange(images):
        starts = np.empty(height * width + 1, np.int32)  # spikes at input position p: listed[starts[p]:starts[p + 1]]
        listed = np.empty(channels * height * width, np.int32)  # c KH KW + x of each spike (channel c, column x)
        rows = np.empty(channels * kernel_h * kernel_w, np.int32)  # weight rows of one output's current
        current = np.empty(outputs, np.float32)
        fired = np.empty((out_h, out_w, outputs), out_spikes.dtype)  # this step's spikes
        for t in range(steps):
            frame = spikes[t, n]
            listed_count = 0
            for y in range(height):
                for x in range(width):
                    starts[y * width + x] = listed_count
                    for c in range(channels):
                        if frame[y, x, c] != 0:
                            listed[listed_count] = c * kernel_h * kernel_w + x
                            listed_count += 1
            starts[height * width] = listed_count
            for out_y in range(out_h):
                for out_x in range(out_w):
                    left = out_x * stride_x - pad_x  # the window's first column
                    first_x, end_x = max(left, 0), min(left + kernel_w, width)
                    count = 0
                    for ky in range(kernel_h):  # the window's spikes in one input row are one run of listed
                        y = out_y * stride_y - pad_y + ky
                        if 0 <= y < height and first_x < end_x:
                            shift = ky * kernel_w - left  # row (c KH + ky) KW + x - left of a spike in column x
                            for index in range(starts[y * width + first_x], starts[y * width + end_x]):
                                rows[count] = listed[index] + shift
                                count += 1
                    current[:] = bias
                    first = 0
                    while first + 8 <= count:  # eight rows per pass: an eighth of the loads and stores of current
                        w0, w1 = weight[rows[first]], weight[rows[first + 1]]
                        w2, w3 = weight[rows[first + 2]], weight[rows[first + 3]]
                        w4, w5 = weight[rows[first + 4]], weight[rows[first + 5]]
                        w6, w7 = weight[rows[first + 6]], weight[rows[first + 7]]
                        for o in range(outputs):
                            current[o] += ((w0[o] + w1[o]) + (w2[o] + w3[o])) + ((w4[o] + w5[o]) + (w6[o] + w7[o]))
                        first += 8
                    for index in range(first, count):
                        column = weight[rows[index]]
                        for o in range(outputs):
                            current[o] += column[o]
                    potential, spiked, so_far = membrane[n, out_y, out_x], fired[out_y, out_x], counts[n, out_y, out_x]
                    for o in range(outputs):
                        v = potential[o] + current[o]
                        spike = 1.0 if v >= 1.0 else 0.0
                        potential[o] = v - spike
                        spiked[o] = spike
                        so_far[o] += spike
            _gate_step(counts[n], fired, out_spikes[t, n], pool_h, pool_w, pool_stride_y, pool_stride_x)


@numba.njit(parallel=True, cache=True, boundscheck=False)
def max_pool_gate(spikes, counts, pooled, kernel_h, kernel_w, stride_y, stride_x):  # pragma: no cover
    """spikes ``[T, B, H, W, C]`` (0/1); ``counts [B, H, W, C]`` (spikes so far, updated in place);
    writes ``pooled [T, B, PH, PW, C]``: each window passes the spike of its unit with the most
    spikes including this step."""
    for b in numba.prange(spikes.shape[1]):
        for t in range(spikes.shape[0]):
            counts[b] += spikes[t, b]
            _gate_step(counts[b], spikes[t, b], pooled[t, b], kernel_h, kernel_w, stride_y, stride_x)
