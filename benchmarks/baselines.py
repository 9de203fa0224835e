"""Full-data accuracies of the rate baselines of Gupta & Naveed ("How close are ANNs to the brain?"),
beside the paper's figures.

Trains the MLP, CNN and GRU on all 60,000 MNIST training images and evaluates on all 10,000
test images. Re-running resumes unfinished runs under ``runs/baselines/`` from their last
checkpoint. Prints a markdown table and writes the results record
``benchmarks/results/baselines.json`` (``--output`` elsewhere).

    python benchmarks/baselines.py [--models mlp cnn gru]
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

from spikebridge.records import make_record, portable_path, provenance, write_record
from spikebridge.training import TrainConfig, resume, train

RUNS_ROOT = Path("runs/baselines")
RESULTS = Path(__file__).parent / "results" / "baselines.json"

# model -> (training configuration, target accuracy, Gupta & Naveed's figure)
PLAN = {
    "mlp": (TrainConfig(epochs=20), 0.983, None),
    "cnn": (TrainConfig(epochs=12), 0.993, 0.9950),
    "gru": (TrainConfig(epochs=15), 0.985, 0.9899),
}


def _unfinished_run(model: str, config: TrainConfig) -> Path | None:
    for directory in sorted(RUNS_ROOT.glob(f"{model}-*"), reverse=True):
        try:
            saved = json.loads((directory / "config.json").read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if saved.get("train") == asdict(config) and saved.get("model_config") is not None:
            return directory
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=list(PLAN), choices=list(PLAN))
    parser.add_argument("--output", type=Path, default=RESULTS, help="the results record")
    args = parser.parse_args()
    started = provenance(seeds={"training": TrainConfig().seed})

    rows = []
    for model in args.models:
        config, target, paper_figure = PLAN[model]
        existing = _unfinished_run(model, config)
        run = resume(existing) if existing else train(model, None, config, runs_root=RUNS_ROOT)
        rows.append(
            {
                "model": model,
                "test_accuracy": run.test_accuracy,
                "target": target,
                "paper": paper_figure,
                "meets_target": run.test_accuracy >= target,
                "epochs": config.epochs,
                "train_seconds": sum(r["seconds"] for r in run.history),
                "run": portable_path(run.directory),
                "train_config": asdict(config),
            }
        )

    print("| model | test accuracy | target | Gupta & Naveed | epochs | training time |")
    print("| --- | --- | --- | --- | --- | --- |")
    for row in rows:
        paper = f"{100 * row['paper']:.2f} %" if row["paper"] else "—"
        print(
            f"| {row['model']} | {100 * row['test_accuracy']:.2f} % | ≥ {100 * row['target']:.1f} % | {paper} "
            f"| {row['epochs']} | {row['train_seconds'] / 60:.1f} min |"
        )
    print(f"wrote {write_record(args.output, make_record({'rows': rows}, started))}")


if __name__ == "__main__":
    main()
