"""Compiled (numba) CPU kernels of the converted networks' event-driven simulation; the torch
functions of :mod:`bridges.neurons` call them for CPU tensors and compute the same on a GPU.

``conv2d_integrate_and_fire``: integrate-and-fire neurons driven by a convolution of spikes,
one output position at a time, with their max-pool gate. The channels that spiked at each input
position are listed first; an output's current is then its bias plus the weight column
W[:, c, ky, kx] of every listed spike in its window: one vector add per spike and kernel offset,
where a dense convolution does one per output position, input channel and offset. The current
is integrated at once, so no current tensor is written, and only the gated spikes leave.

The max-pool gate (Rueckauer et al. 2017) passes the spike of the unit of each window that has
fired most (the first such unit in row-major order, as ``max_pool2d``). Only a unit that spikes
gains a count, so only it can displace its windows' winners: the winners are found once per call
and then updated per spike. ``max_pool_gate`` applies the same gate to given spikes.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, boundscheck=False)
def _find_winners(plane, winner_y, winner_x, kernel_h, kernel_w, stride_y, stride_x):  # pragma: no cover
    """The unit of each pooling window of ``plane [H, W]`` with the highest count."""
    height, width = plane.shape
    for out_y in range(winner_y.shape[0]):
        for out_x in range(winner_y.shape[1]):
            best_y, best_x = out_y * stride_y, out_x * stride_x
            for y in range(out_y * stride_y, min(out_y * stride_y + kernel_h, height)):
                for x in range(out_x * stride_x, min(out_x * stride_x + kernel_w, width)):
                    if plane[y, x] > plane[best_y, best_x]:
                        best_y, best_x = y, x
            winner_y[out_y, out_x], winner_x[out_y, out_x] = best_y, best_x


@numba.njit(cache=True, boundscheck=False)
def _count_spike(plane, y, x, winner_y, winner_x, kernel_h, kernel_w, stride_y, stride_x):  # pragma: no cover
    """Count a spike of unit (y, x) of ``plane`` and let it displace the winners it now beats."""
    plane[y, x] += 1
    out_h, out_w = winner_y.shape
    for out_y in range(max(0, (y - kernel_h + stride_y) // stride_y), min(out_h, y // stride_y + 1)):
        for out_x in range(max(0, (x - kernel_w + stride_x) // stride_x), min(out_w, x // stride_x + 1)):
            best_y, best_x = winner_y[out_y, out_x], winner_x[out_y, out_x]
            if plane[y, x] > plane[best_y, best_x] or (plane[y, x] == plane[best_y, best_x]
                                                       and (y, x) < (best_y, best_x)):
                winner_y[out_y, out_x], winner_x[out_y, out_x] = y, x


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
    pooled_h, pooled_w = out_spikes.shape[3], out_spikes.shape[4]
    for n in numba.prange(images):
        starts = np.empty(height * width + 1, np.int32)  # spikes of input position p: listed[starts[p]:starts[p + 1]]
        cursor = np.empty(height * width, np.int32)
        listed = np.empty(channels * height * width, np.int32)  # their channels' first weight rows
        rows = np.empty(channels * kernel_h * kernel_w, np.int32)  # weight rows of one output's current
        current = np.empty(outputs, np.float32)
        fired = np.empty((positions, outputs), np.bool_)  # this step's spikes
        winner_y = np.empty((outputs, pooled_h, pooled_w), np.int64)
        winner_x = np.empty((outputs, pooled_h, pooled_w), np.int64)
        for o in range(outputs):
            _find_winners(counts[n, o], winner_y[o], winner_x[o], pool_h, pool_w, pool_stride_y, pool_stride_x)
        for t in range(steps):
            frame = spikes[t, n]
            starts[:] = 0
            for c in range(channels):
                for y in range(height):
                    for x in range(width):
                        if frame[c, y, x] != 0:
                            starts[y * width + x + 1] += 1
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
                for first in range(0, count - 3, 4):  # four rows per pass: a quarter of the stores
                    w0, w1 = weight[rows[first]], weight[rows[first + 1]]
                    w2, w3 = weight[rows[first + 2]], weight[rows[first + 3]]
                    for o in range(outputs):
                        current[o] += (w0[o] + w1[o]) + (w2[o] + w3[o])
                for index in range(count - count % 4, count):
                    column = weight[rows[index]]
                    for o in range(outputs):
                        current[o] += column[o]
                potential = membrane[n, position]
                for o in range(outputs):
                    v = potential[o] + current[o]
                    fired[position, o] = v >= 1.0
                    potential[o] = v - 1.0 if v >= 1.0 else v
                for o in range(outputs):
                    if fired[position, o]:
                        _count_spike(counts[n, o], out_y, out_x, winner_y[o], winner_x[o], pool_h, pool_w,
                                     pool_stride_y, pool_stride_x)
            for o in range(outputs):
                for pooled_y in range(pooled_h):
                    for pooled_x in range(pooled_w):
                        position = winner_y[o, pooled_y, pooled_x] * out_width + winner_x[o, pooled_y, pooled_x]
                        out_spikes[t, n, o, pooled_y, pooled_x] = 1.0 if fired[position, o] else 0.0


@numba.njit(parallel=True, cache=True, boundscheck=False)
def max_pool_gate(spikes, counts, pooled, kernel_h, kernel_w, stride_y, stride_x):  # pragma: no cover
    """spikes ``[T, B, C, H, W]`` (0/1); ``counts [B, C, H, W]`` (spikes so far, updated in place);
    writes ``pooled [T, B, C, OH, OW]``: each window passes the spike of its unit with the most
    spikes including this step."""
    steps, batch, channels, height, width = spikes.shape
    out_h, out_w = pooled.shape[3], pooled.shape[4]
    for b in numba.prange(batch):
        winner_y, winner_x = np.empty((out_h, out_w), np.int64), np.empty((out_h, out_w), np.int64)
        for c in range(channels):
            _find_winners(counts[b, c], winner_y, winner_x, kernel_h, kernel_w, stride_y, stride_x)
            for t in range(steps):
                step_spikes = spikes[t, b, c]
                for y in range(height):
                    for x in range(width):
                        if step_spikes[y, x] != 0:
                            _count_spike(counts[b, c], y, x, winner_y, winner_x, kernel_h, kernel_w, stride_y,
                                         stride_x)
                for out_y in range(out_h):
                    for out_x in range(out_w):
                        pooled[t, b, c, out_y, out_x] = step_spikes[winner_y[out_y, out_x], winner_x[out_y, out_x]]
