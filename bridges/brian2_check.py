"""An independent simulation of a converted MLP in Brian2, to cross-check the torch simulator.

Same semantics as :mod:`bridges.neurons`: unit threshold, reset by subtraction, initial
membrane ``v_init``, one time step per update, and a spike reaching the next layer within the
same step. Brian2 checks every group's threshold before any synapse delivers, so each layer's
threshold and the synapses leaving it are scheduled in turn (``when='thresholds'``, increasing
``order``): layer l fires, its synapses add their weights to layer l+1, then layer l+1 fires.

Input layer: constant currents ``I = W x + b`` through a summed variable from a group holding the
pixels. Output layer: integrates its input and bias without firing; evidence = v / T.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from bridges.common import ConversionError
from bridges.conversion import SpikingNetwork, single_linear


def _linear_layers(snn: SpikingNetwork) -> list[nn.Linear]:
    layers = [single_linear(stack) for stack in snn.stacks]
    if any(layer is None for layer in layers):
        raise ConversionError("the Brian2 cross-check takes MLPs only (Flatten and one Linear per layer)")
    if any(pool is not None for pool in snn.pools) or snn.options.input_coding != "current":
        raise ConversionError("the Brian2 cross-check takes MLPs without pooling, driven by constant current")
    return layers


def brian2_spike_counts(snn: SpikingNetwork, image: torch.Tensor, steps: int) -> tuple[list[np.ndarray], np.ndarray]:
    """Spike counts of every hidden layer and the output evidence for one ``image``, simulated
    in Brian2 runtime mode (numpy code generation, float64)."""
    import brian2 as b2

    layers = _linear_layers(snn)
    b2.get_device().reinit()
    b2.set_device("runtime")
    b2.prefs.codegen.target = "numpy"
    dt = 1 * b2.ms
    net = b2.Network()
    pixels = b2.NeuronGroup(image.numel(), "x : 1", dt=dt, name="pixels")
    pixels.x = image.double().flatten().numpy()
    net.add(pixels)

    def weights(layer: nn.Linear) -> tuple[np.ndarray, np.ndarray]:
        return layer.weight.detach().double().numpy(), layer.bias.detach().double().numpy() if layer.bias is not None \
            else np.zeros(layer.out_features)

    groups, order = [], 0
    for index, layer in enumerate(layers):
        w, bias = weights(layer)
        hidden = index < len(layers) - 1
        model = "v : 1\nb : 1" + ("\nI : 1" if index == 0 else "")
        group = b2.NeuronGroup(layer.out_features, model, threshold="v >= 1" if hidden else None,
                               reset="v -= 1" if hidden else None, dt=dt, name=f"layer{index + 1}")
        group.v = snn.options.v_init if hidden else 0.0
        group.b = bias
        group.run_regularly("v += I + b" if index == 0 else "v += b", when="groups", name=f"drive{index + 1}")
        if index == 0:
            synapses = b2.Synapses(pixels, group, "w : 1\nI_post = w * x_pre : 1 (summed)", dt=dt, name="input")
            synapses.connect()
            synapses.w = w.T.ravel()  # synapse k joins pixel k // N to neuron k % N
            synapses.summed_updaters["I_post"].when = "start"
        else:
            synapses = b2.Synapses(groups[-1], group, "w : 1", on_pre="v_post += w", dt=dt, name=f"spikes{index}")
            synapses.connect()
            synapses.w = w.T.ravel()
            synapses.pre.when, synapses.pre.order = "thresholds", order
            order += 1
        if hidden:
            group.thresholder["spike"].when, group.thresholder["spike"].order = "thresholds", order
            order += 1
        net.add(group, synapses)
        groups.append(group)
    monitors = [b2.SpikeMonitor(group, name=f"spikes_of_{group.name}") for group in groups[:-1]]
    net.add(*monitors)
    net.run(steps * dt, namespace={})
    counts = [np.asarray(monitor.count, dtype=np.int64) for monitor in monitors]
    return counts, np.asarray(groups[-1].v) / steps


def brian2_log_coding_counts(drives: np.ndarray, steps: int, theta0: float, growth: float) -> np.ndarray:
    """Spike counts of Brian2 log-coding neurons (:mod:`bridges.log_coding`), one per constant
    drive, after ``steps`` steps: the threshold grows by ``growth`` in the reset statement."""
    import brian2 as b2

    b2.get_device().reinit()
    b2.set_device("runtime")
    b2.prefs.codegen.target = "numpy"
    dt = 1 * b2.ms
    neurons = b2.NeuronGroup(len(drives), "v : 1\ntheta : 1\nI : 1", threshold="v >= theta",
                             reset="v -= theta\ntheta *= growth", dt=dt, name="log_coding")
    neurons.I = np.asarray(drives, dtype=np.float64)
    neurons.theta = theta0
    neurons.run_regularly("v += I", when="groups", name="drive")
    monitor = b2.SpikeMonitor(neurons, name="log_coding_spikes")
    net = b2.Network(neurons, monitor)
    net.run(steps * dt, namespace={"growth": growth})
    return np.asarray(monitor.count, dtype=np.int64)
