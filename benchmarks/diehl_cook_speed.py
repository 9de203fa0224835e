"""Training speed of the Diehl & Cook network: compiled blocks against a plain runtime-mode loop.

For each network size, in one process and on the same MNIST images:
- compiled: ``cpp_standalone`` blocks of ``--block-slots`` presentations, re-presentations and
  normalisation in generated code, state passed through ``run_args`` (the toolkit's design);
  compilation time is reported separately;
- runtime loop: the same network in Brian2's runtime mode (Cython), driven the way public ports
  do it: one ``run(350 ms)`` and one ``run(150 ms)`` per presentation.

Images/s counts training images completed (re-presentations cost time but are not images).
Prints a table and writes ``benchmarks/results/diehl_cook_speed.json``.

    python benchmarks/diehl_cook_speed.py [--sizes 100 400] [--blocks 2] [--runtime-images 20]
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np

from idx_datasets import load
from idx_datasets.atomic import write_json_atomic
from spikebridge.diehl_cook_runs import block_seed, build_dir_root, present_block
from spikebridge.runs import environment
from spiking.block_runner import RuntimeBlockRunner, StandaloneBlockRunner
from spiking.diehl_cook import DiehlCookParameters, initial_state, pixel_block

RESULTS = Path(__file__).parent / "results" / "diehl_cook_speed.json"


def compiled_speed(params, neurons: int, images: np.ndarray, block_slots: int, blocks: int, threads: int) -> dict:
    runner = StandaloneBlockRunner(params, neurons, block_slots, build_dir_root(), threads=threads)
    state = initial_state(params, neurons, np.random.default_rng(0))
    position, intensity, done, presentations, spikes = 0, params.initial_intensity, 0, 0, 0
    started = time.perf_counter()
    for block in range(blocks):
        state, outcome = present_block(runner, state, images, position, intensity, len(images), True,
                                       block_seed(0, block))
        done += len(outcome.indices)
        presentations += outcome.presentations
        spikes += int(outcome.counts.sum())
        position += len(outcome.indices)
        intensity = outcome.block.next_intensity
    seconds = time.perf_counter() - started
    return {"images": done, "presentations": presentations, "seconds": seconds, "images_per_second": done / seconds,
            "compile_seconds": runner.compile_seconds, "threads": threads,
            # statistics to compare between thread counts (different random streams, same model)
            "spikes_per_image": spikes / done, "re_presentation_fraction": 1 - done / presentations,
            "theta_mean_mV": float(state.theta_mV.mean())}


def runtime_loop_speed(params, neurons: int, images: np.ndarray, count: int) -> dict:
    """One run() of 350 ms and one of 150 ms per presentation, Python in between (public ports)."""
    import brian2

    runner = RuntimeBlockRunner(params, neurons, slots=count + 1)
    net = runner.net
    state = initial_state(params, neurons, np.random.default_rng(0))
    pixels = pixel_block(images, 0, count + 1, count + 1)
    runner.start_block(state, pixels, params.initial_intensity, True, seed=0)
    net.network.run(1 * brian2.ms, namespace={})  # generate and compile the code before timing
    runner.start_block(state, pixels, params.initial_intensity, True, seed=0)
    started = time.perf_counter()
    presentations = 0
    while int(net.controller.image[0]) < count:
        net.network.run(params.presentation_ms * brian2.ms, namespace={})
        net.network.run(params.rest_ms * brian2.ms, namespace={})
        presentations += 1
    seconds = time.perf_counter() - started
    done = int(net.controller.image[0])
    return {"images": done, "presentations": presentations, "seconds": seconds, "images_per_second": done / seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 400])
    parser.add_argument("--block-slots", type=int, default=500)
    parser.add_argument("--blocks", type=int, default=2)
    parser.add_argument("--runtime-images", type=int, default=20)
    parser.add_argument("--threads", type=int, nargs="+", default=[1], help="OpenMP thread counts to time")
    args = parser.parse_args()

    params = DiehlCookParameters()
    images = load("mnist", "train").images
    rows = []
    for neurons in args.sizes:
        runtime = runtime_loop_speed(params, neurons, images, args.runtime_images)
        for threads in args.threads:
            compiled = compiled_speed(params, neurons, images, args.block_slots, args.blocks, threads)
            rows.append({"neurons": neurons, "compiled": compiled, "runtime_loop": runtime,
                         "ratio": compiled["images_per_second"] / runtime["images_per_second"]})
            print(f"{neurons} neurons, {threads} thread(s): compiled {compiled['images_per_second']:.1f} img/s, "
                  f"runtime loop {runtime['images_per_second']:.2f} img/s", flush=True)

    print("\n| neurons | threads | compiled (img/s) | runtime loop (img/s) | ratio | compile (s) "
          "| images timed | spikes/image | re-presented |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: |")
    for row in rows:
        c, r = row["compiled"], row["runtime_loop"]
        print(f"| {row['neurons']} | {c['threads']} | {c['images_per_second']:.1f} | {r['images_per_second']:.2f} | "
              f"{row['ratio']:.1f}x | {c['compile_seconds']:.1f} | {c['images']} vs {r['images']} "
              f"| {c['spikes_per_image']:.1f} | {100 * c['re_presentation_fraction']:.1f} % |")
    write_json_atomic(RESULTS, {
        "rows": rows, "block_slots": args.block_slots, "command": "python benchmarks/diehl_cook_speed.py "
        + " ".join(f"--{k.replace('_', '-')} {' '.join(map(str, v)) if isinstance(v, list) else v}"
                   for k, v in vars(args).items()),
        "machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine()},
        "environment": environment(),
    })
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
