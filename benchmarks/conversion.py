"""ANN-to-SNN conversion: this project against the converters researchers use today.

The same trained MLP (784-1200-1200-10) and CNN (Gupta & Naveed) are converted by ``bridges.convert``
(with the defaults, and with the biases corrected for each T on the calibration images),
SpikingJelly's ``ann2snn`` (rate-coding recipe, 99.9 % normalisation) and sinabs'
``from_model`` (after ``normalize_weights`` at the 99.9th percentile), each fed the test images
as constant input current for T steps. Printed and saved (``benchmarks/results/conversion.json``):
accuracy on the test images and seconds to simulate all of them, per T, in one process on one
machine, and for each peer the paired comparison with this project on the same images: how many
images only this project gets right, how many only the peer, and McNemar's exact two-sided p
(the binomial test of those two counts). Conversion itself is not timed. A peer that is not
installed is skipped, with a note. Each row keeps its predictions (one digit per test image), so
that converters run in separate processes, one per core, can still be paired: ``--pair-with
FILE`` takes this project's predictions from an earlier results file when this run leaves it out.

    python benchmarks/conversion.py                       # both models, T in 8..256, full test set
    python benchmarks/conversion.py --models mlp --steps 4 8 16
    python benchmarks/conversion.py --models cnn --steps 256 --batch-size 25 --converters "sinabs from_model" \
        --pair-with benchmarks/results/conversion_cnn_retrained_t256.json

Peers: ``make install-peers`` (SpikingJelly and sinabs without their dependency pins, which
would replace the CPU torch build, plus what they import).
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from bridges import convert
from idx_datasets import load
from spikebridge.records import make_record, portable_path, provenance, write_record
from spikebridge.training import as_tensors, load_run, predict

RESULTS = Path(__file__).parent / "results" / "conversion.json"  # default output
CALIBRATION_IMAGES = 1_000
PERCENTILE = 99.9
# images x T per sinabs batch: it holds every layer's output for all of them (the CNN at 12,800: 13.7 GB;
# at 25,600 it was killed for memory in 24 GiB)
SINABS_FRAMES = 12_800


def paired(ours_right: torch.Tensor, peer_right: torch.Tensor) -> dict:
    """Images only this project gets right, only the peer, and McNemar's exact two-sided p."""
    from scipy.stats import binomtest

    only_ours, only_peer = int((ours_right & ~peer_right).sum()), int((peer_right & ~ours_right).sum())
    discordant = only_ours + only_peer
    p_value = binomtest(only_ours, discordant, 0.5).pvalue if discordant else 1.0
    return {"only_ours_right": only_ours, "only_peer_right": only_peer, "mcnemar_p": p_value}


def encode_predictions(predictions: torch.Tensor) -> str:
    """Class predictions as one digit per image (MNIST has ten classes)."""
    if predictions.numel() and not 0 <= int(predictions.min()) <= int(predictions.max()) <= 9:
        raise ValueError("predictions are stored one digit per image, so only for at most ten classes")
    return "".join(map(str, predictions.tolist()))


def decode_predictions(digits: str) -> torch.Tensor:
    return torch.tensor([int(digit) for digit in digits])


def earlier_predictions(paths: list[Path], test_images: int) -> dict[tuple[str, int], torch.Tensor]:
    """This project's predictions per (trained network's run folder, T) from earlier results files."""
    found = {}
    for path in paths:
        results = json.loads(path.read_text())
        if results["settings"]["test_images"] != test_images:
            raise SystemExit(f"{path} was measured on {results['settings']['test_images']} test images, "
                             f"this run uses {test_images}")
        for row in results["rows"]:
            if row["converter"] == "this project" and "predictions" in row:
                found[row["network"], row["steps"]] = decode_predictions(row["predictions"])
    return found


def run_ours(ann, calibration, images, steps, batch_size, **options):
    """Predictions for ``images`` and the seconds the simulation took (as every ``run_*``)."""
    snn = convert(ann, calibration, percentile=PERCENTILE, **options)  # simulates in cache-sized groups itself
    snn(images[:1], 1)  # loads the compiled CPU kernels (compiles them on a machine's first run), untimed
    started = time.perf_counter()
    predictions = snn(images, steps).argmax(1)
    return predictions, time.perf_counter() - started


def batches(images: torch.Tensor, batch_size: int, steps: int, name: str):
    """``images`` in batches of ``batch_size``, with a progress bar (a peer at large T runs for hours)."""
    return tqdm(images.split(batch_size), desc=f"{name}, T = {steps}", unit="batch", leave=False)


def run_spikingjelly(ann, calibration, images, steps, batch_size):
    from spikingjelly.activation_based import ann2snn, functional

    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(calibration, torch.zeros(len(calibration))),
                                         batch_size=100)
    recipe = ann2snn.RateCodingRecipe(dataloader=loader, mode=f"{PERCENTILE}%")
    snn = ann2snn.FXConverter(recipe=recipe, device="cpu").convert(copy.deepcopy(ann)).eval()
    started, predictions = time.perf_counter(), []
    with torch.no_grad():
        for x in batches(images, batch_size, steps, "SpikingJelly"):
            functional.reset_net(snn)
            predictions.append(sum(snn(x) for _ in range(steps)).argmax(1))
    return torch.cat(predictions), time.perf_counter() - started


def run_sinabs(ann, calibration, images, steps, batch_size):
    from sinabs.from_torch import from_model
    from sinabs.utils import normalize_weights

    model = copy.deepcopy(ann).eval()
    names = list(dict(model.named_children()))
    relus = [n for n in names if isinstance(model.get_submodule(n), nn.ReLU)]
    params = [n for n in names if isinstance(model.get_submodule(n), (nn.Linear, nn.Conv2d))]
    normalize_weights(model, calibration, output_layers=relus, param_layers=params[:len(relus)],
                      percentile=PERCENTILE)
    snn = from_model(model, input_shape=tuple(images.shape[1:]), num_timesteps=steps).spiking_model.eval()
    started, predictions = time.perf_counter(), []
    with torch.no_grad():
        for x in batches(images, max(1, min(batch_size, SINABS_FRAMES // steps)), steps, "sinabs"):
            for layer in snn.modules():
                if hasattr(layer, "reset_states"):
                    layer.reset_states()
            repeated = x.unsqueeze(1).expand(len(x), steps, *x.shape[1:]).flatten(0, 1)
            predictions.append(snn(repeated).unflatten(0, (len(x), steps)).sum(1).argmax(1))
    return torch.cat(predictions), time.perf_counter() - started


def run_ours_bias_corrected(ann, calibration, images, steps, batch_size):
    """This project with the biases corrected for ``steps`` steps on the calibration images (untimed)."""
    return run_ours(ann, calibration, images, steps, batch_size, bias_correction_steps=steps)


CONVERTERS = {"this project": run_ours, "this project, bias-corrected": run_ours_bias_corrected,
              "SpikingJelly ann2snn": run_spikingjelly, "sinabs from_model": run_sinabs}
PEER_MODULES = {"SpikingJelly ann2snn": "spikingjelly", "sinabs from_model": "sinabs"}


def latest_run(kind: str) -> Path:
    candidates = sorted(Path("runs/baselines").glob(f"{kind}-*"))
    if not candidates:
        raise SystemExit(f"no trained {kind} under runs/baselines: run `python benchmarks/baselines.py` first")
    return candidates[-1]


def save(path: Path, started: dict, settings: dict, rows: list[dict], finished: bool) -> None:
    """Write the results record with the rows so far (atomically)."""
    write_record(path, make_record({"settings": settings, "finished": finished, "rows": rows}, started))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["mlp", "cnn"], choices=["mlp", "cnn"])
    parser.add_argument("--steps", nargs="+", type=int, default=[8, 16, 32, 64, 128, 256])
    parser.add_argument("--test-images", type=int, default=10_000)
    parser.add_argument("--batch-size", type=int, default=100,
                        help="images per batch for the peers (this project groups images itself); SpikingJelly's "
                             "CNN ran 1.7x slower in batches of 500 than of 100; sinabs' batches hold at most "
                             f"{SINABS_FRAMES} frames (images x T)")
    parser.add_argument("--converters", nargs="+", default=list(CONVERTERS), choices=list(CONVERTERS))
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch threads")
    parser.add_argument("--output", type=Path, default=RESULTS, help="JSON file for the results")
    parser.add_argument("--pair-with", nargs="+", type=Path, default=[], metavar="FILE",
                        help="results files whose 'this project' rows pair with the peers of this run")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started = provenance(seeds={"calibration": "first 1,000 training images; no random draws"})

    import importlib.util

    available = [name for name in args.converters
                 if name not in PEER_MODULES or importlib.util.find_spec(PEER_MODULES[name]) is not None]
    for name in sorted(set(args.converters) - set(available)):
        print(f"skipping {name}: `{PEER_MODULES[name]}` is not installed (make install-peers)")
    ours_earlier = earlier_predictions(args.pair_with, args.test_images)
    networks = {model_name: latest_run(model_name) for model_name in args.models}
    if args.pair_with and "this project" not in available:
        unpaired = [f"{model_name} ({network}) at T = {steps}" for model_name, network in networks.items()
                    for steps in args.steps if (str(network), steps) not in ours_earlier]
        if unpaired:
            raise SystemExit(f"--pair-with has no 'this project' row for {', '.join(unpaired)}: "
                             "add --converters 'this project' or name a file that has them")
    calibration, _ = as_tensors(load("mnist", "train").head(CALIBRATION_IMAGES))
    images, labels = as_tensors(load("mnist", "test").head(args.test_images))
    rows, settings = [], {**vars(args), "output": str(args.output), "pair_with": [str(p) for p in args.pair_with]}
    for model_name, network in networks.items():
        run = load_run(network)
        ann = run.model.eval()
        ann_accuracy = float((predict(ann, images) == labels).float().mean())
        print(f"\n{model_name} ({run.directory}), ANN {100 * ann_accuracy:.2f} % on {len(labels)} test images")
        print("| T | " + " | ".join(f"{name}: accuracy, seconds" for name in available) + " |")
        print("| ---: |" + " ---: |" * len(available))
        for steps in args.steps:
            cells, earlier = [], ours_earlier.get((str(run.directory), steps))
            ours_right = None if earlier is None else earlier == labels
            for name in available:
                predictions, seconds = CONVERTERS[name](ann, calibration, images, steps, args.batch_size)
                right = predictions == labels
                accuracy = float(right.float().mean())
                row = {"model": model_name, "network": portable_path(run.directory), "converter": name, "steps": steps,
                       "accuracy": accuracy, "seconds": seconds, "ann_accuracy": ann_accuracy,
                       "predictions": encode_predictions(predictions)}
                cell = f"{100 * accuracy:.2f} % ({100 * (accuracy - ann_accuracy):+.2f}), {seconds:.1f} s"
                if name == "this project":
                    ours_right = right
                elif ours_right is not None:
                    row["versus_this_project"] = versus = paired(ours_right, right)
                    cell += (f" [only ours {versus['only_ours_right']}, only peer {versus['only_peer_right']}, "
                             f"p {versus['mcnemar_p']:.2f}]")
                rows.append(row)
                save(args.output, started, settings, rows, finished=False)  # an interrupted run keeps what it measured
                cells.append(cell)
            print(f"| {steps} | " + " | ".join(cells) + " |", flush=True)
    save(args.output, started, settings, rows, finished=True)
    print(f"\nwritten to {args.output}")


if __name__ == "__main__":
    main()
