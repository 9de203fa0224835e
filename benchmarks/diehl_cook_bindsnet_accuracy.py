"""Accuracy of our Diehl & Cook network and BindsNET's after the same training images.

Both train once on the first ``--train-images`` MNIST training images (ours: the paper's model in
compiled blocks, re-presentations included; BindsNET: its MNIST example's settings, see
``benchmarks/bindsnet_diehl_cook.py``), are frozen, label each neuron with the class it answers
most on the first ``--labelling-images`` training images, and classify the first
``--test-images`` test images by the class whose neurons answer most (the same code for both:
``spiking.diehl_cook.assign_labels`` and ``classify``). Prints a table with McNemar's exact test
on the same test images and writes ``benchmarks/results/diehl_cook_bindsnet_accuracy.json``.

    python benchmarks/diehl_cook_bindsnet_accuracy.py [--neurons 100] [--train-images 1000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from bindsnet_diehl_cook import bindsnet_responses  # beside this script
from conversion import paired  # benchmarks/conversion.py, beside this script

from idx_datasets import load
from spikebridge.diehl_cook_runs import (
    EVALUATION_SEED_OFFSET,
    DiehlCookRunConfig,
    frozen_predictions,
    load_checkpoint,
    runner_factory,
    train,
)
from spikebridge.records import make_record, provenance, write_record
from spiking.diehl_cook import DiehlCookParameters, assign_labels, classify

RESULTS = Path(__file__).parent / "results" / "diehl_cook_bindsnet_accuracy.json"


def ours(neurons: int, train_images: int, labelling, test, seed: int) -> tuple[np.ndarray, float]:
    """Test predictions of our network trained on the first ``train_images`` images, and the seconds."""
    started = time.perf_counter()
    config = DiehlCookRunConfig(neurons=neurons, images=train_images, seed=seed)
    params = DiehlCookParameters()
    with tempfile.TemporaryDirectory() as runs:
        state, _ = load_checkpoint(train(config, runs_root=Path(runs), params=params))
    predictions, *_ = frozen_predictions(runner_factory(config, params, state.delays_ms), state, labelling, test,
                                         seed + EVALUATION_SEED_OFFSET)
    return predictions, time.perf_counter() - started


def bindsnet(neurons: int, training, labelling, test, seed: int) -> tuple[np.ndarray, float]:
    started = time.perf_counter()
    label_counts, test_counts = bindsnet_responses(neurons, training.images, [labelling.images, test.images],
                                                   threads=1, seed=seed)
    assignments = assign_labels(label_counts, labelling.labels.astype(np.int64))
    return classify(test_counts, assignments), time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--neurons", type=int, default=100)
    parser.add_argument("--train-images", type=int, default=1_000)
    parser.add_argument("--labelling-images", type=int, default=1_000)
    parser.add_argument("--test-images", type=int, default=1_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    started = provenance(seeds={"networks": args.seed}, threads={"openmp": 1, "torch": 1})

    training = load("mnist", "train")
    labelling, test = training.head(args.labelling_images), load("mnist", "test").head(args.test_images)
    labels = test.labels.astype(np.int64)
    ours_predictions, ours_seconds = ours(args.neurons, args.train_images, labelling, test, args.seed)
    peer_predictions, peer_seconds = bindsnet(args.neurons, training.head(args.train_images), labelling, test,
                                              args.seed)
    ours_right, peer_right = ours_predictions == labels, peer_predictions == labels
    comparison = paired(torch.as_tensor(ours_right), torch.as_tensor(peer_right))
    rows = {"ours": {"accuracy": float(ours_right.mean()), "seconds": ours_seconds},
            "bindsnet": {"accuracy": float(peer_right.mean()), "seconds": peer_seconds}}
    print("\n| network | test accuracy | seconds (train, label, test) |\n| --- | ---: | ---: |")
    for name, row in rows.items():
        print(f"| {name} | {100 * row['accuracy']:.2f} % | {row['seconds']:.0f} |")
    print(f"only ours right: {comparison['only_ours_right']}, only BindsNET right: {comparison['only_peer_right']}, "
          f"McNemar p = {comparison['mcnemar_p']:.3g}")
    record = make_record({"neurons": args.neurons, "train_images": args.train_images,
                          "labelling_images": args.labelling_images, "test_images": args.test_images,
                          "rows": rows, "paired": comparison}, started)
    print(f"wrote {write_record(args.output, record)}")


if __name__ == "__main__":
    main()
