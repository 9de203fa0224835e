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
    "diehl-cook": JobKind(_diehl_cook_parts, _run_diehl_cook, needs_gpu=_diehl_cook_needs_gpu),
    "bridge-verify": JobKind(_verify_parts, _run_verify, inputs=("run",)),
}


def job_kind(name: str) -> JobKind:
    if name not in JOB_KINDS:
        raise ValueError(f"unknown job kind {name!r}; choose one of {sorted(JOB_KINDS)}")
    return JOB_KINDS[name]
