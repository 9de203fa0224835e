"""The STDP window of the Diehl & Cook synapse, measured by simulating it (not drawn from a formula).

One input->excitatory synapse of :mod:`spiking.diehl_cook`, with the model's own equation
strings, is driven by chosen pre- and postsynaptic spike times; the weight change is read off
the simulated synapse. The rule is triplet-like: potentiation at a post spike is scaled by the
slow post trace (post2) left by the *previous* post spike, so a window sweep primes the synapse
with one post spike before each pair.
"""

from __future__ import annotations

import numpy as np

from spiking import diehl_cook
from spiking.diehl_cook import DiehlCookParameters

INITIAL_WEIGHT = 0.5


def weight_change(
    pre_ms: list[float], post_ms: list[float], params: DiehlCookParameters = DiehlCookParameters()
) -> float:
    """Δw of one plastic synapse for presynaptic arrival times and postsynaptic spike times (ms)."""
    import brian2 as b2

    b2.get_device().reinit()
    b2.set_device("runtime")
    b2.prefs.codegen.target = "numpy"
    namespace = diehl_cook.namespace_of(params)
    dt = params.dt_ms * b2.ms
    pre = b2.SpikeGeneratorGroup(1, [0] * len(pre_ms), np.asarray(pre_ms) * b2.ms, dt=dt)
    post_steps = np.round(np.asarray(post_ms) / params.dt_ms).astype(int)
    fires = np.isin(np.arange(post_steps.max() + 10), post_steps).astype(int)
    namespace["post_fires"] = b2.TimedArray(fires, dt=dt)
    post = b2.NeuronGroup(
        1, "ge : 1\nw_total : 1\nplasticity : 1 (shared)\npost1 : 1\npost2 : 1",
        threshold="post_fires(t) == 1", reset=diehl_cook.POST_TRACE_RESET, namespace=namespace, dt=dt,
    )
    post.run_regularly(diehl_cook.POST_TRACE_DECAY, when="groups")
    post.plasticity = 1.0
    synapse = b2.Synapses(pre, post, diehl_cook.STDP_MODEL, on_pre=diehl_cook.STDP_ON_PRE,
                          on_post=diehl_cook.STDP_ON_POST, namespace=namespace, dt=dt)
    synapse.connect()
    synapse.w = INITIAL_WEIGHT
    synapse.last_arrival = diehl_cook.NEVER_ARRIVED_MS * b2.ms
    network = b2.Network(pre, post, synapse)
    network.run((max(list(pre_ms) + list(post_ms)) + 5) * b2.ms, namespace={})
    return float(synapse.w[0]) - INITIAL_WEIGHT


def window(delays_ms: np.ndarray, prime_ms: float = 40.0, params: DiehlCookParameters = DiehlCookParameters()
           ) -> np.ndarray:
    """Δw for each Δt = t_post - t_pre in ``delays_ms``; a priming post spike precedes each pair
    by ``prime_ms`` (before the earlier of the two spikes)."""
    changes = []
    for delay in delays_ms:
        start = prime_ms + 10.0
        pre, post = (start, start + delay) if delay >= 0 else (start - delay, start)
        changes.append(weight_change([pre], [start - prime_ms, post], params))
    return np.asarray(changes)
