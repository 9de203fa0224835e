"""The main job: rate against spiking accuracy, one row per model, in one table.

Every row comes from an entry of :data:`COMPARISONS`, the single registration point: a model
that gains a spiking version (conversion, STDP, surrogate gradients) changes or adds its entry
there and nowhere else.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from idx_datasets.atomic import write_bytes_atomic
from rate_models.mesh import MeshConfig
from spikebridge import diehl_cook_runs
from spikebridge.diehl_cook_runs import DiehlCookRunConfig
from spikebridge.records import environment, make_record, provenance, write_record
from spikebridge.runs import new_run_dir, write_json
from spikebridge.training import TrainConfig, train
from spiking.block_runner import require_device
from spiking.positional import SpikingPositionalConfig
from spiking.spatial import SpikingSpatialConfig

COMPARISON_FILE = "comparison.json"  # the results record of `compare`


@dataclass(frozen=True)
class CompareSettings:
    """The data and budget every entry uses; ``None`` image counts mean the whole split."""

    dataset: str = "mnist"
    train_images: int | None = 10_000
    test_images: int | None = 2_000
    epochs: int = 2
    batch_size: int = 64  # small data, few epochs: more, larger steps than the full-data defaults
    learning_rate: float = 2e-3
    stdp_train_images: int | None = 1_000  # Diehl & Cook: one pass, also the labelling set
    stdp_device: str = DiehlCookRunConfig.device  # Brian2 device of the Diehl & Cook row
    seed: int = 0

    def train_config(self) -> TrainConfig:
        return TrainConfig(
            dataset=self.dataset,
            epochs=self.epochs,
            batch_size=self.batch_size,
            learning_rate=self.learning_rate,
            seed=self.seed,
            train_images=self.train_images,
            test_images=self.test_images,
        )


@dataclass(frozen=True)
class ComparisonRow:
    model: str
    rate_accuracy: float | None
    spiking_accuracy: float | None
    spiking_method: str  # how the spiking version was obtained
    wall_seconds: float


def _nothing_to_check(settings: CompareSettings) -> None:
    return None


@dataclass(frozen=True)
class Comparison:
    name: str
    evaluate: Callable[[CompareSettings, Path], ComparisonRow]  # (settings, folder for its runs)
    check: Callable[[CompareSettings], None] = _nothing_to_check  # raises before anything runs if it cannot
    by_default: bool = True  # False: too slow for the default table on a CPU; run it by name or with --all


def rate_only(model_name: str, why: str) -> Comparison:
    """An entry that trains a rate model that does not convert (``why`` says so in the table)."""

    def evaluate(settings: CompareSettings, folder: Path) -> ComparisonRow:
        started = time.perf_counter()
        run = train(model_name, None, settings.train_config(), runs_root=folder)
        return ComparisonRow(model_name, run.test_accuracy, None, why, time.perf_counter() - started)

    return Comparison(model_name, evaluate)


def converted(model_name: str, steps: int) -> Comparison:
    """A rate model trained, then converted (ReLU: IF neurons; log network: log-coding neurons) and
    simulated for ``steps`` steps."""

    def evaluate(settings: CompareSettings, folder: Path) -> ComparisonRow:
        from bridges.common import spiking_accuracy
        from bridges.conversion import ConversionOptions
        from idx_datasets import load
        from spikebridge.bridge_runs import convert_run
        from spikebridge.training import as_tensors

        started = time.perf_counter()
        run = train(model_name, None, settings.train_config(), runs_root=folder)
        snn = convert_run(run, ConversionOptions())
        images, labels = as_tensors(load(settings.dataset, "test").head(settings.test_images))
        spiking = spiking_accuracy(snn, images, labels, steps)
        return ComparisonRow(model_name, run.test_accuracy, spiking, snn.describe(steps), time.perf_counter() - started)

    return Comparison(model_name, evaluate)


def surrogate_trained(model_name: str, steps: int, by_default: bool = True) -> Comparison:
    """The spiking counterpart ``snn-<model_name>`` trained directly with surrogate gradients for
    ``steps`` steps per image (per row for the row reader), on the same data and budget as the
    rate models."""

    def evaluate(settings: CompareSettings, folder: Path) -> ComparisonRow:
        started = time.perf_counter()
        run = _train_surrogate(model_name, steps, settings, folder)
        return ComparisonRow(f"snn-{model_name}", None, run.test_accuracy, _surrogate_method(run),
                             time.perf_counter() - started)

    return Comparison(f"snn-{model_name}", evaluate, by_default=by_default)


def _train_surrogate(model_name: str, steps: int, settings: CompareSettings, folder: Path,
                     model_settings: dict | None = None, dataset: str | None = None):
    config = settings.train_config()
    return train(f"snn-{model_name}", {"steps": steps, **(model_settings or {})},
                 config if dataset is None else replace(config, dataset=dataset), runs_root=folder)


def _surrogate_method(run) -> str:
    return f"{run.model.describe()}, {run.train_config.loss} loss"


def rate_beside_surrogate(model_name: str, steps: int, model_settings: dict | None = None,
                          dataset: str | None = None) -> Comparison:
    """A rate model that does not convert and its spiking version ``snn-<model_name>``, trained
    directly with surrogate gradients for ``steps`` steps, in one row: the same data and budget,
    the same ``model_settings``; ``dataset`` replaces the settings' (the double task's models)."""

    def evaluate(settings: CompareSettings, folder: Path) -> ComparisonRow:
        started = time.perf_counter()
        config = settings.train_config()
        rate = train(model_name, model_settings, config if dataset is None else replace(config, dataset=dataset),
                     runs_root=folder)
        spiking = _train_surrogate(model_name, steps, settings, folder, model_settings, dataset)
        on = "" if dataset is None else f" (on {dataset}: the mean over its two tasks)"
        return ComparisonRow(model_name, rate.test_accuracy, spiking.test_accuracy,
                             f"snn-{model_name}: {_surrogate_method(spiking)}{on}", time.perf_counter() - started)

    return Comparison(model_name, evaluate)


def stdp(neurons: int) -> Comparison:
    """A spiking network learned by unsupervised STDP, Diehl & Cook (2015) in Brian2, its neurons
    labelled on its own training images."""

    def evaluate(settings: CompareSettings, folder: Path) -> ComparisonRow:
        started = time.perf_counter()
        images = settings.stdp_train_images or 60_000
        config = DiehlCookRunConfig(
            neurons=neurons, images=images, seed=settings.seed, dataset=settings.dataset, device=settings.stdp_device,
            block_slots=min(images, DiehlCookRunConfig.block_slots),  # a short run needs no longer block
            checkpoint_every=images,
        )
        directory = diehl_cook_runs.train(config, runs_root=folder)
        summary = diehl_cook_runs.evaluate(directory, labelling_images=images,
                                           test_images=settings.test_images or 10_000)
        return ComparisonRow(
            f"diehl-cook-{neurons}", None, summary["test_accuracy"],
            f"unsupervised STDP, {images} images (Brian2 {config.device})", time.perf_counter() - started,
        )

    def check(settings: CompareSettings) -> None:
        require_device(settings.stdp_device)

    return Comparison(f"diehl-cook-{neurons}", evaluate, check)


COMPARISONS: list[Comparison] = [
    converted("mlp", 8), surrogate_trained("mlp", 8), converted("cnn", 8),
    surrogate_trained("cnn", 8, by_default=False),  # about 30 training images/s on 2 cores: minutes even for 1,000
    rate_only("gru", "no conversion (its gates are not ReLUs)"), surrogate_trained("gru", 1),
    converted("lognet", 64), rate_beside_surrogate("mesh", MeshConfig.window),
    rate_beside_surrogate("positional", SpikingPositionalConfig.steps),
    rate_beside_surrogate("spatial", SpikingSpatialConfig.steps, {"inputs": 2 * 784}, "mnist+fashion/concatenated"),
    stdp(100),
]


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.2f} %"


def markdown_table(rows: list[ComparisonRow]) -> str:
    lines = [
        "| model | rate accuracy | spiking accuracy | spiking version | wall time |",
        "| --- | ---: | ---: | --- | ---: |",
    ]
    lines += [
        f"| {r.model} | {_percent(r.rate_accuracy)} | {_percent(r.spiking_accuracy)} | {r.spiking_method} "
        f"| {r.wall_seconds:.1f} s |"
        for r in rows
    ]
    return "\n".join(lines) + "\n"


def compare(
    settings: CompareSettings = CompareSettings(),
    names: list[str] | None = None,
    runs_root: Path = Path("runs"),
) -> tuple[Path, list[ComparisonRow]]:
    """Evaluate the named entries (by default those with ``by_default``; ``names=["all"]``: every
    one); write the table into a new run folder."""
    known = [entry.name for entry in COMPARISONS]
    if unknown := sorted(set(names or []) - {*known, "all"}):
        raise ValueError(f"no comparison entry {unknown[0]!r}; choose from {known} or all")
    chosen = [entry for entry in COMPARISONS
              if (entry.by_default if names is None else "all" in names or entry.name in names)]
    for entry in chosen:  # a missing compiler is reported now, not after the rate models trained
        entry.check(settings)
    started = provenance(seeds={"training": settings.seed}, threads={"openmp": DiehlCookRunConfig.threads})
    folder = new_run_dir(runs_root, "compare")
    write_json(folder, "config.json", {"kind": "compare", "settings": asdict(settings), "environment": environment()})
    rows = [entry.evaluate(settings, folder / "models") for entry in chosen]
    write_bytes_atomic(folder / "comparison.md", markdown_table(rows).encode())
    record = make_record({"settings": asdict(settings), "rows": [asdict(r) for r in rows]}, started)
    write_record(folder / COMPARISON_FILE, record)
    return folder, rows
