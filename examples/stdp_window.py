"""The STDP window of the Diehl & Cook (2015) synapse, measured from the simulated synapse.

    python examples/stdp_window.py        # writes stdp_window.png (a few seconds)

Each point is one Brian2 simulation of the model's input->excitatory synapse (the equation
strings of spiking.diehl_cook) with a pre/post spike pair Δt = t_post - t_pre apart, preceded by
a priming post spike 40 ms earlier (the rule's potentiation needs the slow post trace).
"""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from spiking.stdp_window import window

delays_ms = np.concatenate([np.arange(-60, 0, 2.5), np.arange(0.5, 60, 2.5)])
changes = window(delays_ms)

figure, axis = plt.subplots(figsize=(6, 4))
axis.axhline(0, color="grey", linewidth=0.5)
axis.axvline(0, color="grey", linewidth=0.5)
axis.plot(delays_ms, changes, "o", markersize=3)
axis.set(xlabel="Δt = t_post − t_pre (ms)", ylabel="Δw", title="Diehl & Cook STDP window (simulated synapse)")
figure.savefig("stdp_window.png", dpi=120, bbox_inches="tight")
print(f"largest potentiation {changes.max():.2e} at Δt = {delays_ms[changes.argmax()]} ms; "
      f"largest depression {changes.min():.2e} at Δt = {delays_ms[changes.argmin()]} ms; wrote stdp_window.png")
