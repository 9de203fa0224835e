"""Test-set evaluation shared by every classifier: accuracy, confusion matrix and its plot."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from spikebridge.runs import figure_with_axes, save_figure


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, classes: int = 10) -> np.ndarray:
    """``matrix[true, predicted]`` = number of test images with that pair."""
    matrix = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(labels, dtype=np.int64), np.asarray(predictions, dtype=np.int64)), 1)
    return matrix


def format_confusion_matrix(matrix: np.ndarray) -> str:
    width = max(5, len(str(matrix.max())) + 1)
    header = "true\\pred" + "".join(f"{c:>{width}}" for c in range(matrix.shape[1]))
    rows = [f"{t:>9}" + "".join(f"{v:>{width}}" for v in row) for t, row in enumerate(matrix)]
    return "\n".join([header, *rows])


def plot_confusion_matrix(matrix: np.ndarray, path: Path, title: str) -> None:
    row_share = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    figure, axis = figure_with_axes(figsize=(5.5, 5))
    image = axis.imshow(row_share, cmap="Blues", vmin=0, vmax=1)
    for (true, predicted), count in np.ndenumerate(matrix):
        colour = "white" if row_share[true, predicted] > 0.5 else "black"
        axis.text(predicted, true, str(count), ha="center", va="center", fontsize=7, color=colour)
    axis.set(xlabel="predicted class", ylabel="true class", title=title,
             xticks=range(matrix.shape[1]), yticks=range(matrix.shape[0]))
    figure.colorbar(image, ax=axis, label="share of the true class")
    save_figure(figure, path)
