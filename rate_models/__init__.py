"""PyTorch rate networks of the source papers, each with a typed configuration.

``REGISTRY`` maps a model name to its configuration class and constructor; :func:`build`
makes a model from a name and configuration overrides.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

from torch import nn

from rate_models.baselines import CNNConfig, GRUConfig, MLPConfig, RowGRU, build_gupta_naveed_cnn, build_mlp
from rate_models.log_network import LogNetConfig, LogNetwork


@dataclass(frozen=True)
class ModelEntry:
    config_class: type
    constructor: Callable[..., nn.Module]
    description: str


REGISTRY: dict[str, ModelEntry] = {
    "mlp": ModelEntry(MLPConfig, build_mlp, "ReLU MLP 784-1200-1200-10 (Diehl et al. 2015)"),
    "cnn": ModelEntry(CNNConfig, build_gupta_naveed_cnn, "CNN of Gupta & Naveed, table 1 row 1"),
    "gru": ModelEntry(GRUConfig, RowGRU, "GRU(128) over image rows, Gupta & Naveed"),
    "lognet": ModelEntry(LogNetConfig, LogNetwork, "log network x3 = w2 log(w1 x1 / N) (Thériault & François 2021)"),
}


def make_config(name: str, overrides: dict[str, Any] | None = None):
    """The configuration of model ``name`` with ``overrides`` (lists become tuples)."""
    if name not in REGISTRY:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(REGISTRY)}")
    config_class = REGISTRY[name].config_class
    known = {field.name for field in fields(config_class)}
    overrides = overrides or {}
    if unknown := sorted(set(overrides) - known):
        raise ValueError(f"model {name!r} has no setting {unknown[0]!r}; it has {sorted(known)}")
    return config_class(**{k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()})


def build(name: str, overrides: dict[str, Any] | None = None) -> nn.Module:
    """A freshly initialised model ``name`` (``mlp``, ``cnn``, ``gru``, ``lognet``)."""
    config = make_config(name, overrides)
    return REGISTRY[name].constructor(config)


__all__ = [
    "CNNConfig", "GRUConfig", "LogNetConfig", "LogNetwork", "MLPConfig", "REGISTRY", "RowGRU", "build", "build_mlp",
    "build_gupta_naveed_cnn", "make_config",
]
