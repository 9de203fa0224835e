"""One LIF neuron's spikes driving a second one across a synapse (Gupta & Naveed, Figure 1), in Brian2.

    python examples/lif_pair.py           # writes lif_pair.png

Neuron 1 receives a constant current and fires regularly; every spike adds the synaptic weight
to neuron 2's membrane potential, which fires once enough spikes have arrived. As in the paper's
figure, the threshold is 1 (dimensionless voltage) and the membrane resets to 0.
"""

import matplotlib

matplotlib.use("Agg")
import brian2 as b2
import matplotlib.pyplot as plt

b2.prefs.codegen.target = "numpy"
tau = 10 * b2.ms
neurons = b2.NeuronGroup(
    2, "dv/dt = (drive - v) / tau : 1\ndrive : 1", threshold="v > 1", reset="v = 0", method="exact",
    namespace={"tau": tau},
)
neurons.drive = [2.0, 0.0]  # only the first neuron is driven
synapse = b2.Synapses(neurons, neurons, on_pre="v_post += 0.6")
synapse.connect(i=0, j=1)
voltage = b2.StateMonitor(neurons, "v", record=True)
spikes = b2.SpikeMonitor(neurons)
b2.run(100 * b2.ms, namespace={})

figure, axes = plt.subplots(2, 1, sharex=True, figsize=(7, 4))
for index, axis in enumerate(axes):
    axis.plot(voltage.t / b2.ms, voltage.v[index])
    axis.axhline(1.0, linestyle="--", color="grey", linewidth=0.8)
    axis.set(ylabel=f"neuron {index + 1}: v")
    for spike_time in spikes.t[spikes.i == index]:
        axis.axvline(spike_time / b2.ms, color="red", alpha=0.4)
axes[1].set(xlabel="time (ms)")
figure.suptitle("a driven LIF neuron (top) makes a second one fire through a synapse (bottom)")
figure.savefig("lif_pair.png", dpi=120, bbox_inches="tight")
print(f"neuron 1: {sum(spikes.i == 0)} spikes, neuron 2: {sum(spikes.i == 1)} spikes; wrote lif_pair.png")
