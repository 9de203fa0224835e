"""The vocabulary every conversion shares: its error, the input codings, what one simulation
produces (:class:`spiking.activity.SpikingRun`, shared with the surrogate-trained networks) and
the equivalence report's types, so that the ReLU conversion (:mod:`bridges.conversion`), the log
coding (:mod:`bridges.log_coding`) and the measurement (:mod:`bridges.equivalence`) need not
import each other.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Protocol

import numpy as np
import torch
from torch import nn

from spiking.activity import SpikingRun

INPUT_CODINGS = ("current", "poisson")


class ConversionError(ValueError):
    """The network (or its input) cannot be converted; the message names the layer."""


def check_option_names(options_class: type, options: dict) -> None:
    """Refuse a name in ``options`` that the dataclass ``options_class`` has no field for."""
    known = {option.name for option in fields(options_class)}
    if unknown := sorted(set(options) - known):
        raise ConversionError(f"unknown option {unknown[0]!r}; {options_class.__name__} has {sorted(known)}")


def percentile_value(values: torch.Tensor, percentile: float) -> float:
    """The ``percentile`` (0-100] of all entries of ``values``, by selection (no size limit)."""
    flat = values.flatten()
    if percentile >= 100:
        return float(flat.max())
    k = max(1, min(flat.numel(), round(percentile / 100 * flat.numel())))
    return float(flat.kthvalue(k).values)


class RateCodedNetwork(Protocol):
    """What :func:`bridges.equivalence.measure` reads of a converted ReLU network
    (:class:`bridges.conversion.SpikingNetwork`): rate times ``scales[l]`` estimates layer l's
    activation, which ``analog`` computes."""

    scales: list[float]

    def analog(self, images: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]: ...

    def run(self, images: torch.Tensor, steps: int) -> SpikingRun: ...

    def ann_macs(self) -> float: ...


@dataclass
class Moments:
    """Streaming sums for Pearson correlation and mean absolute error of (x, y) pairs."""

    n: int = 0
    sx: float = 0.0
    sy: float = 0.0
    sxx: float = 0.0
    syy: float = 0.0
    sxy: float = 0.0
    abs_error: float = 0.0

    def add(self, x: torch.Tensor, y: torch.Tensor) -> None:
        x, y = x.double().flatten(), y.double().flatten()
        self.n += x.numel()
        self.sx += float(x.sum())
        self.sy += float(y.sum())
        self.sxx += float((x * x).sum())
        self.syy += float((y * y).sum())
        self.sxy += float((x * y).sum())
        self.abs_error += float((x - y).abs().sum())

    def correlation(self) -> float:
        cov = self.sxy / self.n - self.sx * self.sy / self.n**2
        var_x = self.sxx / self.n - (self.sx / self.n) ** 2
        var_y = self.syy / self.n - (self.sy / self.n) ** 2
        return float(cov / np.sqrt(var_x * var_y)) if var_x > 0 and var_y > 0 else float("nan")

    def mean_abs_error(self) -> float:
        return self.abs_error / self.n


@dataclass
class StepsResult:
    """Everything measured at one T."""

    steps: int
    accuracy: float
    correlation: list[float]  # per spiking layer: rate x lambda against the ANN activation
    mean_abs_error: list[float]  # same, in the activation's units
    first_layer_max_error: float  # max |rate - a / lambda| over neurons with 0 <= a <= lambda, in thresholds
    first_layer_within_one_spike: float  # fraction of those neurons within 1/T
    synaptic_ops: float  # per image
    seconds: float


@dataclass
class EquivalenceReport:
    ann_accuracy: float
    ann_macs: float
    input_ops: float
    layer_names: list[str]
    scales: list[float]
    results: list[StepsResult] = field(default_factory=list)
    quantity: str = "rate x threshold vs ReLU activation"  # what the correlation and MAE compare
    parameters: dict = field(default_factory=dict)  # coding parameters worth keeping (log coding: d_lo, d_hi, r)

    def to_json(self) -> dict:
        return asdict(self)


def spiking_accuracy(snn: nn.Module, images: torch.Tensor, labels: torch.Tensor, steps: int) -> float:
    """Fraction of ``images`` whose class evidence after ``steps`` steps picks the right label."""
    return float((snn(images, steps).argmax(1) == labels).float().mean())
