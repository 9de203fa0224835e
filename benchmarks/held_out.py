"""Choose a model's settings on held-out training images, never on the test set.

Each variant trains ``--model`` on the first 58,000 MNIST training images (``spikebridge.training``,
its run folder under a temporary directory) and is measured on the last 2,000, which no variant
trains on. A variant is a JSON object with the model's settings (``"settings"``) and the training
configuration's fields (``"training"``), e.g.
``'{"settings": {"readout": "membrane"}, "training": {"loss": "ce_membrane"}}'``.

    python benchmarks/held_out.py --model snn-gru --epochs 3 --variants '{}' '{"training": {"learning_rate": 5e-3}}' \
        --output benchmarks/results/held_out_snn_gru.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
from dataclasses import asdict

import torch

from idx_datasets import load
from spikebridge.records import make_record, provenance, write_record
from spikebridge.training import TrainConfig, accuracy, as_tensors, train

TRAIN_IMAGES = 58_000  # the last 60,000 - 58,000 = 2,000 training images are held out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--variants", nargs="+", type=json.loads, required=True, help="JSON objects, see above")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch threads")
    parser.add_argument("--output", required=True, help="the results record")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started = provenance(seeds={"training": TrainConfig.seed})
    images, labels = as_tensors(load("mnist", "train"))
    held_out = images[TRAIN_IMAGES:], labels[TRAIN_IMAGES:]
    rows = []
    with tempfile.TemporaryDirectory() as runs_root:
        for variant in args.variants:
            config = TrainConfig(**{"epochs": args.epochs, "train_images": TRAIN_IMAGES, "test_images": 1,
                                    **variant.get("training", {})})
            run = train(args.model, variant.get("settings"), config, runs_root=runs_root, progress=False)
            found = accuracy(run.model.eval(), *held_out)
            rows.append({"variant": variant, "training": asdict(config), "held_out_accuracy": found})
            print(f"{json.dumps(variant)}: {100 * found:.2f} % of {len(held_out[1]):,} held-out images", flush=True)
    result = {"model": args.model, "train_images": TRAIN_IMAGES, "held_out_images": len(held_out[1]), "rows": rows}
    print(f"wrote {write_record(args.output, make_record(result, started))}")


if __name__ == "__main__":
    main()
