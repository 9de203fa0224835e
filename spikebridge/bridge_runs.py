"""Convert a trained rate-model run and verify the firing-rate equivalence on its test set.

``spikebridge bridge verify RUN`` writes ``RUN/bridge-<time>/`` with ``config.json`` (conversion
options, steps, image counts), ``equivalence.json`` (the results record: every figure with the
configuration and provenance, see :mod:`spikebridge.records`), ``equivalence.md`` (the tables)
and ``equivalence.png`` (correlation, error and accuracy against T). ReLU runs (MLP, CNN)
convert to integrate-and-fire neurons; log-network runs to Weber-Fechner coding.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from bridges.common import EquivalenceReport
from bridges.conversion import ConversionOptions, conversion_options, convert
from bridges.equivalence import format_tables, report_figure
from idx_datasets import load
from idx_datasets.atomic import write_bytes_atomic
from spikebridge.records import environment, make_record, portable_path, provenance, write_record
from spikebridge.runs import run_folder, save_figure, write_json
from spikebridge.training import Run, as_tensors, load_run

DEFAULT_STEPS = (8, 16, 32, 64, 128, 256, 512, 1024)
EQUIVALENCE_FILE = "equivalence.json"  # the results record of `bridge verify`


def convert_run(run: Run, options: ConversionOptions, calibration_images: int = 1_000) -> nn.Module:
    """The run's model converted with the first ``calibration_images`` training images. A log
    network takes Weber-Fechner coding with ``options.input_coding`` (the other options are the
    ReLU conversion's)."""
    calibration, _ = as_tensors(load(run.train_config.dataset, "train").head(calibration_images))
    return convert(run.model, calibration, **conversion_options(run.model, options))


def verify(run_dir: Path, steps: tuple[int, ...] = DEFAULT_STEPS, test_images: int | None = 2_000,
           options: ConversionOptions = ConversionOptions(), calibration_images: int = 1_000,
           progress_bar: bool = True, seed: int = 0, folder: Path | None = None) -> tuple[Path, EquivalenceReport]:
    """Measure the equivalence of ``run_dir``'s converted model; returns the output folder
    (``RUN/bridge-<time>/``, or ``folder`` if given). ``seed`` seeds torch's generator, which
    draws the spikes of Poisson input."""
    run = load_run(Path(run_dir))
    started = provenance(seeds={"rate_training": run.train_config.seed, "poisson_input": seed})
    torch.manual_seed(seed)
    snn = convert_run(run, options, calibration_images)
    images, labels = as_tensors(load(run.train_config.dataset, "test").head(test_images))
    with tqdm(total=len(labels) * len(steps), unit="img", desc="simulating", disable=not progress_bar) as bar:
        report = snn.equivalence(images, labels, list(steps), progress=bar)
    folder = run_folder(run.directory, "bridge", folder)
    config = {
        "kind": "bridge-verify", "run": portable_path(run.directory), "model": run.model_name,
        "options": asdict(options), "steps": list(steps), "test_images": len(labels),
        "calibration_images": calibration_images, "rate_training": asdict(run.train_config),
    }
    write_json(folder, "config.json", {**config, "environment": environment()})
    write_record(folder / EQUIVALENCE_FILE, make_record({"config": config, **report.to_json()}, started))
    write_bytes_atomic(folder / "equivalence.md", format_tables(report).encode())
    save_figure(report_figure(report), folder / "equivalence.png")
    return folder, report
