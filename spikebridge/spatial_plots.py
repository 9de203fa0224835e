"""Figures of a spatial network (Wołczyk et al.): the split layers' neurons top-down and layer by
layer, coloured by task (the paper's Figs 1-2), and the costs and cross-task weight by epoch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from rate_models.spatial import TASKS, layer_positions
from spikebridge.runs import figure_with_axes, save_figure

TASK_COLOURS = ("tab:blue", "tab:orange")
SHOWN_INPUT = 0.1  # the paper's display thresholds: a neuron's |input weight sum|, and a connection's |w|
SHOWN_CONNECTION = 0.01


@torch.no_grad()
def split_positions(network: nn.Module, assignments: list[torch.Tensor], path: Path) -> None:
    """Top-down (all split layers on one plane) and layered (one slice per layer, connections
    drawn) views of the split layers' neurons, coloured by their task."""
    from matplotlib.figure import Figure
    from mpl_toolkits.mplot3d.art3d import Line3DCollection

    layers = network.config.cost_layers
    positions = [layer_positions(network, index + 1).numpy() for index in layers]
    shown = [network.layers[index].weight.sum(1).abs().numpy() > SHOWN_INPUT for index in layers]
    figure = Figure(figsize=(13, 5.5))
    top, layered = figure.add_subplot(1, 2, 1), figure.add_subplot(1, 2, 2, projection="3d")
    markers = ("o", "s", "^", "D")
    for depth, (points, visible, tasks) in enumerate(zip(positions, shown, assignments, strict=True)):
        for task, colour in enumerate(TASK_COLOURS):
            chosen = visible & (tasks.numpy() == task)
            label = f"layer {layers[depth] + 1}, {TASKS[task]}"
            top.scatter(points[chosen, 0], points[chosen, 1], s=14, c=colour, marker=markers[depth % 4], alpha=0.7,
                        label=label)
            layered.scatter(np.full(chosen.sum(), depth), points[chosen, 0], points[chosen, 1], s=8, c=colour)
    segments = []
    for depth in range(1, len(layers)):
        weight = network.layers[layers[depth]].weight.abs().numpy()
        targets, sources = np.nonzero((weight > SHOWN_CONNECTION) & shown[depth][:, None] & shown[depth - 1][None, :])
        segments += [[(depth - 1, *positions[depth - 1][s]), (depth, *positions[depth][t])]
                     for t, s in zip(targets, sources, strict=True)]
    layered.add_collection(Line3DCollection(segments, colors="grey", linewidths=0.3, alpha=0.05))
    top.set(title="top-down: neurons of the split layers", xlabel="x", ylabel="y")
    top.legend(fontsize=6, markerscale=0.8)
    layered.set(title="layer by layer (connections with |w| > 0.01)", xlabel="layer", ylabel="x", zlabel="y",
                xticks=range(len(layers)), xticklabels=[str(index + 1) for index in layers])
    figure.suptitle(f"neurons shown: |input weight sum| > {SHOWN_INPUT}")
    save_figure(figure, path)


def training_costs(history: list[dict[str, float]], path: Path) -> None:
    """The transport and density costs (if any) and the cross-task share of |w| against epoch."""
    measures = [name for name in ("transport_cost", "density_cost", "cross_task_weight_share") if name in history[0]]
    figure, axes = figure_with_axes(1, len(measures), squeeze=False, figsize=(4.2 * len(measures), 3.3))
    epochs = [record["epoch"] for record in history]
    for axis, name in zip(axes[0], measures, strict=True):
        axis.plot(epochs, [record[name] for record in history], marker="o", markersize=3)
        axis.set(title=name.replace("_", " "), xlabel="epoch")
    figure.tight_layout()
    save_figure(figure, path)
