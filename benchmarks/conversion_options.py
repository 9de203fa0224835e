"""Which conversion options reduce the error at few time steps, measured one against another.

On the trained MLP of ``benchmarks/baselines.py`` (full MNIST test set, constant-current input):
initial membrane 0 against half the threshold, and layer scales from the maximum activation
against the 99.9th and 99.99th percentiles (Rueckauer et al. 2017), and biases corrected for each T on
the calibration images (Li et al. 2021; ``bias_correction_steps``). Then an MLP of the same
shape trained with the QCFS activation (Bu et al. 2022, ``levels`` quantisation steps), whose
conversion should be lossless at T = levels. Prints a table and writes
``benchmarks/results/conversion_options.json``.

    python benchmarks/conversion_options.py --steps 1 2 4 8 16 32 --qcfs-levels 4
"""

from __future__ import annotations

import argparse
from pathlib import Path

from conversion import latest_run  # benchmarks/conversion.py, beside this script

from bridges import convert
from bridges.common import spiking_accuracy
from idx_datasets import load
from spikebridge.records import make_record, provenance, write_record
from spikebridge.training import TrainConfig, as_tensors, load_run, predict, train

RESULTS = Path(__file__).parent / "results" / "conversion_options.json"
OPTIONS = {  # name -> convert() options
    "max, v_init 0": {"percentile": 100.0, "v_init": 0.0},
    "max, v_init 0.5": {"percentile": 100.0, "v_init": 0.5},
    "99.9 %, v_init 0": {"percentile": 99.9, "v_init": 0.0},
    "99.9 %, v_init 0.5": {"percentile": 99.9, "v_init": 0.5},
    "99.99 %, v_init 0.5": {"percentile": 99.99, "v_init": 0.5},
    "99.9 %, v_init 0, bias-corrected for T": {"percentile": 99.9, "v_init": 0.0, "bias_correction_steps": "T"},
    "99.9 %, v_init 0.5, bias-corrected for T": {"percentile": 99.9, "v_init": 0.5, "bias_correction_steps": "T"},
}


def spiking_accuracies(model, calibration, images, labels, options: dict, steps: list[int]) -> list[float]:
    """Test accuracy at each T; ``bias_correction_steps="T"`` converts once per T, corrected for it."""
    if options.get("bias_correction_steps") != "T":
        snn = convert(model, calibration, **options)
        return [spiking_accuracy(snn, images, labels, t) for t in steps]
    return [spiking_accuracy(convert(model, calibration, **{**options, "bias_correction_steps": t}), images, labels, t)
            for t in steps]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", nargs="+", type=int, default=[1, 2, 4, 8, 16, 32])
    parser.add_argument("--qcfs-levels", type=int, default=4)
    parser.add_argument("--qcfs-epochs", type=int, default=10)
    parser.add_argument("--output", type=Path, default=RESULTS, help="the results record")
    args = parser.parse_args()
    started = provenance(seeds={"qcfs_training": TrainConfig().seed})

    calibration, _ = as_tensors(load("mnist", "train").head(1_000))
    images, labels = as_tensors(load("mnist", "test"))
    relu_run = load_run(latest_run("mlp"))
    qcfs_root = Path(f"runs/baselines/qcfs{args.qcfs_levels}")
    qcfs_runs = sorted(qcfs_root.glob("mlp-*"))
    if qcfs_runs:
        qcfs_run = load_run(qcfs_runs[-1])
    else:  # trained once, like the baselines, and kept beside them
        qcfs_run = train("mlp", {"activation": "qcfs", "levels": args.qcfs_levels},
                         TrainConfig(epochs=args.qcfs_epochs), runs_root=qcfs_root)
    networks = [(f"ReLU MLP ({relu_run.directory.name}), {name}", relu_run.model, options)
                for name, options in OPTIONS.items()]
    networks.append((f"QCFS L={args.qcfs_levels} MLP ({qcfs_run.directory.name}), trained thresholds, v_init 0.5",
                     qcfs_run.model, {"v_init": 0.5}))
    rows = []
    print("| network, options | ANN | " + " | ".join(f"T = {t}" for t in args.steps) + " |")
    print("| --- | ---: |" + " ---: |" * len(args.steps))
    for name, model, options in networks:
        ann = float((predict(model, images) == labels).float().mean())
        spiking = spiking_accuracies(model, calibration, images, labels, options, args.steps)
        rows.append({"network": name, "options": options, "ann_accuracy": ann,
                     "spiking_accuracy": dict(zip(args.steps, spiking, strict=True))})
        print(f"| {name} | {100 * ann:.2f} % | " + " | ".join(f"{100 * a:.2f} %" for a in spiking) + " |", flush=True)
    record = make_record({"settings": {**vars(args), "output": str(args.output)}, "rows": rows}, started)
    print(f"\nwritten to {write_record(args.output, record)}")


if __name__ == "__main__":
    main()
