"""Figures of the neural mesh (Papakipos & Beck): the grid's energy or spikes step by step, total
energy against step, and spike rasters."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from spikebridge.runs import figure_with_axes, save_figure


def grid_frames(frames: np.ndarray, row_labels: list[str], title: str, path: Path, vmin: float = 0.0,
                vmax: float = 1.0, cmap: str = "magma") -> None:
    """One row per image of its grid at every step, ``frames [rows, T, H, W]`` (the paper's Figs
    8-9: black is 0, yellow is 1)."""
    rows, steps = frames.shape[:2]
    figure, axes = figure_with_axes(rows, steps, squeeze=False, figsize=(1.1 * steps + 1, 1.2 * rows + 0.6))
    for row in range(rows):
        for step in range(steps):
            axis = axes[row, step]
            image = axis.imshow(frames[row, step], cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
            axis.set(xticks=[], yticks=[])
            if row == 0:
                axis.set_title(f"step {step + 1}", fontsize=8)
        axes[row, 0].set_ylabel(row_labels[row], fontsize=8)
    figure.colorbar(image, ax=axes.ravel().tolist(), fraction=0.02)
    figure.suptitle(title)
    save_figure(figure, path)


def energy_curves(panels: dict[str, dict[str, np.ndarray]], ylabel: str, path: Path) -> None:
    """One panel per entry of ``panels`` (title -> {line label -> values per step}), two per row."""
    columns = min(2, len(panels))
    rows = -(-len(panels) // columns)
    figure, axes = figure_with_axes(rows, columns, squeeze=False, figsize=(5.5 * columns, 3.6 * rows))
    for axis, (title, lines) in zip(axes.ravel(), panels.items(), strict=False):
        for label, values in lines.items():
            axis.plot(np.arange(1, len(values) + 1), values, marker="o", markersize=3, label=label)
        axis.set(title=title, xlabel="step", ylabel=ylabel)
        axis.legend(fontsize=7)
    figure.tight_layout()
    save_figure(figure, path)


def spike_raster(spikes: np.ndarray, row_labels: list[str], title: str, path: Path) -> None:
    """Spike rasters, one panel per image: ``spikes [images, T, N]``, neurons against step."""
    images = len(spikes)
    figure, axes = figure_with_axes(1, images, squeeze=False, figsize=(3.4 * images, 3.6))
    for axis, train, label in zip(axes[0], spikes, row_labels, strict=True):
        steps, neurons = np.nonzero(train)
        axis.scatter(steps + 1, neurons, s=4, marker="|", color="black")
        axis.set(title=label, xlabel="step", ylabel="mesh neuron (row-major)", xlim=(0.5, train.shape[0] + 0.5),
                 ylim=(-0.5, train.shape[1] - 0.5))
    figure.suptitle(title)
    figure.tight_layout()
    save_figure(figure, path)
