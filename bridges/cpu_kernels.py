"""Compiled (numba) CPU kernels of the converted networks' event-driven simulation; the torch
functions of :mod:`bridges.neurons` call them for CPU tensors and compute the same on a GPU.

``conv2d_integrate_and_fire``: integrate-and-fire neurons driven by a convolution of spikes,
one output position at a time. The channels that spiked at each input position are listed first;
an output's current is then its bias plus the weight column W[:, c, ky, kx] of every listed
spike in its window: one vector add per spike and kernel offset, where a dense convolution does
one per output position, input channel and offset. The current stays in a small buffer and is
integrated at once, so no [steps, images, outputs, positions] current tensor is ever written.

``max_pool_gate``: the spiking max-pooling of Rueckauer et al. (2017), one pass over the steps,
updating a window's winner only when one of its units spikes.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(parallel=True, cache=True, boundscheck=False)
def conv2d_integrate_and_fire(spikes, weight, bias, membrane, out_spikes, out_width, stride_y, stride_x, pad_y,
                              pad_x):  # pragma: no cover
    """spikes ``[T, N, C, H, W]`` (nonzero = spike), weight ``[C, KH, KW, O]``, bias ``[O]``,
    membrane ``[N, OH * OW, O]`` (updated in place); writes ``out_spikes [T, N, O, OH * OW]``.
    IF with unit threshold and reset by subtraction: v += I; spike where v >= 1; v -= spike."""
    steps, images, channels, height, width = spikes.shape
    _, kernel_h, kernel_w, outputs = weight.shape
    positions = membrane.shape[1]
    for n in numba.prange(images):
        starts = np.empty(height * width + 1, np.int32)  # spikes of input position p: listed[starts[p]:starts[p + 1]]
        cursor = np.empty(height * width, np.int32)
        listed = np.empty(channels * height * width, np.int32)  # their channels
        current = np.empty(outputs, np.float32)
        image_membrane = membrane[n]
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
                            listed[cursor[y * width + x]] = c
                            cursor[y * width + x] += 1
            for position in range(positions):
                out_y = position // out_width
                out_x = position - out_y * out_width
                current[:] = bias
                for ky in range(kernel_h):
                    y = out_y * stride_y - pad_y + ky
                    if y < 0 or y >= height:
                        continue
                    for kx in range(kernel_w):
                        x = out_x * stride_x - pad_x + kx
                        if x < 0 or x >= width:
                            continue
                        for index in range(starts[y * width + x], starts[y * width + x + 1]):
                            column = weight[listed[index], ky, kx]
                            for o in range(outputs):
                                current[o] += column[o]
                potential = image_membrane[position]
                for o in range(outputs):
                    v = potential[o] + current[o]
                    fired = v >= 1.0
                    potential[o] = v - 1.0 if fired else v
                    out_spikes[t, n, o, position] = 1.0 if fired else 0.0


@numba.njit(parallel=True, cache=True, boundscheck=False)
def max_pool_gate(spikes, counts, pooled, kernel_h, kernel_w, stride_y, stride_x):  # pragma: no cover
    """spikes ``[T, B, C, H, W]``; ``counts [B, C, H, W]`` (spikes so far, updated in place);
    writes ``pooled [T, B, C, OH, OW]``: each window passes the spike of its unit with the most
    spikes including this step (the first such unit in row-major order, as ``max_pool2d``).
    Only a unit that spikes gains a count, so only it can displace its windows' winners: the
    winners are found once, then updated per spike."""
    steps, batch, channels, height, width = spikes.shape
    out_h, out_w = pooled.shape[3], pooled.shape[4]
    for b in numba.prange(batch):
        winner_y, winner_x = np.empty((out_h, out_w), np.int64), np.empty((out_h, out_w), np.int64)
        for c in range(channels):
            plane = counts[b, c]
            for out_y in range(out_h):
                for out_x in range(out_w):
                    best_y, best_x = out_y * stride_y, out_x * stride_x
                    for y in range(out_y * stride_y, min(out_y * stride_y + kernel_h, height)):
                        for x in range(out_x * stride_x, min(out_x * stride_x + kernel_w, width)):
                            if plane[y, x] > plane[best_y, best_x]:
                                best_y, best_x = y, x
                    winner_y[out_y, out_x], winner_x[out_y, out_x] = best_y, best_x
            for t in range(steps):
                step_spikes = spikes[t, b, c]
                for y in range(height):
                    for x in range(width):
                        if step_spikes[y, x] == 0:
                            continue
                        plane[y, x] += step_spikes[y, x]
                        for out_y in range(max(0, (y - kernel_h + stride_y) // stride_y),
                                           min(out_h, y // stride_y + 1)):  # the windows holding (y, x)
                            for out_x in range(max(0, (x - kernel_w + stride_x) // stride_x),
                                               min(out_w, x // stride_x + 1)):
                                best_y, best_x = winner_y[out_y, out_x], winner_x[out_y, out_x]
                                if plane[y, x] > plane[best_y, best_x] or (
                                        plane[y, x] == plane[best_y, best_x] and (y, x) < (best_y, best_x)):
                                    winner_y[out_y, out_x], winner_x[out_y, out_x] = y, x
                for out_y in range(out_h):
                    for out_x in range(out_w):
                        pooled[t, b, c, out_y, out_x] = step_spikes[winner_y[out_y, out_x], winner_x[out_y, out_x]]
