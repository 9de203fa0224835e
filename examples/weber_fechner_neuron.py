"""The log-coding neuron's Weber-Fechner law, measured in torch and in Brian2.

    python examples/weber_fechner_neuron.py        # a few seconds

An integrate-and-fire neuron whose threshold grows by r at each spike is driven by constant
currents spanning four decades (1e-4 to 1) for T steps. Its spike count against ln(drive) is
fitted with a line; the law predicts the slope 1 / ln r. Brian2 (threshold growth in the reset
statement) must give the same counts. Writes ``runs/weber-fechner-<time>/`` with the results
record ``results.json`` (``--record PATH`` writes it there too) and ``count_vs_drive.png``.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from bridges.brian2_check import brian2_log_coding_counts
from bridges.log_coding import fit_log_law, log_coding_counts, log_law_count
from spikebridge.records import environment, make_record, provenance, write_record
from spikebridge.runs import figure_with_axes, new_run_dir, save_figure, write_json


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--growth", type=float, default=1.1, help="threshold factor r per spike")
    parser.add_argument("--theta0", type=float, default=1e-3, help="initial threshold")
    parser.add_argument("--steps", type=int, default=1000, help="time steps T")
    parser.add_argument("--runs-dir", default="runs")
    parser.add_argument("--record", metavar="PATH", help="also write the results record to PATH")
    args = parser.parse_args()
    started = provenance(seeds={})

    drives = torch.logspace(-4, 0, 41, dtype=torch.float64)
    counts = log_coding_counts(drives.expand(args.steps, -1), args.theta0, args.growth)
    fit = fit_log_law(drives, counts)
    brian2_counts = brian2_log_coding_counts(drives.numpy(), args.steps, args.theta0, args.growth)
    law = log_law_count(drives * args.steps, args.theta0, args.growth)
    results = {
        "args": vars(args), "fit": asdict(fit), "predicted_slope": 1 / math.log(args.growth),
        "brian2_counts": brian2_counts.tolist(), "brian2_equal_torch": bool((brian2_counts == counts.numpy()).all()),
        "closed_form_equal_torch": bool((law == counts).all()),
    }
    folder = new_run_dir(Path(args.runs_dir), "weber-fechner")
    write_json(folder, "config.json", {"kind": "weber-fechner", "args": vars(args), "environment": environment()})
    record = make_record(results, started)
    write_record(folder / "results.json", record)

    figure, axis = figure_with_axes(figsize=(6, 4))
    axis.plot(drives, counts, "o", label="torch")
    axis.plot(drives, brian2_counts, "x", color="k", label="Brian2")
    grid = np.logspace(-4, 0, 100)
    axis.plot(grid, fit.slope * np.log(grid) + fit.intercept, "-", color="C1",
              label=f"fit: {fit.slope:.2f} ln(drive) + {fit.intercept:.1f} (1/ln r = {1 / math.log(args.growth):.2f})")
    axis.set(xscale="log", xlabel="constant drive per step", ylabel=f"spikes in T = {args.steps} steps",
             title=f"log-coding neuron, r = {args.growth}, theta0 = {args.theta0:g}")
    axis.legend(fontsize=8)
    save_figure(figure, folder / "count_vs_drive.png")
    print(f"slope {fit.slope:.3f} spikes per e-fold of drive (law: {results['predicted_slope']:.3f}), "
          f"intercept {fit.intercept:.2f}, largest residual {fit.max_residual:.2f} spikes")
    print(f"Brian2 counts equal torch's: {results['brian2_equal_torch']}; "
          f"closed form equals torch: {results['closed_form_equal_torch']}")
    print(f"folder: {folder}; results record: {folder / 'results.json'}")
    if args.record:
        print(f"results record written to {write_record(Path(args.record), record)}")


if __name__ == "__main__":
    main()
