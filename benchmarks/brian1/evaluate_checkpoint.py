"""Evaluate a checkpoint of the authors' Diehl & Cook (2015) script here, and write our initial weights for it.

``evaluate DIR IMAGES`` loads ``DIR/weights-IMAGES.npy`` ([784, n_e]) and ``DIR/theta_mV-IMAGES.npy``,
written by the script that ``prepare_authors_script.py`` makes, into this project's network state
(delays and the rest from ``initial_state`` with ``--seed``) and runs the frozen evaluation of
``spikebridge diehl-cook evaluate``: neurons labelled from the first training images, then the test
images classified, with the ``authors-brian1`` preset unless told otherwise. It prints the accuracy
and writes a results record (``spikebridge.records``).

``initial-weights`` writes the input weights ``[784, N]`` that ``spikebridge diehl-cook train
--neurons N --seed S`` starts from, for the script's ``--initial-weights``.

    python benchmarks/brian1/evaluate_checkpoint.py initial-weights --neurons 100 --seed 0 --output w0.npy
    python benchmarks/brian1/evaluate_checkpoint.py evaluate CHECKPOINT_DIR 60000 --labelling-images 10000
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import sys
from functools import partial
from pathlib import Path

import numpy as np

from idx_datasets import DataError
from idx_datasets.atomic import write_bytes_atomic
from spikebridge.diehl_cook_runs import EVALUATION_SEED_OFFSET, DiehlCookRunConfig, build_dir_root, frozen_evaluation
from spikebridge.records import make_record, portable_path, provenance, write_record
from spiking.block_runner import DEVICES, DeviceError, make_runner
from spiking.diehl_cook import (
    INPUT_SIZE,
    PRESETS,
    DiehlCookParameters,
    initial_state,
    with_overrides,
)


def load_array(path: Path) -> np.ndarray:
    """A float array from an ``.npy`` file; exits with one line if it cannot be read."""
    try:
        return np.load(path).astype(np.float64)
    except (OSError, ValueError) as exc:
        sys.exit(f"cannot read {path}: {exc}")


def evaluate(args: argparse.Namespace) -> None:
    """Label, classify, print the accuracy and write the record."""
    weights_path = args.checkpoint_dir / f"weights-{args.images}.npy"
    theta_path = args.checkpoint_dir / f"theta_mV-{args.images}.npy"
    weights, theta_mV = load_array(weights_path), load_array(theta_path)
    if weights.ndim != 2 or weights.shape[0] != INPUT_SIZE:
        sys.exit(f"{weights_path} holds shape {weights.shape}, expected ({INPUT_SIZE}, neurons)")
    neurons = weights.shape[1]
    if theta_mV.shape != (neurons,):
        sys.exit(f"{theta_path} holds shape {theta_mV.shape}, expected ({neurons},)")
    params = with_overrides(DiehlCookParameters(), PRESETS[args.preset])
    seed = args.seed + EVALUATION_SEED_OFFSET
    started = provenance(seeds={"network": args.seed, "evaluation": seed}, threads={"openmp": args.threads})
    state = dataclasses.replace(initial_state(params, neurons, np.random.default_rng(args.seed)),
                                weights=weights, theta_mV=theta_mV)
    new_runner = partial(make_runner, args.device, params, neurons, DiehlCookRunConfig().block_slots, build_dir_root(),
                         args.threads)
    figures, _ = frozen_evaluation(new_runner, state, "mnist", args.labelling_images, args.test_images, seed)
    results = {
        "checkpoint": {"weights": portable_path(weights_path), "theta_mV": portable_path(theta_path),
                       "training_images_seen": args.images},
        "preset": args.preset,
        **figures,
    }
    record = args.record or args.checkpoint_dir / f"evaluation-{args.images}-{args.preset}.json"
    write_record(record, make_record(results, started))
    print(f"test accuracy {figures['test_accuracy']:.2%} ({figures['test_images']} test images, labels from "
          f"{figures['labelling_images']} training images)")
    print(f"wrote {record}")


def write_initial_weights(args: argparse.Namespace) -> None:
    """Write ``initial_state(...).weights`` ([784, N]) of this project's seed as ``.npy``."""
    weights = initial_state(DiehlCookParameters(), args.neurons, np.random.default_rng(args.seed)).weights
    buffer = io.BytesIO()
    np.save(buffer, weights)
    write_bytes_atomic(args.output, buffer.getvalue())
    print(f"wrote {args.output} ({weights.shape[0]} x {weights.shape[1]}, seed {args.seed})")


def positive(text: str) -> int:
    """An argparse type: an integer >= 1."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return int(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("evaluate", help="evaluate a checkpoint of the authors' script")
    run.add_argument("checkpoint_dir", type=Path, help="the script's --checkpoint-dir")
    run.add_argument("images", type=positive, help="training examples the checkpoint was taken after")
    run.add_argument("--preset", choices=sorted(PRESETS), default="authors-brian1")
    run.add_argument("--labelling-images", type=positive, default=60_000)
    run.add_argument("--test-images", type=positive, default=10_000)
    run.add_argument("--seed", type=int, default=0, help="of the delays and of the evaluation's Poisson spikes")
    run.add_argument("--device", choices=DEVICES, default="cpp_standalone")
    run.add_argument("--threads", type=positive, default=1)
    run.add_argument("--record", type=Path, help="default: CHECKPOINT_DIR/evaluation-IMAGES-PRESET.json")
    run.set_defaults(handler=evaluate)
    draw = commands.add_parser("initial-weights", help="write this project's initial input weights as .npy")
    draw.add_argument("--neurons", type=positive, required=True)
    draw.add_argument("--seed", type=int, default=0, help="as spikebridge diehl-cook train --seed")
    draw.add_argument("--output", type=Path, required=True)
    draw.set_defaults(handler=write_initial_weights)
    args = parser.parse_args()
    try:
        args.handler(args)
    except (DataError, DeviceError) as exc:
        sys.exit(str(exc))


if __name__ == "__main__":
    main()
