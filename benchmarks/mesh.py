"""Training speed of the neural mesh (Papakipos & Beck): the rate mesh, the spiking mesh and the
one-layer net of the same neuron count, in one run.

Two measurements per neuron count (``--neurons``, square grids), on ``--threads`` torch threads:

- **the mesh step against a dense layer**: forward and backward of one mesh step
  (:func:`rate_models.mesh.mesh_step`, the paper's best options) on a batch of states
  ``[batch, N]``, against an ``nn.Linear(N, N)`` on the same batch; median of ``--repeats``
  timings of ``--calls`` calls each. Target: the mesh step within 3x the dense layer.
- **epochs**: one epoch of Adam on the 60,000 MNIST training images (batch 128, the model's own
  loss, window 10) for ``mesh``, ``snn-mesh`` and ``one-layer``, one model after another.
  Target: the spiking mesh's epoch within 3x the rate mesh's at the same window.

    python benchmarks/mesh.py [--neurons 100 1024] [--output benchmarks/results/mesh_speed.json]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from idx_datasets import load
from rate_models.mesh import MeshConfig, grid_shape, mesh_step, neighbour_sources, transfer_coefficients
from spikebridge import models
from spikebridge.records import make_record, provenance, write_record
from spikebridge.training import LOSSES, as_tensors

RESULTS = Path(__file__).parent / "results" / "mesh_speed.json"
EPOCH_MODELS = ("mesh", "snn-mesh", "one-layer")


def seconds_per_call(call, calls: int, repeats: int) -> float:
    """The median over ``repeats`` of the mean time of ``calls`` calls (after one warm-up call)."""
    call()
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(calls):
            call()
        timings.append((time.perf_counter() - started) / calls)
    return statistics.median(timings)


def step_against_dense(neurons: int, batch: int, calls: int, repeats: int) -> dict:
    grid = grid_shape(neurons, None)
    states = torch.randn(batch, neurons)
    weights = torch.empty(4, *grid).uniform_(-1, 1).requires_grad_()
    sources = neighbour_sources(*grid)
    dense = torch.nn.Linear(neurons, neurons)

    def mesh_call():
        mesh_step(states, transfer_coefficients(weights), sources, relu_each_step=False, clip=True).sum().backward()

    def dense_call():
        dense(states).clamp(-1, 1).sum().backward()

    mesh_seconds = seconds_per_call(mesh_call, calls, repeats)
    dense_seconds = seconds_per_call(dense_call, calls, repeats)
    return {"mesh_step_ms": 1e3 * mesh_seconds, "dense_layer_ms": 1e3 * dense_seconds,
            "ratio": mesh_seconds / dense_seconds}


def epoch_seconds(name: str, neurons: int, images: torch.Tensor, labels: torch.Tensor, batch: int) -> float:
    torch.manual_seed(0)
    model = models.build(name, {"neurons": neurons})
    loss_function = LOSSES[models.entry(name).loss]
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    constrain = getattr(model, "constrain_", lambda: None)
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(0))
    started = time.perf_counter()
    for start in range(0, len(images), batch):
        chosen = order[start : start + batch]
        loss = loss_function(model(images[chosen]), labels[chosen])
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        constrain()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--neurons", type=int, nargs="+", default=[100, 1024])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--calls", type=int, default=200, help="calls per timing of the step comparison")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--output", type=Path, default=RESULTS, help="the results record")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started = provenance(seeds={"weights": 0, "order": 0}, threads={"torch": args.threads})
    images, labels = as_tensors(load("mnist", "train"))
    rows = []
    print("| neurons | mesh step | dense layer | ratio | " + " | ".join(f"{m} epoch" for m in EPOCH_MODELS)
          + " | snn-mesh / mesh |")
    print("|---:" * (5 + len(EPOCH_MODELS)) + "|")
    for neurons in args.neurons:
        row = {"neurons": neurons, **step_against_dense(neurons, args.batch_size, args.calls, args.repeats)}
        row["epoch_seconds"] = {name: epoch_seconds(name, neurons, images, labels, args.batch_size)
                                for name in EPOCH_MODELS}
        row["spiking_over_rate_epoch"] = row["epoch_seconds"]["snn-mesh"] / row["epoch_seconds"]["mesh"]
        rows.append(row)
        epochs = " | ".join(f"{row['epoch_seconds'][name]:.1f} s" for name in EPOCH_MODELS)
        print(f"| {neurons} | {row['mesh_step_ms']:.3f} ms | {row['dense_layer_ms']:.3f} ms | {row['ratio']:.2f} | "
              f"{epochs} | {row['spiking_over_rate_epoch']:.2f} |")
    settings = {name: getattr(args, name) for name in ("neurons", "threads", "batch_size", "calls", "repeats")}
    record = make_record({"settings": settings, "window": MeshConfig.window, "rows": rows}, started)
    print(f"wrote {write_record(args.output, record)}")


if __name__ == "__main__":
    main()
