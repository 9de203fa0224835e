"""One training loop for every rate model: Adam on cross-entropy, fixed seeds, resumable runs.

A run folder holds ``config.json`` (model and training configuration, package versions),
``checkpoint.pt`` (weights, optimiser, schedule, RNG state; rewritten atomically after every
epoch), ``metrics.json`` (per-epoch loss and accuracies), ``model.pt`` (final weights) and
``learning_curves.png`` (drawn when training ends). The same seed gives the same weights: model
initialisation and dropout draw from torch's global generator, seeded at the start and
checkpointed with the run, and epoch ``e`` is shuffled by a generator seeded with ``(seed, e)``,
so a resumed run repeats an uninterrupted one exactly.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from idx_datasets import LabelledImages, load
from idx_datasets.atomic import atomic_path
from idx_datasets.double import ABSENT, is_double, load_double
from rate_models.baselines import CLASSES
from rate_models.spatial import double_cross_entropy
from spikebridge import models, position_frames
from spikebridge.records import environment
from spikebridge.runs import (
    CONFIG_FILE,
    METRICS_FILE,
    RunError,
    figure_with_axes,
    note_resumed,
    read_json,
    run_folder,
    save_figure,
    write_json,
)
from spiking.surrogate_models import SPIKING_LOSSES

CHECKPOINT_FILE = "checkpoint.pt"
WEIGHTS_FILE = "model.pt"
SCHEDULES = ("cosine", "constant")


def target_score_loss(scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """-x3[y], the error function of Thériault & François (2021): the mean score of the true class, negated."""
    return -scores.gather(1, labels[:, None]).mean()


RATE_LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {  # of scores [batch, classes]
    "cross_entropy": nn.functional.cross_entropy,
    "target_score": target_score_loss,
    "double_cross_entropy": double_cross_entropy,  # two 10-way heads (Wołczyk et al.'s double task)
}
LOSSES = {**RATE_LOSSES, **SPIKING_LOSSES}  # spiking ones read a readout [T, batch, classes]


@dataclass(frozen=True)
class TrainConfig:
    """How a model is trained; ``None`` image counts mean the whole split, a ``None`` loss the
    model's own (its entry in :data:`spikebridge.models.MODELS`)."""

    dataset: str = "mnist"
    epochs: int = 10
    batch_size: int = 128
    learning_rate: float = 1e-3
    schedule: str = "cosine"  # cosine annealing to zero over all epochs, or constant
    weight_decay: float = 0.0
    seed: int = 0
    train_images: int | None = None
    test_images: int | None = None
    loss: str | None = None  # a key of LOSSES, e.g. target_score: -x3[y] (Thériault & François 2021)

    def __post_init__(self):
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.loss is not None and self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {sorted(LOSSES)}, got {self.loss!r}")
        if self.epochs < 1 or self.batch_size < 1 or self.learning_rate <= 0:
            raise ValueError("epochs and batch_size must be >= 1 and learning_rate > 0")


@dataclass
class Run:
    """A trained (or partly trained) model together with its folder and history."""

    directory: Path
    model_name: str
    model: nn.Module
    train_config: TrainConfig
    history: list[dict[str, float]] = field(default_factory=list)

    @property
    def test_accuracy(self) -> float | None:
        return self.history[-1]["test_accuracy"] if self.history else None

    @property
    def training_seconds(self) -> float:
        """The time its epochs took so far (evaluation after each epoch included)."""
        return sum(epoch["seconds"] for epoch in self.history)

    @property
    def finished(self) -> bool:
        return len(self.history) >= self.train_config.epochs


def images_to_tensor(images: np.ndarray) -> torch.Tensor:
    """``uint8 [N, 28, 28]`` -> ``float32 [N, 1, 28, 28]`` with pixels scaled to [0, 1]."""
    return torch.from_numpy(np.asarray(images, dtype=np.float32) / 255.0).unsqueeze(1)


def as_tensors(split: LabelledImages) -> tuple[torch.Tensor, torch.Tensor]:
    return images_to_tensor(split.images), torch.from_numpy(split.labels.astype(np.int64))


def dataset_tensors(dataset: str, split: str, count: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``count`` examples of ``split`` of ``dataset``: ``mnist``, ``fashion`` or the double
    task ``mnist+fashion/<representation>`` (:mod:`idx_datasets.double`; labels ``[N, 2]``)."""
    return as_tensors((load_double(dataset, split) if is_double(dataset) else load(dataset, split)).head(count))


def class_scores(model: nn.Module, outputs: torch.Tensor) -> torch.Tensor:
    """One score per class from a model's outputs: a spiking model's ``scores`` of its readout
    ``[T, batch, classes]``, a rate model's outputs as they are."""
    scores = getattr(model, "scores", None)
    return outputs if scores is None else scores(outputs)


def head_predictions(scores: torch.Tensor) -> torch.Tensor:
    """The class of each 10-way head: ``[N]`` for 10 scores, ``[N, heads]`` for more (the double task)."""
    return scores.unflatten(1, (-1, CLASSES)).argmax(-1).squeeze(1)


def hits(scores: torch.Tensor, labels: torch.Tensor) -> tuple[int, int]:
    """Correct predictions and scored labels (a head without a label, −1, is not scored)."""
    scored = labels != ABSENT
    return int(((head_predictions(scores) == labels) & scored).sum()), int(scored.sum())


@torch.no_grad()
def predict(model: nn.Module, images: torch.Tensor, batch_size: int = 1000, **options) -> torch.Tensor:
    """Predicted classes of ``images`` (per head) in evaluation mode; the model's mode is restored.
    ``options`` go to the model's forward pass."""
    was_training = model.training
    model.eval()
    try:
        return torch.cat([head_predictions(class_scores(model, model(images[i : i + batch_size], **options)))
                          for i in range(0, len(images), batch_size)])
    finally:
        model.train(was_training)


def accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, **options) -> float:
    """The share of labels predicted right (every head that has a label counts once)."""
    scored = labels != ABSENT
    return ((predict(model, images, **options) == labels) & scored).sum().item() / scored.sum().item()


def _make_optimiser(model: nn.Module, config: TrainConfig, steps_total: int):
    trainable = [parameter for parameter in model.parameters() if parameter.requires_grad]
    optimiser = torch.optim.Adam(trainable, lr=config.learning_rate, weight_decay=config.weight_decay)
    if config.schedule == "cosine":
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=steps_total)
    else:
        schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda step: 1.0)
    return optimiser, schedule


def _save_checkpoint(run: Run, optimiser, schedule) -> None:
    state = {
        "model": run.model.state_dict(),
        "optimiser": optimiser.state_dict(),
        "schedule": schedule.state_dict(),
        "rng_state": torch.get_rng_state(),
        "history": run.history,
    }
    with atomic_path(run.directory / CHECKPOINT_FILE) as partial:
        torch.save(state, partial)


def _plot_learning_curves(run: Run) -> None:
    epochs = [record["epoch"] for record in run.history]
    figure, (loss_axis, accuracy_axis) = figure_with_axes(1, 2, figsize=(9, 3.5))
    loss_axis.plot(epochs, [r["train_loss"] for r in run.history], marker="o")
    loss_axis.set(xlabel="epoch", ylabel="training loss (cross-entropy)", yscale="log")
    accuracy_axis.plot(epochs, [100 * r["train_accuracy"] for r in run.history], marker="o", label="train")
    accuracy_axis.plot(epochs, [100 * r["test_accuracy"] for r in run.history], marker="o", label="test")
    accuracy_axis.set(xlabel="epoch", ylabel="accuracy (%)")
    accuracy_axis.legend()
    figure.suptitle(f"{run.model_name} on {run.train_config.dataset} ({run.directory.name})")
    save_figure(figure, run.directory / "learning_curves.png")


def _write_metrics(run: Run) -> None:
    write_json(
        run.directory,
        METRICS_FILE,
        {
            "model": run.model_name,
            "epochs_done": len(run.history),
            "finished": run.finished,
            "test_accuracy": run.test_accuracy,
            "train_seconds": sum(r["seconds"] for r in run.history),
            "history": run.history,
        },
    )


def _fit(run: Run, checkpoint: dict[str, Any] | None, progress: bool, checkpoint_start: bool = False) -> Run:
    """Train ``run`` from ``checkpoint`` (or from its current weights); with ``checkpoint_start``,
    a fresh run is checkpointed before its first epoch (its starting weights are not reproducible
    from the seed alone)."""
    config = run.train_config
    train_x, train_y = dataset_tensors(config.dataset, "train", config.train_images)
    test_x, test_y = dataset_tensors(config.dataset, "test", config.test_images)
    batches_per_epoch = -(-len(train_x) // config.batch_size)
    optimiser, schedule = _make_optimiser(run.model, config, config.epochs * batches_per_epoch)
    if checkpoint is not None:
        run.model.load_state_dict(checkpoint["model"])
        optimiser.load_state_dict(checkpoint["optimiser"])
        schedule.load_state_dict(checkpoint["schedule"])
        torch.set_rng_state(checkpoint["rng_state"])
        run.history = list(checkpoint["history"])
    elif checkpoint_start:
        _save_checkpoint(run, optimiser, schedule)
    if checkpoint is None and position_frames.has_positions(run.model):
        position_frames.record(run.directory, run.model, 0)

    loss_function = LOSSES[config.loss]
    constrain = getattr(run.model, "constrain_", None)  # models with weight constraints (Thériault & François 2021)
    penalty = getattr(run.model, "penalty", None)  # models with a regulariser of their own (Shader's positions)
    for epoch in range(len(run.history) + 1, config.epochs + 1):
        started = time.perf_counter()
        run.model.train()
        order = torch.randperm(len(train_x), generator=torch.Generator().manual_seed(config.seed * 100_003 + epoch))
        loss_sum, correct, scored = 0.0, 0, 0
        bar = tqdm(
            range(batches_per_epoch), desc=f"{run.model_name} epoch {epoch}/{config.epochs}",
            disable=not progress, leave=False, unit="batch",
        )
        for index in bar:
            batch = order[index * config.batch_size : (index + 1) * config.batch_size]
            images, labels = train_x[batch], train_y[batch]
            outputs = run.model(images)
            loss = loss_function(outputs, labels)
            optimiser.zero_grad(set_to_none=True)
            (loss if penalty is None else loss + penalty()).backward()
            optimiser.step()
            if constrain is not None:
                constrain()
            schedule.step()
            loss_sum += loss.item() * len(batch)
            batch_hits, batch_scored = hits(class_scores(run.model, outputs), labels)
            correct, scored = correct + batch_hits, scored + batch_scored
            if index % 20 == 0:
                bar.set_postfix(loss=f"{loss.item():.4f}")
        bar.close()
        record = {
            "epoch": epoch,
            "train_loss": loss_sum / len(train_x),
            "train_accuracy": correct / scored,
            "test_accuracy": accuracy(run.model, test_x, test_y),
            "learning_rate": schedule.get_last_lr()[0],
            "seconds": time.perf_counter() - started,
            **(measures() if (measures := getattr(run.model, "epoch_measures", None)) else {}),
        }
        run.history.append(record)
        if progress:
            tqdm.write(
                f"{run.model_name} epoch {epoch}/{config.epochs}: loss {record['train_loss']:.4f}, "
                f"test accuracy {100 * record['test_accuracy']:.2f} % ({record['seconds']:.0f} s)"
            )
        _save_checkpoint(run, optimiser, schedule)
        _write_metrics(run)
        if position_frames.has_positions(run.model):
            position_frames.record(run.directory, run.model, epoch)

    _plot_learning_curves(run)  # once: rendering it every epoch cost as much as a small epoch
    if position_frames.has_positions(run.model):
        position_frames.draw(run.directory)
    with atomic_path(run.directory / WEIGHTS_FILE) as partial:
        torch.save(run.model.state_dict(), partial)
    return run


def train(
    model_name: str,
    model_overrides: dict[str, Any] | None = None,
    config: TrainConfig = TrainConfig(),
    runs_root: Path = Path("runs"),
    progress: bool = True,
    prepare: Callable[[nn.Module], None] | None = None,
    directory: Path | None = None,
) -> Run:
    """Train ``model_name`` (see :data:`spikebridge.models.MODELS`) in a new run folder under
    ``runs_root``, or in ``directory`` if given (a sweep's cell). The folder's configuration
    records the model's kind, the loss used and the ``prepare`` step if one ran.

    ``prepare``, if given, works on the freshly initialised model before the first epoch (for
    example a first training stage); the prepared model is checkpointed before the first epoch, so a
    resumed run continues from it instead of repeating or losing it.
    """
    model_config = models.make_config(model_name, model_overrides)
    entry = models.entry(model_name)
    config = replace(config, loss=config.loss or entry.loss)
    losses = RATE_LOSSES if entry.kind == "rate" else SPIKING_LOSSES
    if config.loss not in losses:
        raise ValueError(f"loss {config.loss!r} does not fit the {entry.kind} model {model_name!r}; "
                         f"choose one of {sorted(losses)}")
    directory = run_folder(runs_root, model_name, directory)
    write_json(
        directory,
        CONFIG_FILE,
        {
            "kind": entry.kind,
            "model": model_name,
            "model_config": asdict(model_config),
            "train": asdict(config),
            "prepare": None if prepare is None else f"{prepare.__module__}.{prepare.__qualname__}",
            "environment": environment(),
        },
    )
    torch.manual_seed(config.seed)  # initial weights, then dropout masks
    model = models.build(model_name, asdict(model_config))
    if prepare is not None:
        prepare(model)
    return _fit(Run(directory, model_name, model, config), None, progress, checkpoint_start=prepare is not None)


def _read_run(directory: Path) -> tuple[Run, dict[str, Any] | None]:
    directory = Path(directory)
    config = read_json(directory, CONFIG_FILE)
    if config.get("kind") not in models.KINDS:
        raise RunError(f"{directory} is not a training run (kind {config.get('kind')!r}, not one of {models.KINDS})")
    model = models.build(config["model"], config["model_config"])
    run = Run(directory, config["model"], model, TrainConfig(**config["train"]))
    checkpoint_path = directory / CHECKPOINT_FILE
    if not checkpoint_path.is_file():
        return run, None
    try:
        checkpoint = torch.load(checkpoint_path, weights_only=True)
    except Exception as exc:  # torch raises several types for a damaged file
        raise RunError(f"{checkpoint_path} cannot be read ({exc}); delete it to restart the run") from None
    return run, checkpoint


def resume(directory: Path, progress: bool = True) -> Run:
    """Continue the run in ``directory`` from its last checkpoint (a finished run is returned as is)."""
    run, checkpoint = _read_run(directory)
    if checkpoint is not None and len(checkpoint["history"]) >= run.train_config.epochs:
        run.model.load_state_dict(checkpoint["model"])
        run.history = list(checkpoint["history"])
        return run
    note_resumed(run.directory, {"epochs": 0 if checkpoint is None else len(checkpoint["history"])})
    return _fit(run, checkpoint, progress)


def load_run(directory: Path) -> Run:
    """The model of a run with its latest weights (final if finished, else last checkpoint)."""
    run, checkpoint = _read_run(directory)
    if checkpoint is None:
        raise RunError(f"{directory} has no checkpoint yet; train it with `spikebridge train --resume {directory}`")
    run.model.load_state_dict(checkpoint["model"])
    run.history = list(checkpoint["history"])
    return run
