"""Compiled (numba) CPU kernels of the converted networks' event-driven simulation; the torch
functions of :mod:`bridges.neurons` call them for CPU tensors and compute the same on a GPU.

``conv2d_integrate_and_fire``: integrate-and-fire neurons driven by a convolution of spikes,
one output position at a time, with their max-pool gate. The channels that spiked at each input
position are listed first; an output's current is then its bias plus the weight column
W[:, c, ky, kx] of every listed spike in its window: one vector add per spike and kernel offset,
where a dense convolution does one per output position, input channel and offset. The current
is integrated at once, so no current tensor is written, and only the gated spikes leave.

The max-pool gate (Rueckauer et al. 2017) passes the spike of the unit of each window that has
fired most so far (the first such unit in row-major order, as ``max_pool2d``). Both kernels keep
spikes and counts position-major (``[H * W, C]``), so that the gate compares whole rows of
channels at a time (:func:`_gate_step`); ``max_pool_gate`` applies it to given spikes.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, boundscheck=False)
def _position_major(planes):  # pragma: no cover
    """``planes [C, H, W]`` as a new ``[H * W, C]`` array."""
    channels, height, width = planes.shape
    rows = np.empty((height * width, channels), planes.dtype)
    for c in range(channels):
        for y in range(height):
            for x in range(width):
                rows[y * width + x, c] = planes[c, y, x]
    return rows


@numba.njit(cache=True, boundscheck=False)
def _write_planes(rows, planes):  # pragma: no cover
    """Write the position-major ``rows [H * W, C]`` into ``planes [C, H, W]``."""
    channels, height, width = planes.shape
    for c in range(channels):
        for y in range(height):
            for x in range(width):
                planes[c, y, x] = rows[y * width + x, c]


@numba.njit(cache=True, boundscheck=False)
def _gate_step(counts, fired, width, gated, kernel_h, kernel_w, stride_y, stride_x):  # pragma: no cover
    """Max-pool gate of one step. ``counts`` and ``fired`` ``[H * W, C]``: spikes so far (this
    step's included) and this step's spikes (0/1). Writes ``gated [C, PH, PW]``: each window
    passes the spike of its unit with the most spikes, the first in row-major order among ties.
    Each unit's key, count * 2K + 2 (K - 1 - its index in the window) + its spike, orders the
    units of a K-unit window in that way, so the winner's spike is the parity of the largest key
    (a plain maximum over each row of channels, which the compiler vectorises; exact while
    count * 2K < 2**24)."""
    height, channels = counts.shape[0] // width, counts.shape[1]
    best = np.empty(channels, np.float32)
    span = np.float32(2 * kernel_h * kernel_w)
    for out_y in range(gated.shape[1]):
        for out_x in range(gated.shape[2]):
            top, left = out_y * stride_y, out_x * stride_x
            best[:] = -1.0
            rank = span
            for y in range(top, min(top + kernel_h, height)):
                for x in range(left, min(left + kernel_w, width)):
                    rank -= np.float32(2.0)
                    unit_counts, unit_fired = counts[y * width + x], fired[y * width + x]
                    for c in range(channels):
                        key = unit_counts[c] * span + rank + unit_fired[c]
                        best[c] = key if key > best[c] else best[c]
            for c in range(channels):
                gated[c, out_y, out_x] = np.int32(best[c]) & 1


@numba.njit(parallel=True, cache=True, boundscheck=False)
def conv2d_integrate_and_fire(spikes, weight, kernel_h, kernel_w, bias, membrane, counts, out_spikes, stride_y,
                              stride_x, pad_y, pad_x, pool_h, pool_w, pool_stride_y, pool_stride_x):  # pragma: no cover
    """spikes ``[T, N, C, H, W]`` (nonzero = spike); weight ``[C * KH * KW, O]``, whose row
    (c KH + ky) KW + kx is W[:, c, ky, kx]; bias ``[O]``; membrane ``[N, OH * OW, O]`` and counts
    ``[N, O, OH, OW]`` (spikes so far), both updated in place. Writes the gated spikes
    ``out_spikes [T, N, O, PH, PW]`` (a 1 x 1 pool with stride 1 passes every spike). IF with unit
    threshold, reset by subtraction: v += I; spike where v >= 1; v -= spike."""
    steps, images, channels, height, width = spikes.shape
    outputs = weight.shape[1]
    out_width = counts.shape[3]
    positions = membrane.shape[1]
    for n in numba.prange(images):
        starts = np.empty(height * width + 1, np.int32)  # spikes of input position p: listed[starts[p]:starts[p + 1]]
        cursor = np.empty(height * width, np.int32)
        listed = np.empty(channels * height * width, np.int32)  # their channels' first weight rows
        rows = np.empty(channels * kernel_h * kernel_w, np.int32)  # weight rows of one output's current
        current = np.empty(outputs, np.float32)
        fired = np.empty((positions, outputs), out_spikes.dtype)  # this step's spikes
        so_far = _position_major(counts[n])
        for t in range(steps):
            frame = spikes[t, n]
            starts[:] = 0
            for c in range(channels):
                for y in range(height):
                    for x in range(width):
                        starts[y * width + x + 1] += frame[c, y, x] != 0
            for p in range(height * width):
                starts[p + 1] += starts[p]
                cursor[p] = starts[p]
            for c in range(channels):
                for y in range(height):
                    for x in range(width):
                        if frame[c, y, x] != 0:
                            listed[cursor[y * width + x]] = c * kernel_h * kernel_w
                            cursor[y * width + x] += 1
            for position in range(positions):
                out_y = position // out_width
                out_x = position - out_y * out_width
                count = 0
                for ky in range(kernel_h):
                    y = out_y * stride_y - pad_y + ky
                    if y < 0 or y >= height:
                        continue
                    for kx in range(kernel_w):
                        x = out_x * stride_x - pad_x + kx
                        if x < 0 or x >= width:
                            continue
                        for index in range(starts[y * width + x], starts[y * width + x + 1]):
                            rows[count] = listed[index] + ky * kernel_w + kx
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
                potential, spiked, spikes_so_far = membrane[n, position], fired[position], so_far[position]
                for o in range(outputs):
                    v = potential[o] + current[o]
                    spike = 1.0 if v >= 1.0 else 0.0
                    potential[o] = v - spike
                    spiked[o] = spike
                    spikes_so_far[o] += spike
            _gate_step(so_far, fired, out_width, out_spikes[t, n], pool_h, pool_w, pool_stride_y, pool_stride_x)
        _write_planes(so_far, counts[n])


@numba.njit(parallel=True, cache=True, boundscheck=False)
def max_pool_gate(spikes, counts, pooled, kernel_h, kernel_w, stride_y, stride_x):  # pragma: no cover
    """spikes ``[T, B, C, H, W]`` (0/1); ``counts [B, C, H, W]`` (spikes so far, updated in place);
    writes ``pooled [T, B, C, OH, OW]``: each window passes the spike of its unit with the most
    spikes including this step."""
    steps, batch, channels, height, width = spikes.shape
    for b in numba.prange(batch):
        so_far = _position_major(counts[b])
        for t in range(steps):
            fired = _position_major(spikes[t, b])
            so_far += fired
            _gate_step(so_far, fired, width, pooled[t, b], kernel_h, kernel_w, stride_y, stride_x)
        _write_planes(so_far, counts[b])
