"""Figures of a Diehl & Cook run: receptive fields, theta, training accuracy, confusion, rasters."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from spikebridge.evaluation import plot_confusion_matrix
from spikebridge.runs import figure_with_axes, save_figure
from spiking.diehl_cook import DiehlCookParameters, NetworkState, Presentations

RASTER_SLOTS = 6


def receptive_field_grid(weights: np.ndarray) -> np.ndarray:
    """Tile each neuron's 28x28 incoming weights ``[784, N]`` into one image (blank-padded)."""
    neurons = weights.shape[1]
    side = math.ceil(math.sqrt(neurons))
    grid = np.full((side * 28, side * 28), np.nan)
    for neuron in range(neurons):
        row, column = divmod(neuron, side)
        grid[row * 28 : (row + 1) * 28, column * 28 : (column + 1) * 28] = weights[:, neuron].reshape(28, 28)
    return grid


def save_run_plots(directory: Path, state: NetworkState, progress, matrix: np.ndarray,
                   first_block: Presentations, params: DiehlCookParameters) -> None:
    neurons = state.n_excitatory

    figure, axis = figure_with_axes(figsize=(8, 8))
    image = axis.imshow(receptive_field_grid(state.weights), cmap="hot_r", vmin=0)
    axis.set(title=f"receptive fields of the {neurons} excitatory neurons (input weights)", xticks=[], yticks=[])
    figure.colorbar(image, ax=axis, fraction=0.046)
    save_figure(figure, directory / "receptive_fields.png")

    figure, axis = figure_with_axes(figsize=(5, 3.5))
    axis.hist(state.theta_mV, bins=30)
    axis.set(xlabel="adaptive threshold θ (mV)", ylabel="neurons", title="θ after training")
    save_figure(figure, directory / "theta_histogram.png")

    history = np.asarray(progress.accuracy_history or [[0, np.nan]], dtype=float)
    figure, axis = figure_with_axes(figsize=(5, 3.5))
    axis.plot(history[:, 0], 100 * history[:, 1], marker="o")
    axis.set(xlabel="training images", ylabel="accuracy (%)",
             title="running training accuracy (labels from the previous window)")
    save_figure(figure, directory / "training_accuracy.png")

    accuracy = np.trace(matrix) / matrix.sum()
    plot_confusion_matrix(matrix, directory / "confusion_matrix.png", f"Diehl & Cook {neurons}: {100 * accuracy:.2f} %")

    slot_ms = params.slot_ms
    shown = first_block.spike_times_ms < RASTER_SLOTS * slot_ms
    figure, axis = figure_with_axes(figsize=(9, 3.5))
    axis.scatter(first_block.spike_times_ms[shown], first_block.spike_neurons[shown], s=4, color="black")
    for slot in range(RASTER_SLOTS):
        axis.axvspan(slot * slot_ms, slot * slot_ms + params.presentation_ms, color="tab:blue", alpha=0.1)
    axis.set(xlabel="time (ms); shaded: 350 ms presentations", ylabel="excitatory neuron",
             title="spikes of the first test presentations (frozen network)", xlim=(0, RASTER_SLOTS * slot_ms))
    save_figure(figure, directory / "spike_raster.png")
