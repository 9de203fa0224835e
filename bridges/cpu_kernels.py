"""Compiled (numba) CPU kernels of the converted networks' event-driven simulation; the torch
functions of :mod:`bridges.neurons` call them for CPU tensors and compute the same on a GPU.

``scatter_conv2d``: a spike of input channel c at (y, x) adds the weight column W[:, c, ky, kx]
to the output position (oy, ox) with oy * stride - padding + ky = y (likewise along x), for
every kernel offset that lands inside the output. The work is one vector add per spike and
offset, where a dense convolution does one per output position, input channel and offset.

``max_pool_gate``: the spiking max-pooling of Rueckauer et al. (2017), one pass over the steps.
"""

from __future__ import annotations

import numba


@numba.njit(parallel=True, cache=True, boundscheck=False)
def scatter_conv2d(spikes, weight, bias, out, out_width, stride_y, stride_x, pad_y, pad_x):  # pragma: no cover
    """spikes ``[N, C, H, W]`` (nonzero = spike), weight ``[C, KH, KW, O]``, bias ``[O]``;
    writes ``out [N, OH * OW, O]``."""
    images, channels, height, width = spikes.shape
    _, kernel_h, kernel_w, outputs = weight.shape
    out_height = out.shape[1] // out_width
    for n in numba.prange(images):
        image_out = out[n]
        for position in range(image_out.shape[0]):
            image_out[position, :] = bias
        for c in range(channels):
            for y in range(height):
                for x in range(width):
                    if spikes[n, c, y, x] == 0:
                        continue
                    for ky in range(kernel_h):
                        shifted_y = y + pad_y - ky
                        if shifted_y < 0 or shifted_y % stride_y != 0 or shifted_y // stride_y >= out_height:
                            continue
                        for kx in range(kernel_w):
                            shifted_x = x + pad_x - kx
                            if shifted_x < 0 or shifted_x % stride_x != 0 or shifted_x // stride_x >= out_width:
                                continue
                            target = image_out[(shifted_y // stride_y) * out_width + shifted_x // stride_x]
                            column = weight[c, ky, kx]
                            for o in range(outputs):
                                target[o] += column[o]


@numba.njit(parallel=True, cache=True, boundscheck=False)
def max_pool_gate(spikes, counts, pooled, kernel_h, kernel_w, stride_y, stride_x):  # pragma: no cover
    """spikes ``[T, B, C, H, W]``; ``counts [B, C, H, W]`` (spikes so far, updated in place);
    writes ``pooled [T, B, C, OH, OW]``: each window passes the spike of its unit with the most
    spikes including this step (the first such unit in row-major order, as ``max_pool2d``)."""
    steps, batch, channels, height, width = spikes.shape
    out_h, out_w = pooled.shape[3], pooled.shape[4]
    for b in numba.prange(batch):
        for c in range(channels):
            plane = counts[b, c]
            for t in range(steps):
                step_spikes = spikes[t, b, c]
                plane += step_spikes
                for oy in range(out_h):
                    for ox in range(out_w):
                        best_y, best_x = oy * stride_y, ox * stride_x
                        for y in range(oy * stride_y, min(oy * stride_y + kernel_h, height)):
                            for x in range(ox * stride_x, min(ox * stride_x + kernel_w, width)):
                                if plane[y, x] > plane[best_y, best_x]:
                                    best_y, best_x = y, x
                        pooled[t, b, c, oy, ox] = step_spikes[best_y, best_x]
