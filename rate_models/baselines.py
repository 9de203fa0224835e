"""The ReLU and recurrent baselines of Gupta & Naveed, "How close are ANNs to the brain?".

All take images as ``float [B, 1, 28, 28]`` with pixels in [0, 1] and return class logits
``[B, 10]``. The MLP and CNN are plain ``nn.Sequential`` stacks of standard layers so that any
tool (including :mod:`bridges`) can walk and convert them.

- MLP 784-1200-1200-10 with ReLU: the network Diehl et al. (2015, "Fast-classifying,
  high-accuracy spiking deep networks through weight and threshold balancing") converted.
- CNN, Gupta & Naveed table 1 row 1 (99.50 %): Conv3x3(32)-Conv5x5(128)-MaxPool2-Conv3x3(128)-
  MaxPool2-Drop0.2-Dense128-Drop0.3-Dense10, 'valid' padding as in Keras' default.
- GRU(128)-Dense64-Dense10 reading the 28 image rows as 28 time steps (Gupta & Naveed table 2
  row 3, 98.99 %).

The MLP and CNN take ``activation="qcfs"`` to train with the quantised clipped ReLU of
:mod:`rate_models.quantised`, which converts to spikes without loss at T = ``levels`` steps.

The feed-forward models are built as plain ``nn.Sequential`` (slicing and converters work on
them as on any user network); the configuration lives in the run folder, not on the module.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from rate_models.quantised import QCFS

IMAGE_SIDE = 28
CLASSES = 10
ACTIVATIONS = ("relu", "qcfs")


def hidden_activation(name: str, levels: int) -> nn.Module:
    """``relu``, or ``qcfs`` (quantised clipped ReLU with ``levels`` steps, for conversion at T = levels)."""
    if name not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {name!r}")
    return nn.ReLU() if name == "relu" else QCFS(levels)


@dataclass(frozen=True)
class MLPConfig:
    widths: tuple[int, ...] = (IMAGE_SIDE * IMAGE_SIDE, 1200, 1200, CLASSES)
    dropout: float = 0.2
    bias: bool = True
    activation: str = "relu"  # or "qcfs"
    levels: int = 8  # QCFS quantisation levels


def build_mlp(config: MLPConfig = MLPConfig()) -> nn.Sequential:
    """Flatten, then Linear-ReLU-Dropout per hidden layer, then a Linear readout."""
    if len(config.widths) < 2 or config.widths[0] != IMAGE_SIDE * IMAGE_SIDE:
        raise ValueError(f"MLP widths must start with 784 and have an output layer, got {config.widths}")
    layers: list[nn.Module] = [nn.Flatten()]
    for fan_in, fan_out in zip(config.widths[:-2], config.widths[1:-1], strict=True):
        layers += [nn.Linear(fan_in, fan_out, bias=config.bias), hidden_activation(config.activation, config.levels),
                   nn.Dropout(config.dropout)]
    layers.append(nn.Linear(config.widths[-2], config.widths[-1], bias=config.bias))
    return nn.Sequential(*layers)


@dataclass(frozen=True)
class CNNConfig:
    channels: tuple[int, int, int] = (32, 128, 128)
    dense: int = 128
    dropout_conv: float = 0.2
    dropout_dense: float = 0.3
    activation: str = "relu"  # or "qcfs"
    levels: int = 8  # QCFS quantisation levels


def build_gupta_naveed_cnn(config: CNNConfig = CNNConfig()) -> nn.Sequential:
    """Gupta & Naveed's best single CNN (table 1, row 1); 28 -> 26 -> 22 -> 11 -> 9 -> 4 pixels."""
    c1, c2, c3 = config.channels

    def activation() -> nn.Module:
        return hidden_activation(config.activation, config.levels)

    return nn.Sequential(
        nn.Conv2d(1, c1, kernel_size=3),
        activation(),
        nn.Conv2d(c1, c2, kernel_size=5),
        activation(),
        nn.MaxPool2d(2),
        nn.Conv2d(c2, c3, kernel_size=3),
        activation(),
        nn.MaxPool2d(2),
        nn.Dropout(config.dropout_conv),
        nn.Flatten(),
        nn.Linear(c3 * 4 * 4, config.dense),
        activation(),
        nn.Dropout(config.dropout_dense),
        nn.Linear(config.dense, CLASSES),
    )


@dataclass(frozen=True)
class GRUConfig:
    hidden: int = 128
    dense: int = 64


class RowGRU(nn.Module):
    """GRU over image rows (28 steps of 28 pixels); the last hidden state feeds Dense64-ReLU-Dense10."""

    def __init__(self, config: GRUConfig = GRUConfig()):
        super().__init__()
        self.config = config
        self.gru = nn.GRU(IMAGE_SIDE, config.hidden, batch_first=True)
        self.readout = nn.Sequential(
            nn.Linear(config.hidden, config.dense), nn.ReLU(), nn.Linear(config.dense, CLASSES)
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        rows = images.reshape(images.shape[0], IMAGE_SIDE, IMAGE_SIDE)
        _, last_hidden = self.gru(rows)
        return self.readout(last_hidden[-1])
