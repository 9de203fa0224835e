"""Wall time of one sweep run three ways: a pool of 1 worker, a pool of 2, and Ray on a local 2-CPU instance.

The same 12-cell sweep of short MLP trainings (784-256-10, 20,000 images, 3 epochs; 3 learning
rates x 4 seeds, one thread per cell) runs one way after another in this process, each into a new
sweep folder. Reported per way: wall time of ``run_sweep`` (report included), speed-up over one
worker, and the overhead per cell: the worker time not spent inside the cells,
(wall x workers - sum of the cells' own seconds) / cells.
Each way runs ``--repeats`` times, the ways alternating, and the medians are reported (this
VM's speed drifts within minutes). The Ray instance is started before the first trial (a cluster
exists before a sweep is sent to it), so its later trials find warm workers, as a cluster's do;
its start-up time is reported apart. The three ways must give the same metrics, cell for cell
(all but the cells' own seconds).

    python benchmarks/sweeps.py [--output benchmarks/results/sweeps_speed.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from spikebridge.records import make_record, provenance, write_record
from spikebridge.sweeps import CELLS, SweepSpec, run_sweep

RESULTS = Path(__file__).parent / "results" / "sweeps_speed.json"
SPEC = {
    "name": "mlp-speed", "kind": "train", "threads": 1,
    "settings": {"model": "mlp", "model.widths": [784, 256, 10], "epochs": 3, "train_images": 20_000,
                 "test_images": 2_000, "batch_size": 64},
    "axes": {"learning_rate": [0.001, 0.003, 0.01], "seed": [0, 1, 2, 3]},
}


def timed_sweep(root: Path, workers: int, ray: str | None) -> dict:
    started = time.perf_counter()
    folder = run_sweep(SPEC, runs_root=root, workers=workers, ray=ray, progress=False)
    wall = time.perf_counter() - started
    cells = [json.loads((folder / CELLS / cell.name / "cell.json").read_text()) for cell in
             SweepSpec.from_mapping(SPEC).cells()]
    inside = sum(cell["seconds"] for cell in cells)
    return {"wall_seconds": wall, "cells": len(cells), "cell_seconds": inside, "workers": workers,
            "overhead_per_cell_seconds": (wall * workers - inside) / len(cells),
            "metrics": [cell.get("metrics") for cell in cells], "failed": sum(c["status"] != "done" for c in cells)}


def _without_times(metrics: list[dict]) -> list[dict]:
    return [{name: value for name, value in cell.items() if name != "seconds"} for cell in metrics]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="trials of each way, alternating; medians reported")
    parser.add_argument("--output", type=Path, default=RESULTS, help="the results record")
    args = parser.parse_args()
    started = provenance(seeds={"seed": SPEC["axes"]["seed"]}, threads={"torch_per_cell": SPEC["threads"]})
    import ray

    ways = {"1 worker": (1, None), "2 workers": (2, None), "Ray, local 2-CPU instance": (2, "local")}
    trials: dict[str, list[dict]] = {way: [] for way in ways}
    ray_started = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    ray_start_seconds = time.perf_counter() - ray_started
    try:
        with tempfile.TemporaryDirectory(prefix="sweep-speed-") as scratch:
            for trial in range(args.repeats):
                for way, (workers, address) in ways.items():
                    trials[way].append(timed_sweep(Path(scratch) / f"{trial}-{workers}-{address}", workers, address))
    finally:
        ray.shutdown()
    rows = {way: {key: statistics.median(t[key] for t in found) for key in
                  ("wall_seconds", "cell_seconds", "overhead_per_cell_seconds")} | {"workers": ways[way][0]}
            for way, found in trials.items()}
    one, pool = rows["1 worker"]["wall_seconds"], rows["2 workers"]["wall_seconds"]
    for row in rows.values():
        row["speed_up"] = one / row["wall_seconds"]
    reference = _without_times(trials["1 worker"][0]["metrics"])
    same = all(_without_times(t["metrics"]) == reference for found in trials.values() for t in found)
    ray_over_pool = rows["Ray, local 2-CPU instance"]["wall_seconds"] / pool
    print(f"| way | wall time (s), median of {args.repeats} | speed-up | overhead per cell (s) |")
    print("| --- | ---: | ---: | ---: |")
    for name, row in rows.items():
        print(f"| {name} | {row['wall_seconds']:.1f} | {row['speed_up']:.2f} "
              f"| {row['overhead_per_cell_seconds']:.2f} |")
    print(f"Ray start-up {ray_start_seconds:.1f} s (not timed above); Ray / 2-worker pool {ray_over_pool:.2f}; "
          f"the same metrics in every cell: {same}")
    results = {"spec": SPEC, "repeats": args.repeats, "rows": rows, "ray_start_seconds": ray_start_seconds,
               "ray_over_pool": ray_over_pool, "same_metrics": same,
               "trials": {way: [{k: v for k, v in t.items() if k != "metrics"} for t in found]
                          for way, found in trials.items()}}
    print(f"wrote {write_record(args.output, make_record(results, started))}")


if __name__ == "__main__":
    main()
