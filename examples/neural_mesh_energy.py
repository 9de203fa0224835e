"""Energy in the neural mesh of Papakipos & Beck over a window, input shown once against every
step (their Figs 8-9), for the rate mesh and the spiking mesh, on full MNIST.

    python examples/neural_mesh_energy.py                  # about 6 minutes on 2 CPU cores
    python examples/neural_mesh_energy.py --epochs 1       # a quick look

Trains four meshes of ``--neurons`` neurons (rate and spiking, input once and every step) and
writes ``runs/mesh-energy-<time>/`` with the results record ``results.json`` (test accuracies,
total energy per step for three test images and averaged over ``--average-images`` test images,
spikes per step; ``--record PATH`` writes it there too) and the figures:

- ``rate_frames.png``, ``spiking_frames.png``: the grid at every step for three test images
  (rate: the state; spiking: the membrane), input once above, every step below.
- ``energy.png``: total energy against step, rate and spiking, both input modes: the energy that
  can fire, Σ relu(s) (what the paper's figures show), and the signed total Σ s, in which
  inhibited neurons count negative.
- ``spikes.png``: the spiking mesh's spikes travelling over the torus, grid frames of one image.
- ``raster.png``: spike rasters of the three images (input once).
"""

from __future__ import annotations

import argparse
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from idx_datasets import load
from rate_models.mesh import MeshConfig, energy, firing_energy
from spikebridge.mesh_plots import energy_curves, grid_frames, spike_raster
from spikebridge.records import make_record, portable_argument, portable_path, provenance, write_record
from spikebridge.runs import new_run_dir
from spikebridge.training import TrainConfig, accuracy, as_tensors, train

MODES = {"input once": False, "input every step": True}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--neurons", type=int, default=MeshConfig.neurons, help="mesh neurons (a square grid)")
    parser.add_argument("--window", type=int, default=MeshConfig.window, help="steps per image")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--learning-rate", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0, help="training seed, and the draw of the three images")
    parser.add_argument("--average-images", type=int, default=1_000, help="test images averaged per curve")
    parser.add_argument("--runs-dir", default="runs")
    parser.add_argument("--record", metavar="PATH", help="also write the results record to PATH")
    return parser.parse_args()


@torch.no_grad()
def grids_and_spikes(model: torch.nn.Module, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The energy grids ``[T, B, H, W]`` (the rate mesh's states, the spiking mesh's membranes) and
    the spiking mesh's spikes ``[T, B, N]`` (None for the rate mesh)."""
    if hasattr(model, "trajectory"):
        membranes, spikes, _ = model.trajectory(images)
        return membranes.unflatten(2, model.grid), spikes
    return model.states(images), None


def main() -> None:
    args = parse_args()
    started = provenance(seeds={"training": args.seed, "images": args.seed})
    folder = new_run_dir(Path(args.runs_dir), "mesh-energy")
    test_x, test_y = as_tensors(load("mnist", "test"))
    chosen = torch.randperm(len(test_x), generator=torch.Generator().manual_seed(args.seed))[:3]
    labels = [f"image {int(i)} (a {int(test_y[i])})" for i in chosen]
    config = TrainConfig(epochs=args.epochs, learning_rate=args.learning_rate, seed=args.seed)
    arguments = {name: portable_argument(value) if isinstance(value, str) else value
                 for name, value in vars(args).items()}
    results = {"args": arguments, "images": chosen.tolist(), "models": {}}
    curves: dict[str, dict[str, np.ndarray]] = {}
    frames = {"rate mesh": [], "spiking mesh": []}
    for mode, every_step in MODES.items():
        for kind, name, settings in (("rate mesh", "mesh", {"window": args.window}),
                                     ("spiking mesh", "snn-mesh", {"steps": args.window})):
            run = train(name, {"neurons": args.neurons, "input_every_step": every_step, **settings}, config,
                        runs_root=folder / "models")
            model = run.model.eval()
            grids, spikes = grids_and_spikes(model, test_x[: args.average_images])
            picked_grids, picked_spikes = grids_and_spikes(model, test_x[chosen])
            frames[kind].append(picked_grids.transpose(0, 1).numpy())
            entry = {"run": portable_path(run.directory), "model_config": asdict(run.model.config),
                     "training": asdict(run.train_config), "test_accuracy": accuracy(model, test_x, test_y)}
            for measure, total in (("firing energy", firing_energy), ("energy", energy)):
                means, picked = total(grids).mean(1), total(picked_grids)  # [T], [T, 3]
                lines = curves.setdefault(f"{kind}: {measure}", {})
                lines[f"{mode}, mean of {args.average_images}"] = means.numpy()
                lines.update({f"{mode}, {label}": picked[:, i].numpy() for i, label in enumerate(labels)})
                entry[f"{measure.replace(' ', '_')}_mean_per_step"] = means.tolist()
                entry[f"{measure.replace(' ', '_')}_of_the_three_images_per_step"] = picked.T.tolist()
            if spikes is not None:
                entry["spikes_per_step_mean"] = spikes.sum(-1).mean(1).tolist()
                if not every_step:
                    grid_frames(picked_spikes[:, :1].unflatten(2, model.grid).transpose(0, 1).numpy(), labels[:1],
                                "spiking mesh, input once: spikes travelling over the torus", folder / "spikes.png",
                                cmap="Greys")
                    spike_raster(picked_spikes.transpose(0, 1).numpy(), labels,
                                 "spiking mesh, input once: spikes per neuron and step", folder / "raster.png")
            results["models"][f"{kind}, {mode}"] = entry
            print(f"{kind}, {mode}: test accuracy {100 * entry['test_accuracy']:.2f} %, firing energy per step "
                  + " ".join(f"{value:.1f}" for value in entry["firing_energy_mean_per_step"]))
    for kind, panels in frames.items():
        rows = np.concatenate(panels)  # [modes x 3, T, H, W]
        row_labels = [f"{mode.removeprefix('input ')}\n{label}" for mode in MODES for label in labels]
        grid_frames(rows, row_labels, f"{kind}: energy at every step, input once (top) and every step (bottom)",
                    folder / f"{kind.split()[0]}_frames.png")
    energy_curves(curves, "Σ over the grid (firing energy: Σ relu)", folder / "energy.png")
    record = make_record(results, started)
    write_record(folder / "results.json", record)
    print(f"folder: {folder}; results record: {folder / 'results.json'}")
    if args.record:
        print(f"results record written to {write_record(Path(args.record), record)}")


if __name__ == "__main__":
    main()
