"""The job kinds a sweep can run: each checks its settings and runs one cell in its folder.

A job kind is one entry of :data:`JOB_KINDS`. Its settings are a flat mapping of names to
values (the spec's fixed ``settings`` plus the cell's axis values); ``check`` refuses an unknown
or invalid setting with one line that names the known ones, ``run`` trains or measures in the
cell's folder, resuming what an earlier attempt left there, and returns the cell's metrics
(name → number). A new model that trains through the one training loop needs no new kind.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

Settings = Mapping[str, Any]
CELL_FILE = "cell.json"  # the sweep's record of a cell, kept when an attempt's leftovers are cleared


def _resumable(folder: Path, checkpoint: str | None) -> bool:
    """True if an earlier attempt left ``checkpoint`` in ``folder`` to resume from; otherwise
    clear whatever it left (a start without a checkpoint is not reproducible), so the job starts
    afresh."""
    if checkpoint is not None and (folder / checkpoint).exists():
        return True
    for entry in folder.iterdir() if folder.exists() else []:
        if entry.name != CELL_FILE:
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    return False


def _split(settings: Settings, prefix: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """``settings`` without the names that start with ``prefix``, and those names without it."""
    plain = {key: value for key, value in settings.items() if not key.startswith(prefix)}
    prefixed = {key.removeprefix(prefix): value for key, value in settings.items() if key.startswith(prefix)}
    return plain, prefixed


def _refuse_unknown(kind: str, given: Settings, known: list[str]) -> None:
    if unknown := sorted(set(given) - set(known)):
        raise ValueError(f"job kind {kind!r} has no setting {unknown[0]!r}; it has {sorted(known)}")


def _names(config_class: type) -> list[str]:
    return [field.name for field in fields(config_class)]


# --- train: a rate model through the one training loop ---------------------------------------------

def _train_parts(settings: Settings):
    """(model name, model overrides, TrainConfig) from ``model``, ``model.<field>`` and TrainConfig fields."""
    from spikebridge import models
    from spikebridge.training import TrainConfig

    plain, model_overrides = _split(settings, "model.")
    if "model" not in plain:
        raise ValueError(f"job kind 'train' needs the setting 'model' (one of {sorted(models.MODELS)})")
    model = plain.pop("model")
    _refuse_unknown("train", plain, ["model", *_names(TrainConfig)])
    models.build(model, model_overrides)  # refuses an unknown model, model setting or invalid value
    return model, model_overrides, TrainConfig(**plain)


def _run_train(settings: Settings, folder: Path, progress: bool) -> dict[str, float]:
    from spikebridge.training import CHECKPOINT_FILE, resume, train

    model, overrides, config = _train_parts(settings)
    if _resumable(folder, CHECKPOINT_FILE):
        run = resume(folder, progress=progress)
    else:
        run = train(model, overrides, config, progress=progress, directory=folder)
    last = run.history[-1]
    return {"test_accuracy": run.test_accuracy, "train_accuracy": last["train_accuracy"],
            "train_loss": last["train_loss"], "seconds": sum(epoch["seconds"] for epoch in run.history)}


# --- train-prune: train, then measure test accuracy with whole hidden neurons pruned ---------------------

PRUNE_LEVELS = [0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5]  # Shader's ten levels
SCORING_IMAGES = 2_000  # training images a spike-weighted score is measured on


def _pruning_criteria() -> dict[str, Callable]:
    """Pruning scores by name: (network, training images) -> one score per hidden neuron and layer."""
    from rate_models.positional import mean_squared_weight
    from spiking.positional import spike_weighted_scores

    return {"mean_squared_weight": lambda network, images: mean_squared_weight(network),
            "spike_weighted": spike_weighted_scores}


def _prune_parts(settings: Settings):
    plain = {name: value for name, value in settings.items() if not name.startswith("prune_")}
    pruning = {name: value for name, value in settings.items() if name.startswith("prune_")}
    _refuse_unknown("train-prune", pruning, ["prune_levels", "prune_criterion"])
    levels = pruning.get("prune_levels", PRUNE_LEVELS)
    if not all(0 <= level < 1 for level in levels):
        raise ValueError(f"pruning levels must be in [0, 1), got {levels}")
    criterion = pruning.get("prune_criterion", "mean_squared_weight")
    if criterion not in (criteria := _pruning_criteria()):
        raise ValueError(f"unknown pruning criterion {criterion!r}; choose one of {sorted(criteria)}")
    return _train_parts(plain), plain, levels, criteria[criterion]


def _run_prune(settings: Settings, folder: Path, progress: bool) -> dict[str, float]:
    import torch

    from idx_datasets import load
    from rate_models.positional import prune
    from spikebridge.training import accuracy, as_tensors, load_run

    (_, _, config), plain, levels, criterion = _prune_parts(settings)
    metrics = _run_train(plain, folder, progress)
    network = load_run(folder).model.eval()
    test_x, test_y = as_tensors(load(config.dataset, "test").head(config.test_images))
    scoring_x, _ = as_tensors(load(config.dataset, "train").head(SCORING_IMAGES))
    torch.manual_seed(config.seed)  # Poisson input of a spiking network: the same draws on a rerun
    scores = criterion(network, scoring_x)
    for level in levels:
        metrics[f"pruned_{level}"] = accuracy(prune(network, level, scores), test_x, test_y)
    return metrics


# --- train-split: the double task, then accuracy before and after the split into task groups ---------

def _run_split(settings: Settings, folder: Path, progress: bool) -> dict[str, float]:
    from rate_models.spatial import split_tasks
    from spikebridge.spatial_plots import split_positions, training_costs
    from spikebridge.task_split import split_report
    from spikebridge.training import dataset_tensors, load_run

    _, _, config = _train_parts(settings)
    metrics = _run_train(settings, folder, progress)
    images, labels = dataset_tensors(config.dataset, "test", config.test_images)
    run = load_run(folder)
    report = split_report(run.model, images, labels)
    training_costs(run.history, folder / "costs.png")
    if run.model.positions is not None:
        split_positions(run.model, split_tasks(run.model), folder / "split_positions.png")
    return metrics | {name: value for name, value in report.items() if isinstance(value, float)}


# --- diehl-cook: train and evaluate the Diehl & Cook (2015) network -------------------------------------

EVALUATION_SETTINGS = {"labelling_images": 60_000, "test_images": 10_000}


def _diehl_cook_parts(settings: Settings):
    from spikebridge.diehl_cook_runs import DiehlCookRunConfig
    from spiking.diehl_cook import PRESETS, DiehlCookParameters, with_overrides

    plain, constants = _split(settings, "params.")
    _refuse_unknown("diehl-cook", plain, [*_names(DiehlCookRunConfig), "preset", *EVALUATION_SETTINGS])
    preset = plain.pop("preset", "paper")
    if preset not in PRESETS:
        raise ValueError(f"no Diehl & Cook preset {preset!r}; choose one of {sorted(PRESETS)}")
    evaluation = {name: plain.pop(name, default) for name, default in EVALUATION_SETTINGS.items()}
    params = with_overrides(DiehlCookParameters(), {**PRESETS[preset], **constants})
    return DiehlCookRunConfig(**plain), params, evaluation


def _run_diehl_cook(settings: Settings, folder: Path, progress: bool) -> dict[str, float]:
    from spikebridge import diehl_cook_runs

    config, params, evaluation = _diehl_cook_parts(settings)
    if _resumable(folder, diehl_cook_runs.CHECKPOINT_FILE):
        diehl_cook_runs.resume(folder, progress_bar=progress)
    else:
        diehl_cook_runs.train(config, params=params, progress_bar=progress, directory=folder)
    record = diehl_cook_runs.evaluate(folder, evaluation["labelling_images"], evaluation["test_images"],
                                      progress_bar=progress)
    training = record["training"]
    return {"test_accuracy": record["test_accuracy"], "presentations_per_image": training["presentations_per_image"],
            "images_per_second": training["images_per_second"], "seconds": training["seconds"]}


# --- bridge-verify: convert a trained run and measure the equivalence ----------------------------------

def _verify_parts(settings: Settings):
    from bridges.conversion import ConversionOptions
    from spikebridge.bridge_runs import DEFAULT_STEPS

    plain, options = _split(settings, "options.")
    known = ["run", "steps", "test_images", "calibration_images", "seed"]
    _refuse_unknown("bridge-verify", plain, known)
    _refuse_unknown("bridge-verify options", options, _names(ConversionOptions))
    if "run" not in plain:
        raise ValueError("job kind 'bridge-verify' needs the setting 'run' (a trained run folder)")
    steps = plain.get("steps", list(DEFAULT_STEPS))
    return {
        "run_dir": Path(plain["run"]), "steps": tuple(steps if isinstance(steps, list) else [steps]),
        "test_images": plain.get("test_images", 2_000), "calibration_images": plain.get("calibration_images", 1_000),
        "seed": plain.get("seed", 0), "options": ConversionOptions(**options),
    }


def _run_verify(settings: Settings, folder: Path, progress: bool) -> dict[str, float]:
    from spikebridge.bridge_runs import verify

    parts = _verify_parts(settings)
    _resumable(folder, None)  # a measurement has no checkpoint: an interrupted one starts again
    _, report = verify(**parts, progress_bar=progress, folder=folder)
    metrics = {"ann_accuracy": report.ann_accuracy}
    for result in report.results:
        metrics[f"accuracy_T{result.steps}"] = result.accuracy
        metrics[f"correlation_layer1_T{result.steps}"] = result.correlation[0]
    return metrics


@dataclass(frozen=True)
class JobKind:
    """How a sweep runs one cell of a kind; ``inputs`` names settings that are folders the cell reads
    (shipped to cluster workers that do not share the file system)."""

    check: Callable[[Settings], Any]
    run: Callable[[Settings, Path, bool], dict[str, float]]
    inputs: tuple[str, ...] = ()
    needs_gpu: Callable[[Settings], bool] = lambda settings: False


def _diehl_cook_needs_gpu(settings: Settings) -> bool:
    return settings.get("device") == "cuda_standalone"


JOB_KINDS: dict[str, JobKind] = {
    "train": JobKind(_train_parts, _run_train),
    "train-prune": JobKind(_prune_parts, _run_prune),
    "train-split": JobKind(_train_parts, _run_split),
    "diehl-cook": JobKind(_diehl_cook_parts, _run_diehl_cook, needs_gpu=_diehl_cook_needs_gpu),
    "bridge-verify": JobKind(_verify_parts, _run_verify, inputs=("run",)),
}


def job_kind(name: str) -> JobKind:
    if name not in JOB_KINDS:
        raise ValueError(f"unknown job kind {name!r}; choose one of {sorted(JOB_KINDS)}")
    return JOB_KINDS[name]
