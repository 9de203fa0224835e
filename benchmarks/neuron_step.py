"""The converted networks on the one neuron step (spiking.neuron) against the in-place loop they ran before.

Until the neuron step became one pure function for every spiking network, the converted networks'
integrate-and-fire neurons ran in a loop that updated the membrane in place; this script keeps
that loop as the reference. It trains the MLP 784-1200-1200-10 briefly (the first 10,000
training images, 1 epoch), converts it, and simulates the first 2,000 test images at T = 32
with each, alternating, ``--repeats`` times; the medians and their ratio are reported, and the
two must give the same class evidence bit for bit. The integrate-and-fire recurrence alone is
timed the same way on one layer's currents ([T, images, 1200]).

    python benchmarks/neuron_step.py [--output benchmarks/results/neuron_step.json]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import torch

import bridges.conversion
from bridges import convert
from bridges.neurons import integrate_and_fire
from idx_datasets import load
from spikebridge.records import make_record, provenance, write_record
from spikebridge.training import TrainConfig, as_tensors, train

RESULTS = Path(__file__).parent / "results" / "neuron_step.json"
TRAINING = TrainConfig(epochs=1, train_images=10_000, test_images=2_000, seed=0)
STEPS = 32


def in_place_integrate_and_fire(v: torch.Tensor, currents: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The former loop: v += I; s = (v >= 1); v -= s, in place on a copy of ``v``."""
    spikes = torch.empty_like(currents)
    v = v.clone()
    for step in range(currents.shape[0]):
        v.add_(currents[step])
        torch.ge(v, 1.0, out=spikes[step])
        v.sub_(spikes[step])
    return spikes, v


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5, help="trials of each, alternating; medians reported")
    parser.add_argument("--output", type=Path, default=RESULTS, help="the results record")
    args = parser.parse_args()
    torch.set_num_threads(1)
    started = provenance(seeds={"training": TRAINING.seed})
    with tempfile.TemporaryDirectory(prefix="neuron-step-") as scratch:
        run = train("mlp", None, TRAINING, runs_root=Path(scratch), progress=False)
    calibration, _ = as_tensors(load("mnist", "train").head(1_000))
    images, _ = as_tensors(load("mnist", "test").head(TRAINING.test_images))
    snn = convert(run.model, calibration)
    layer_currents = torch.rand(STEPS, 250, 1200, generator=torch.Generator().manual_seed(0)) * 0.1
    layer_start = torch.full((250, 1200), 0.5)

    ways = {"neuron step": integrate_and_fire, "former in-place loop": in_place_integrate_and_fire}
    network: dict[str, list[float]] = {way: [] for way in ways}
    layer: dict[str, list[float]] = {way: [] for way in ways}
    evidence = {}
    for _ in range(args.repeats):
        for way, function in ways.items():
            bridges.conversion.integrate_and_fire = function  # what the converted network's layers call
            clock = time.perf_counter()
            evidence[way] = snn.run(images, STEPS).evidence
            network[way].append(time.perf_counter() - clock)
            clock = time.perf_counter()
            function(layer_start, layer_currents)
            layer[way].append(time.perf_counter() - clock)
    bridges.conversion.integrate_and_fire = integrate_and_fire
    same = torch.equal(*evidence.values())
    rows = {way: {"network_seconds": statistics.median(network[way]), "layer_seconds": statistics.median(layer[way]),
                  "network_trials": network[way], "layer_trials": layer[way]} for way in ways}
    reference = rows["former in-place loop"]
    print(f"| way | MLP at T = {STEPS}, {len(images)} images (s) | IF recurrence, [{STEPS}, 250, 1200] (ms) |")
    print("| --- | ---: | ---: |")
    for way, row in rows.items():
        print(f"| {way} | {row['network_seconds']:.2f} | {1000 * row['layer_seconds']:.1f} |")
    ratios = {"network": rows["neuron step"]["network_seconds"] / reference["network_seconds"],
              "layer": rows["neuron step"]["layer_seconds"] / reference["layer_seconds"]}
    print(f"neuron step / former loop: network {ratios['network']:.3f}, recurrence {ratios['layer']:.3f}; "
          f"the same evidence: {same}")
    record = make_record({"training": asdict(TRAINING) | {"model": "mlp"}, "steps": STEPS, "test_images": len(images),
                          "repeats": args.repeats, "rows": rows, "ratios": ratios, "same_evidence": same}, started)
    print(f"wrote {write_record(args.output, record)}")


if __name__ == "__main__":
    main()
