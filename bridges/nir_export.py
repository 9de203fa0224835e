"""Export a converted network to NIR, the Neuromorphic Intermediate Representation
(Pedersen et al. 2024, ``pip install nir``), which other simulators and neuromorphic platforms read.

Nodes: ``input`` -> per layer its ops (``Flatten``, ``Affine``, ``Conv2d``, ``AvgPool2d``) and an
``IF`` node (r = 1, threshold 1 per neuron) -> the output layer's ops and an ``I`` integrator ->
``output``. NIR 1.0's IF resets to ``v_reset`` rather than by subtraction; the IF nodes' metadata
records the simulator's semantics (``reset: subtract``, ``v_init``, ``dt: 1``) so a reader can
follow them. Max-pool gates have no NIR node, so networks with MaxPool2d are refused.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn.modules.utils import _pair

from bridges.common import ConversionError
from bridges.conversion import SpikingNetwork


def _op_node(op: nn.Module, input_shape: tuple[int, ...]):
    import nir

    if isinstance(op, nn.Flatten):
        return nir.Flatten(input_type={"input": np.array(input_shape)}, start_dim=op.start_dim - 1)
    if isinstance(op, nn.Linear):
        bias = op.bias.detach().numpy() if op.bias is not None else np.zeros(op.out_features, dtype=np.float32)
        return nir.Affine(weight=op.weight.detach().numpy(), bias=bias)
    if isinstance(op, nn.Conv2d):
        bias = op.bias.detach().numpy() if op.bias is not None else np.zeros(op.out_channels, dtype=np.float32)
        return nir.Conv2d(input_shape=tuple(input_shape[1:]), weight=op.weight.detach().numpy(), stride=op.stride,
                          padding=op.padding, dilation=op.dilation, groups=op.groups, bias=bias)
    if isinstance(op, nn.AvgPool2d):
        return nir.AvgPool2d(kernel_size=np.array(_pair(op.kernel_size)),
                             stride=np.array(_pair(op.stride or op.kernel_size)), padding=np.array(_pair(op.padding)))
    raise ConversionError(f"{type(op).__name__} has no NIR node")


def to_nir(snn: SpikingNetwork):
    """The network as a ``nir.NIRGraph``."""
    import nir

    if any(pool is not None for pool in snn.pools):
        raise ConversionError("NIR has no node for the spiking max-pool gate; export networks without MaxPool2d")
    nodes, edges, previous = {"input": nir.Input(input_type={"input": np.array(snn.input_shape)})}, [], "input"
    signal = torch.zeros(1, *snn.input_shape)
    for index, stack in enumerate(snn.stacks):
        for position, op in enumerate(stack):
            name = f"layer{index + 1}_{position}_{type(op).__name__.lower()}"
            nodes[name] = _op_node(op, tuple(signal.shape[1:]))
            edges.append((previous, name))
            previous = name
            with torch.no_grad():
                signal = op(signal)
        shape = signal.shape[1:]
        hidden = index < len(snn.stacks) - 1
        name = f"layer{index + 1}_neurons" if hidden else "readout"
        ones = np.ones(tuple(shape), dtype=np.float32)
        if hidden:
            nodes[name] = nir.IF(r=ones, v_threshold=ones, v_reset=np.zeros_like(ones), metadata={
                "reset": "subtract", "v_init": snn.options.v_init, "dt": 1.0, "scale": snn.scales[index]})
        else:
            nodes[name] = nir.I(r=ones, metadata={"readout": "mean input current over the T steps"})
        edges.append((previous, name))
        previous = name
    nodes["output"] = nir.Output(output_type={"output": np.array(tuple(signal.shape[1:]))})
    edges.append((previous, "output"))
    return nir.NIRGraph(nodes=nodes, edges=edges)


def export_nir(snn: SpikingNetwork, path: Path) -> None:
    """Write the network to an NIR (HDF5) file, atomically."""
    import nir

    from idx_datasets.atomic import atomic_path

    with atomic_path(Path(path)) as partial:
        nir.write(str(partial), to_nir(snn))
