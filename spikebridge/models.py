"""Every model the toolkit trains, by name: its configuration class, constructor, kind (a rate
network, or a spiking network trained directly) and default loss.

The one training loop (:mod:`spikebridge.training`), ``spikebridge train NAME``, sweeps and the
compare table find models here, so a new model, rate or spiking, is one entry of :data:`MODELS`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

from torch import nn

from rate_models.baselines import CNNConfig, GRUConfig, MLPConfig, RowGRU, build_gupta_naveed_cnn, build_mlp
from rate_models.log_network import LogNetConfig, LogNetwork
from rate_models.mesh import MeshConfig, NeuralMesh, OneLayerConfig, build_one_layer
from rate_models.positional import PositionalConfig, PositionalNetwork, VanillaConfig
from rate_models.spatial import SpatialConfig, SpatialNetwork, SpatialRegularConfig
from spiking.mesh import SpikingMesh, SpikingMeshConfig
from spiking.positional import SpikingPositional, SpikingPositionalConfig
from spiking.spatial import SpikingSpatial, SpikingSpatialConfig
from spiking.surrogate_models import (
    SpikingCNNConfig,
    SpikingFeedForward,
    SpikingMLPConfig,
    SpikingRowReader,
    SpikingRowReaderConfig,
)

KINDS = ("rate", "spiking")


@dataclass(frozen=True)
class ModelEntry:
    """A model: ``constructor(config_class(...))`` builds it; ``loss`` names its default loss
    (a key of :data:`spikebridge.training.LOSSES`)."""

    config_class: type
    constructor: Callable[[Any], nn.Module]
    description: str
    kind: str = "rate"
    loss: str = "cross_entropy"

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")


MODELS: dict[str, ModelEntry] = {
    "mlp": ModelEntry(MLPConfig, build_mlp, "ReLU MLP 784-1200-1200-10 (Diehl et al. 2015)"),
    "cnn": ModelEntry(CNNConfig, build_gupta_naveed_cnn, "CNN of Gupta & Naveed, table 1 row 1"),
    "gru": ModelEntry(GRUConfig, RowGRU, "GRU(128) over image rows, Gupta & Naveed"),
    "lognet": ModelEntry(LogNetConfig, LogNetwork, "log network x3 = w2 log(w1 x1 / N) (Thériault & François 2021)"),
    "snn-mlp": ModelEntry(SpikingMLPConfig, SpikingFeedForward, "the MLP with LIF neurons, trained with surrogate "
                          "gradients", kind="spiking", loss="ce_rate"),
    "snn-cnn": ModelEntry(SpikingCNNConfig, SpikingFeedForward, "the CNN with LIF neurons, trained with surrogate "
                          "gradients", kind="spiking", loss="ce_rate"),
    # ce_count: the spike counts over all rows, since no step before the last row can know the class
    "snn-gru": ModelEntry(SpikingRowReaderConfig, SpikingRowReader, "recurrent LIF layer (RLeaky) reading one row "
                          "per step, trained with surrogate gradients", kind="spiking", loss="ce_count"),
    "mesh": ModelEntry(MeshConfig, NeuralMesh, "neural mesh: energy moves between neighbours on a torus "
                       "(Papakipos & Beck)"),
    "one-layer": ModelEntry(OneLayerConfig, build_one_layer, "one hidden layer, the net a neural mesh with zero "
                            "weights computes (Papakipos & Beck's baseline)"),
    "snn-mesh": ModelEntry(SpikingMeshConfig, SpikingMesh, "the neural mesh with LIF neurons whose spikes carry "
                           "the energy, trained with surrogate gradients", kind="spiking", loss="ce_membrane"),
    "positional": ModelEntry(PositionalConfig, PositionalNetwork, "swish net whose neurons have trained positions, "
                             "effective weight b(d) w (Shader)"),
    "vanilla": ModelEntry(VanillaConfig, PositionalNetwork, "the positional net's plain twin: same sizes, swish, "
                          "no positions"),
    "snn-positional": ModelEntry(SpikingPositionalConfig, SpikingPositional, "the positional net with LIF neurons, "
                                 "trained with surrogate gradients", kind="spiking", loss="ce_membrane"),
    "spatial": ModelEntry(SpatialConfig, SpatialNetwork, "sigmoid net with neuron positions, transport and density "
                          "costs, two task heads (Wołczyk et al.)", loss="double_cross_entropy"),
    "spatial-regular": ModelEntry(SpatialRegularConfig, SpatialNetwork, "the spatial net's regular twin: no "
                                  "positions, no costs", loss="double_cross_entropy"),
    "snn-spatial": ModelEntry(SpikingSpatialConfig, SpikingSpatial, "the spatial net with LIF neurons, trained "
                              "with surrogate gradients (spatial=false: its regular twin)", kind="spiking",
                              loss="double_ce_membrane"),
}


def entry(name: str) -> ModelEntry:
    """The entry of model ``name``; an unknown name is refused with the known ones."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(MODELS)}")
    return MODELS[name]


def make_config(name: str, overrides: dict[str, Any] | None = None):
    """The configuration of model ``name`` with ``overrides`` (lists become tuples)."""
    config_class = entry(name).config_class
    known = {field.name for field in fields(config_class)}
    overrides = overrides or {}
    if unknown := sorted(set(overrides) - known):
        raise ValueError(f"model {name!r} has no setting {unknown[0]!r}; it has {sorted(known)}")
    return config_class(**{k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()})


def build(name: str, overrides: dict[str, Any] | None = None) -> nn.Module:
    """A freshly initialised model ``name`` with its configuration's ``overrides``."""
    return entry(name).constructor(make_config(name, overrides))
