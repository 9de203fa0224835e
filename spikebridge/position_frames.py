"""Neuron positions during training (Shader's animation): one snapshot per epoch in the run folder,
drawn as PNG frames and a GIF when training ends.

``positions.npz`` holds ``epoch_<e>_layer_<l>`` arrays ``[neurons, dimension]`` (epoch 0: the
starting positions); it is rewritten atomically with each checkpoint, so a resumed run goes on
adding to it. Frames: ``position_frames/epoch_<e>.png`` and ``positions.gif``; each layer in its
own colour (a large fixed layer, such as Shader's input grid, faint), the first two coordinates.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from torch import nn

from idx_datasets.atomic import atomic_path
from spikebridge.runs import figure_with_axes, save_figure

SNAPSHOTS = "positions.npz"
FRAMES = "position_frames"


def has_positions(model: nn.Module) -> bool:
    return getattr(model, "positions", None) is not None


def read(directory: Path) -> dict[int, list[np.ndarray]]:
    """The snapshots so far: epoch -> per layer ``[neurons, dimension]``."""
    path = Path(directory) / SNAPSHOTS
    if not path.is_file():
        return {}
    snapshots: dict[int, list[np.ndarray]] = {}
    with np.load(path) as saved:
        for name in sorted(saved.files, key=lambda n: tuple(int(part) for part in n.split("_")[1::2])):
            epoch, _ = (int(part) for part in name.split("_")[1::2])
            snapshots.setdefault(epoch, []).append(saved[name])
    return snapshots


def record(directory: Path, model: nn.Module, epoch: int) -> None:
    """Add the model's positions after ``epoch`` (0: before training) to the run's snapshots."""
    snapshots = {epoch_done: layers for epoch_done, layers in read(directory).items() if epoch_done < epoch}
    snapshots[epoch] = [model.positions[index].detach().cpu().numpy() for index in range(len(model.positions))]
    arrays = {f"epoch_{e}_layer_{index}": layer
              for e, layers in snapshots.items() for index, layer in enumerate(layers)}
    with atomic_path(Path(directory) / SNAPSHOTS) as partial, open(partial, "wb") as file:
        np.savez(file, **arrays)


def draw(directory: Path) -> Path:
    """PNG frames of every snapshot, with shared axes, and the GIF of them; returns the GIF's path."""
    from PIL import Image

    directory = Path(directory)
    snapshots = read(directory)
    points = np.concatenate([layer[:, :2] for layers in snapshots.values() for layer in layers])
    low, high = points.min(0) - 0.3, points.max(0) + 0.3
    (directory / FRAMES).mkdir(exist_ok=True)
    paths = []
    first, last = snapshots[min(snapshots)], snapshots[max(snapshots)]
    fixed = [bool((start == end).all()) for start, end in zip(first, last, strict=True)]
    for epoch, layers in snapshots.items():
        figure, axis = figure_with_axes(figsize=(5.5, 5.5))
        for index, layer in enumerate(layers):
            faint = fixed[index] and len(layer) > 100  # a fixed input grid
            axis.scatter(layer[:, 0], layer[:, 1], s=3 if faint else 12, alpha=0.25 if faint else 0.9,
                         label=f"positioned layer {index}{' (fixed)' if fixed[index] else ''}")
        axis.set(xlim=(low[0], high[0]), ylim=(low[1], high[1]), aspect="equal",
                 title=f"neuron positions after epoch {epoch}")
        axis.legend(fontsize=7, loc="upper right")
        paths.append(directory / FRAMES / f"epoch_{epoch:03d}.png")
        save_figure(figure, paths[-1])
    frames = [Image.open(path).convert("RGB") for path in paths]
    gif = directory / "positions.gif"
    with atomic_path(gif) as partial:
        frames[0].save(partial, format="GIF", save_all=True, append_images=frames[1:], duration=500, loop=0)
    return gif
