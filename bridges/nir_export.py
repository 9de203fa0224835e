"""Export spiking networks to NIR, the Neuromorphic Intermediate Representation (Pedersen et al.
2024, ``pip install nir``), which other simulators and neuromorphic platforms read: converted
networks (:class:`bridges.conversion.SpikingNetwork`) and feed-forward networks trained with
surrogate gradients (:class:`spiking.surrogate_models.SpikingFeedForward`).

Nodes: ``input`` -> per layer its ops (``Flatten``, ``Affine``, ``Conv2d``, ``AvgPool2d``) and its
neurons -> the output layer's ops -> ``output``. A converted network's neurons are ``IF`` nodes
(r = 1, threshold 1); a trained network's are ``LIF`` nodes with NIR's time step dt = 1e-4 s
(the convention of snntorch's exporter): tau = dt / (1 - beta), r = tau / dt, v_leak = 0, so that
one Euler step is v <- beta v + I. Networks whose readout is a current (a converted network's,
or a trained one's membrane readout) end in the output layer's ``Affine``: the graph's output
at each step is that current, and the class evidence is its mean over the T steps. A count
readout ends in ``LIF`` neurons whose spikes, summed over the steps, are the class scores.

A leading Flatten becomes a flat input (``[784]`` for MNIST): readers feed ``images.flatten(1)``.
NIR 1.0 neurons reset to ``v_reset`` and start at 0. A trained network with ``reset="zero"`` is
exactly that; reset by subtraction and a converted network's initial membrane ``v_init`` are
written into each neuron node's metadata (``reset``, ``v_init``) for a reader to follow (the
README shows how, for snntorch). Max-pool has no NIR node: networks with MaxPool2d are refused.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn.modules.utils import _pair

from bridges.common import ConversionError
from bridges.conversion import SpikingNetwork
from spiking.surrogate_models import LIFLayer, SpikingFeedForward

NIR_DT = 1e-4  # seconds per step: snntorch's exporter and importer assume it
NeuronNode = Callable[[tuple[int, ...]], object]  # the neurons' NIR node, given their shape


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


def _graph(input_shape: tuple[int, ...], layers: list[tuple[nn.Sequential, NeuronNode | None]], metadata: dict):
    """The chain ``input -> (ops, neurons) per layer -> output`` as a ``nir.NIRGraph``."""
    import nir

    ops = [[op for op in stack if not isinstance(op, nn.Dropout)] for stack, _ in layers]
    if ops[0] and isinstance(ops[0][0], nn.Flatten):  # a flat input instead (snntorch's importer misreads Flatten)
        ops[0], input_shape = ops[0][1:], (int(np.prod(input_shape)),)
    nodes, edges, previous = {"input": nir.Input(input_type={"input": np.array(input_shape)})}, [], "input"
    signal = torch.zeros(1, *input_shape)
    for index, ((_, neurons), stack_ops) in enumerate(zip(layers, ops, strict=True)):
        for position, op in enumerate(stack_ops):
            name = f"layer{index + 1}_{position}_{type(op).__name__.lower()}"
            nodes[name] = _op_node(op, tuple(signal.shape[1:]))
            edges.append((previous, name))
            previous = name
            with torch.no_grad():
                signal = op(signal)
        if neurons is not None:
            name = f"layer{index + 1}_neurons"
            nodes[name] = neurons(tuple(signal.shape[1:]))
            edges.append((previous, name))
            previous = name
    nodes["output"] = nir.Output(output_type={"output": np.array(tuple(signal.shape[1:]))})
    edges.append((previous, "output"))
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=metadata)


def _integrate_and_fire(snn: SpikingNetwork, layer: int) -> NeuronNode:
    import nir

    def node(shape: tuple[int, ...]):
        ones = np.ones(shape, dtype=np.float32)
        return nir.IF(r=ones, v_threshold=ones, v_reset=np.zeros_like(ones), metadata={
            "reset": "subtract", "v_init": snn.options.v_init, "scale": snn.scales[layer]})

    return node


def _leaky(layer: LIFLayer) -> NeuronNode:
    import nir

    def node(shape: tuple[int, ...]):
        beta = np.broadcast_to(torch.as_tensor(layer.beta).detach().clamp(0, 1).numpy(), shape).astype(np.float64)
        threshold = float(torch.as_tensor(layer.threshold))
        if (beta >= 1).any():
            raise ConversionError("a neuron with beta = 1 has no NIR LIF time constant; export it as IF")
        tau = NIR_DT / (1 - beta)
        return nir.LIF(tau=tau, r=tau / NIR_DT, v_leak=np.zeros(shape), v_threshold=np.full(shape, threshold),
                       v_reset=np.zeros(shape), metadata={"reset": layer.reset, "v_init": 0.0})

    return node


def to_nir(network: SpikingNetwork | SpikingFeedForward):
    """The network as a ``nir.NIRGraph``."""
    if any(not isinstance(pool, nn.Identity | type(None)) for pool in network.pools):
        raise ConversionError("NIR has no node for max-pooling; export networks without MaxPool2d")
    if isinstance(network, SpikingNetwork):
        neurons = [_integrate_and_fire(network, index) for index in range(len(network.stacks) - 1)]
        return _graph(network.input_shape, list(zip(network.stacks, [*neurons, None], strict=True)),
                      {"source": "spikebridge converted network", "readout": "mean output current over the steps"})
    if isinstance(network, SpikingFeedForward):
        neurons = [_leaky(layer) for layer in network.neurons]  # the output's too, for a count readout
        neurons += [None] * (len(network.stacks) - len(neurons))
        readout = "spike count over the steps" if network.output_neurons is not None \
            else "mean output current over the steps"
        return _graph(network.input_shape, list(zip(network.stacks, neurons, strict=True)),
                      {"source": "spikebridge surrogate-trained network", "readout": readout,
                       "steps": network.config.steps, "input_coding": network.config.input_coding})
    raise ConversionError(f"cannot export {type(network).__name__}: a converted or a surrogate-trained "
                          "feed-forward network exports")


def export_nir(network: SpikingNetwork | SpikingFeedForward, path: Path) -> None:
    """Write the network to an NIR (HDF5) file, atomically."""
    import nir

    from idx_datasets.atomic import atomic_path

    with atomic_path(Path(path)) as partial:
        nir.write(str(partial), to_nir(network))


def snntorch_from_nir(graph) -> nn.Module:
    """snntorch's own reader, ``snntorch.import_from_nir(graph)``, with each neuron whose metadata
    says it resets by subtraction replaced by the ``snn.Leaky`` that does (snntorch reads every
    NIR neuron as resetting to zero, and an ``IF`` node as ``Leaky(beta=0.9)`` that returns a
    tuple). Run it with :func:`simulate_snntorch`, which also sets the initial membranes."""
    import nir
    import snntorch as snn
    from snntorch.import_nir import import_from_nir

    network = import_from_nir(graph)
    for name, node in graph.nodes.items():
        if isinstance(node, nir.IF | nir.LIF) and node.metadata.get("reset") == "subtract":
            beta = 1.0 if isinstance(node, nir.IF) else torch.as_tensor(1 - NIR_DT / node.tau, dtype=torch.float32)
            network.set_submodule(name, snn.Leaky(beta=beta, threshold=float(node.v_threshold.flat[0]),
                                                  reset_mechanism="subtract", init_hidden=True))
    return network


@torch.no_grad()
def simulate_snntorch(network: nn.Module, graph, inputs: torch.Tensor, steps: int) -> torch.Tensor:
    """The graph's output at every step, ``[T, batch, ...]``, of ``network`` (snntorch modules read
    from ``graph``) fed ``inputs`` (shaped as the graph's input) at every step; the neurons start
    at the membrane their metadata gives (``v_init``, NIR's 0 when absent)."""
    import nir

    for name, node in graph.nodes.items():
        if isinstance(node, nir.IF | nir.LIF):
            neurons = network.get_submodule(name)
            neurons.reset_mem()
            shape = (len(inputs), *np.shape(node.v_threshold))
            neurons.mem = torch.full(shape, float(node.metadata.get("v_init", 0.0)))
    outputs = []
    for _ in range(steps):
        output = network(inputs)  # nirtorch's executor returns (output, state) for some graphs
        outputs.append(output[0] if isinstance(output, tuple) else output)
    return torch.stack(outputs)
