"""BindsNET 0.3.4's ``DiehlAndCook2015`` trained the way its MNIST example does it, for
``benchmarks/diehl_cook_speed.py`` to time beside the compiled blocks.

Its usual settings (``examples/mnist/eth_mnist.py``): ``dt`` = 1 ms, every image shown once for
250 ms as Poisson spikes at pixel / 255 × 128 Hz, then all state reset; excitatory→inhibitory
weight 22.5, inhibition 120, θ₊ = 0.05 mV, weights normalised to 78.4 per neuron after every
image; the excitatory spikes recorded by a monitor (the example needs them for its labels).

What it simplifies against the paper's model: current-based synapses (a spike adds its weight to
the membrane, no reversal potentials or conductances), no spike timer, no re-presentation of
images that drew fewer than 5 spikes, no rest between images (the state is reset instead), no
synaptic delays, and pair-based STDP with a presynaptic trace only for depression (its default
``PostPre``).

Install without its pins (they pull gymnasium, torchvision and a newer torch): ``make
install-peers``. Its package ``__init__`` imports the gym environment and torchvision datasets,
so only the model modules are imported here (:func:`import_model`).
"""

from __future__ import annotations

import importlib.util
import sys
import time
import types

import numpy as np

PRESENTATION_MS = 250
DT_MS = 1.0
INTENSITY_HZ = 128.0  # rate of a white pixel
EXCITATORY_TO_INHIBITORY = 22.5
INHIBITION = 120.0


def import_model():
    """``bindsnet.models.DiehlAndCook2015``, ``bindsnet.encoding.poisson`` and
    ``bindsnet.network.monitors.Monitor`` without running BindsNET's package ``__init__`` (which
    needs gymnasium and torchvision)."""
    if "bindsnet" not in sys.modules:
        spec = importlib.util.find_spec("bindsnet")
        if spec is None:
            raise ImportError("BindsNET is not installed: `make install-peers` installs it without its pins")
        package = types.ModuleType("bindsnet")
        package.__path__ = list(spec.submodule_search_locations)
        sys.modules["bindsnet"] = package
    import bindsnet.network  # noqa: F401  (first: the learning and topology modules import each other)
    from bindsnet.encoding.encodings import poisson
    from bindsnet.models.models import DiehlAndCook2015
    from bindsnet.network.monitors import Monitor

    return DiehlAndCook2015, poisson, Monitor


def _network(neurons: int, threads: int, seed: int):
    """BindsNET's network as its MNIST example builds it, with a monitor of the excitatory spikes."""
    import torch

    DiehlAndCook2015, poisson, Monitor = import_model()
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    network = DiehlAndCook2015(n_inpt=784, n_neurons=neurons, exc=EXCITATORY_TO_INHIBITORY, inh=INHIBITION,
                               dt=DT_MS, norm=78.4, theta_plus=0.05, inpt_shape=(1, 28, 28))
    spikes = Monitor(network.layers["Ae"], state_vars=["s"], time=int(PRESENTATION_MS / DT_MS))
    network.add_monitor(spikes, name="Ae_spikes")
    return network, spikes, poisson


def _present(network, spikes, poisson, image: np.ndarray) -> np.ndarray:
    """Show one image (pixels 0-255) for 250 ms; the excitatory spike counts ``[N]``."""
    import torch

    rates = torch.tensor(np.asarray(image, dtype=np.float32)).view(1, 28, 28) / 255 * INTENSITY_HZ
    network.run(inputs={"X": poisson(datum=rates, time=PRESENTATION_MS, dt=DT_MS).unsqueeze(1)},
                time=PRESENTATION_MS)
    counts = spikes.get("s").sum(dim=0).view(-1).numpy().astype(np.int64)
    network.reset_state_variables()
    return counts


def bindsnet_speed(neurons: int, images: np.ndarray, count: int, threads: int, seed: int = 0) -> dict:
    """Train BindsNET's network on the first ``count`` images; images/s after a warm-up image."""
    import torch

    network, spikes, poisson = _network(neurons, threads, seed)
    counts = []
    started = None
    for index in range(count + 1):
        if index == 1:  # the first image pays for allocation
            started = time.perf_counter()
        counts.append(int(_present(network, spikes, poisson, images[index]).sum()))
    seconds = time.perf_counter() - started
    return {"images": count, "seconds": seconds, "images_per_second": count / seconds, "threads": threads,
            "spikes_per_image": float(np.mean(counts[1:])), "torch": torch.__version__}


def bindsnet_responses(neurons: int, train_images: np.ndarray, frozen_sets: list[np.ndarray], threads: int,
                       seed: int = 0) -> list[np.ndarray]:
    """Train on ``train_images`` (one presentation each), freeze (no STDP, θ fixed), and return the
    spike counts ``[images, N]`` for each array of ``frozen_sets``."""
    network, spikes, poisson = _network(neurons, threads, seed)
    for image in train_images:
        _present(network, spikes, poisson, image)
    network.train(False)
    return [np.stack([_present(network, spikes, poisson, image) for image in images]) for images in frozen_sets]
