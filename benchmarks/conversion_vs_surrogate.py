"""Conversion against surrogate training, side by side at the same number of steps T.

For one rate network (a ``spikebridge train mlp`` or ``cnn`` run) and its spiking counterparts
trained directly at several T (``spikebridge train snn-mlp --set steps=T`` runs): at each T the
converted network (integrate-and-fire, 99.9th-percentile scales, constant-current input,
calibrated on 1,000 training images) and the trained one, on the same test images, each measured
by :func:`spiking.activity.summarise`: accuracy, synaptic operations per image (spike-driven
events plus the first layer's multiply-accumulates, computed once under constant current), spikes
per image; and the training time each needed (the rate network's training plus the conversion,
against the spiking network's training), read from the run folders' histories.

    python benchmarks/conversion_vs_surrogate.py --rate-run RUN --surrogate-runs RUN [RUN ...] \
        [--test-images N] [--output benchmarks/results/conversion_vs_surrogate_mlp.json]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import asdict
from pathlib import Path

import torch

from bridges.conversion import ConversionOptions
from idx_datasets import load
from spikebridge.bridge_runs import convert_run
from spikebridge.records import make_record, provenance, write_record
from spikebridge.training import as_tensors, load_run
from spiking.activity import summarise


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate-run", type=Path, required=True, help="run folder of the rate network")
    parser.add_argument("--surrogate-runs", type=Path, nargs="+", required=True,
                        help="run folders of its spiking counterpart, one per T")
    parser.add_argument("--test-images", type=int, default=None, help="the first N test images (default: all)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch threads")
    parser.add_argument("--output", default="benchmarks/results/conversion_vs_surrogate_mlp.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rate = load_run(args.rate_run)
    trained = sorted((load_run(folder) for folder in args.surrogate_runs), key=lambda run: run.model.config.steps)
    if any(run.model_name != f"snn-{rate.model_name}" for run in trained):
        parser.error(f"the surrogate runs must train snn-{rate.model_name}")
    started = provenance(seeds={"rate_training": rate.train_config.seed,
                                "surrogate_training": sorted({run.train_config.seed for run in trained})})
    images, labels = as_tensors(load(rate.train_config.dataset, "test").head(args.test_images))
    clock = time.perf_counter()
    options = ConversionOptions()
    snn = convert_run(rate, options)
    conversion_seconds = time.perf_counter() - clock

    rows = []
    for run in trained:
        network = run.model.eval()
        steps = network.config.steps
        converted = summarise(lambda batch, steps=steps: snn.run(batch, steps), images, labels)
        surrogate = summarise(network.run, images, labels)
        rows.append({"steps": steps, "converted": asdict(converted), "surrogate": asdict(surrogate),
                     "surrogate_run": {"model_config": asdict(network.config), "training": asdict(run.train_config),
                                       "training_seconds": run.training_seconds}})
        print(f"T = {steps}: converted {100 * converted.accuracy:.2f} % ({converted.synaptic_ops:,.0f} ops), "
              f"surrogate-trained {100 * surrogate.accuracy:.2f} % ({surrogate.synaptic_ops:,.0f} ops)", flush=True)
    result = {
        "model": rate.model_name, "test_images": len(labels), "conversion": asdict(options),
        "rate_accuracy": rate.test_accuracy, "ann_macs": snn.ann_macs(),
        "rate_training": {"training": asdict(rate.train_config), "training_seconds": rate.training_seconds},
        "conversion_seconds": conversion_seconds, "rows": rows,
    }
    print(f"wrote {write_record(args.output, make_record(result, started))}")


if __name__ == "__main__":
    main()
