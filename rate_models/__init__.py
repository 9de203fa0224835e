"""PyTorch rate networks of the source papers, each with a typed configuration (the models by
name: :mod:`spikebridge.models`)."""

from __future__ import annotations

from rate_models.baselines import CNNConfig, GRUConfig, MLPConfig, RowGRU, build_gupta_naveed_cnn, build_mlp
from rate_models.log_network import LogNetConfig, LogNetwork

__all__ = [
    "CNNConfig", "GRUConfig", "LogNetConfig", "LogNetwork", "MLPConfig", "RowGRU", "build_gupta_naveed_cnn",
    "build_mlp",
]
