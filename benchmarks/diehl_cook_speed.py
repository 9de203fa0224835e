"""Training speed of the Diehl & Cook network: compiled blocks against a plain runtime-mode loop
and against BindsNET.

For each network size, in one process and on the same MNIST training images (the first ones):
- compiled: ``cpp_standalone`` blocks of ``--block-slots`` presentations, re-presentations and
  normalisation in generated code, state passed through ``run_args`` (the toolkit's design);
  compilation time is reported separately; ``--profile`` adds the CPU seconds of every code
  object in the last block;
- runtime loop: the same network in Brian2's runtime mode (Cython), driven the way public ports
  do it: one ``run(350 ms)`` and one ``run(150 ms)`` per presentation;
- BindsNET 0.3.4's ``DiehlAndCook2015`` as its MNIST example trains it
  (``benchmarks/bindsnet_diehl_cook.py`` says how and what it simplifies), on as many threads as
  the compiled blocks; skipped with ``--bindsnet-images 0``.

Images/s counts training images completed (re-presentations cost time but are not images).
Prints a table and writes ``benchmarks/results/diehl_cook_speed.json`` (``--output`` elsewhere).

    python benchmarks/diehl_cook_speed.py [--sizes 100 400] [--blocks 2] [--runtime-images 20] \
        [--bindsnet-images 100] [--membrane-update exponential] [--profile]

On a GPU machine with brian2cuda, ``--device cuda_standalone`` times brian2cuda's blocks instead
(``--runtime-images 0`` skips the runtime loop). ``--build-only`` generates and compiles the
blocks without running them, which checks a device's code generation and compiler where it
cannot run: for ``cuda_standalone`` on a machine with nvcc but no GPU, name the GPU to compile
for with ``--compute-capability`` (e.g. 9.0).
"""

from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path

import numpy as np
from bindsnet_diehl_cook import bindsnet_speed  # benchmarks/bindsnet_diehl_cook.py, beside this script

from idx_datasets import load
from spikebridge.diehl_cook_runs import block_seed, build_dir_root, present_block
from spikebridge.records import make_record, provenance, write_record
from spiking.block_runner import RuntimeBlockRunner, StandaloneBlockRunner
from spiking.diehl_cook import MEMBRANE_UPDATES, DiehlCookParameters, initial_state, pixel_block

RESULTS = Path(__file__).parent / "results" / "diehl_cook_speed.json"


def compiled_speed(params, neurons: int, images: np.ndarray, block_slots: int, blocks: int, threads: int,
                   device: str = "cpp_standalone", profile: bool = False, flush_subnormals: bool = True,
                   patch_spike_queue: bool = True) -> dict:
    state = initial_state(params, neurons, np.random.default_rng(0))
    runner = StandaloneBlockRunner(params, neurons, block_slots, build_dir_root(), threads=threads, device=device,
                                   profile=profile, flush_subnormals=flush_subnormals, delays_ms=state.delays_ms,
                                   patch_spike_queue=patch_spike_queue)
    if blocks == 0:  # --build-only
        return {"images": 0, "compile_seconds": runner.compile_seconds, "threads": threads, "device": device}
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
    profile_seconds = runner.profile_seconds() if profile else None
    return {"images": done, "presentations": presentations, "seconds": seconds, "images_per_second": done / seconds,
            "compile_seconds": runner.compile_seconds, "threads": threads, "device": device,
            "profile_seconds_last_block": profile_seconds,
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


def set_cuda_target(compute_capability: float) -> None:
    """brian2cuda compiles for the GPU it detects; without one it needs the target named."""
    import brian2cuda  # noqa: F401  (registers the device and its preferences)
    from brian2 import prefs

    backend = prefs.devices.cuda_standalone.cuda_backend
    backend.detect_gpus, backend.gpu_id, backend.compute_capability = False, 0, compute_capability


def _against(row: dict, peer: str) -> str:
    """``img/s | ratio`` of a row's compiled blocks against a peer, or dashes if it was not timed."""
    timed = row.get(peer)
    if not timed:
        return "— | —"
    ratio = row["compiled"]["images_per_second"] / timed["images_per_second"]
    return f"{timed['images_per_second']:.2f} | {ratio:.1f}x"


def print_table(rows: list[dict]) -> None:
    print("\n| neurons | device | threads | compiled (img/s) | runtime loop (img/s) | ratio | BindsNET (img/s) | ratio "
          "| compile (s) | images timed (compiled, runtime, BindsNET) | spikes/image | re-presented |")
    print("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: |")
    for row in rows:
        c = row["compiled"]
        timed = ", ".join(str(row[key]["images"] if row.get(key) else 0)
                          for key in ("compiled", "runtime_loop", "bindsnet"))
        print(f"| {row['neurons']} | {c['device']} | {c['threads']} | {c['images_per_second']:.1f} | "
              f"{_against(row, 'runtime_loop')} | {_against(row, 'bindsnet')} | {c['compile_seconds']:.1f} | {timed} "
              f"| {c['spikes_per_image']:.1f} | {100 * c['re_presentation_fraction']:.1f} % |")
        if c.get("profile_seconds_last_block"):
            profile = c["profile_seconds_last_block"]
            total = sum(profile.values())
            print("|  | CPU time of the last block: " + ", ".join(
                f"{name.split('_codeobject')[0]} {100 * seconds / total:.0f} %"
                for name, seconds in list(profile.items())[:6]) + " | " + " |" * 10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 400])
    parser.add_argument("--block-slots", type=int, default=500)
    parser.add_argument("--blocks", type=int, default=2)
    parser.add_argument("--runtime-images", type=int, default=20)
    parser.add_argument("--bindsnet-images", type=int, default=100, help="BindsNET training images to time (0: skip)")
    parser.add_argument("--profile", action="store_true", help="CPU time per code object of the last compiled block")
    parser.add_argument("--subnormals", choices=["flushed", "kept", "both"], default="flushed",
                        help="compiled blocks with subnormal floats flushed to zero (the default), kept, or both")
    parser.add_argument("--spike-queue", choices=["patched", "plain", "both"], default="patched",
                        help="compiled blocks with Brian2's spike queue patched (the default, see "
                             "spiking.block_runner), as Brian2 ships it, or both")
    parser.add_argument("--threads", type=int, nargs="+", default=[1], help="OpenMP thread counts to time")
    parser.add_argument("--device", choices=["cpp_standalone", "cuda_standalone"], default="cpp_standalone")
    parser.add_argument("--build-only", action="store_true", help="compile the blocks, run nothing")
    parser.add_argument("--compute-capability", type=float,
                        help="cuda_standalone without a GPU to detect: compile for this compute capability")
    parser.add_argument("--membrane-update", choices=MEMBRANE_UPDATES, default=DiehlCookParameters.membrane_update,
                        help="the model's membrane update (exponential: stable at 1600 neurons and more)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    started = provenance(seeds={"network_and_blocks": 0}, threads={"openmp": max(args.threads)})
    if args.compute_capability is not None:
        set_cuda_target(args.compute_capability)

    params = DiehlCookParameters(membrane_update=args.membrane_update)
    images = load("mnist", "train").images
    rows = []
    for neurons in args.sizes:
        skip_runtime = args.build_only or args.runtime_images == 0
        runtime = None if skip_runtime else runtime_loop_speed(params, neurons, images, args.runtime_images)
        subnormals = ["flushed", "kept"] if args.subnormals == "both" else [args.subnormals]
        queues = ["patched", "plain"] if args.spike_queue == "both" else [args.spike_queue]
        for threads, subnormal, queue in itertools.product(args.threads, subnormals, queues):
            compiled = compiled_speed(params, neurons, images, args.block_slots, 0 if args.build_only else args.blocks,
                                      threads, args.device, args.profile, subnormal == "flushed", queue == "patched")
            compiled["subnormals"], compiled["spike_queue"] = subnormal, queue
            if args.build_only:
                print(f"{neurons} neurons: {args.device} built in {compiled['compile_seconds']:.1f} s", flush=True)
                rows.append({"neurons": neurons, "compiled": compiled})
                continue
            timed_peers = args.bindsnet_images and subnormal == subnormals[0] and queue == queues[0]
            bindsnet = bindsnet_speed(neurons, images, args.bindsnet_images, threads) if timed_peers else None
            rows.append({"neurons": neurons, "compiled": compiled, "runtime_loop": runtime, "bindsnet": bindsnet})
            print(f"{neurons} neurons, {threads} thread(s), subnormals {subnormal}, spike queue {queue}: {args.device} "
                  f"{compiled['images_per_second']:.1f} img/s"
                  + (f", runtime loop {runtime['images_per_second']:.2f} img/s" if runtime else "")
                  + (f", BindsNET {bindsnet['images_per_second']:.2f} img/s" if bindsnet else ""), flush=True)

    if not args.build_only:
        print_table(rows)
    record = make_record({"rows": rows, "block_slots": args.block_slots, "membrane_update": args.membrane_update},
                         started)
    print(f"wrote {write_record(args.output, record)}")


if __name__ == "__main__":
    main()
