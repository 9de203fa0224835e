"""Training and evaluating the Diehl & Cook (2015) network in resumable run folders.

A run folder ``runs/diehl-cook-<N>-<time>/`` holds ``config.json``, ``checkpoint.npz`` (network
state, data position, intensity, accuracy history; rewritten atomically every
``checkpoint_every`` images), ``metrics.json`` and, after evaluation, ``evaluation.json`` and the
plots (while an evaluation is under way, its finished shards in ``evaluation-shards/``). Block
``b`` of a run draws its Poisson spikes from seed ``(seed, b)``, so a resumed run repeats an
uninterrupted one.
"""

from __future__ import annotations

import io
import json
import multiprocessing
import shutil
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
from tqdm import tqdm

from idx_datasets import cache_root, load
from idx_datasets.atomic import write_bytes_atomic
from spikebridge.records import command_line, environment, make_record, portable_path, provenance, write_record
from spikebridge.runs import (
    CONFIG_FILE,
    METRICS_FILE,
    RunError,
    note_resumed,
    read_json,
    run_folder,
    training_commits,
    write_json,
)
from spiking.block_runner import make_runner
from spiking.diehl_cook import (
    DiehlCookParameters,
    MembraneRunaway,
    NetworkState,
    Presentations,
    assign_labels,
    classify,
    initial_state,
    pixel_block,
)

CHECKPOINT_FILE = "checkpoint.npz"
EVALUATION_FILE = "evaluation.json"  # the results record of `diehl-cook evaluate`
EVALUATION_SHARDS_FOLDER = "evaluation-shards"  # finished shards of an evaluation under way


@dataclass(frozen=True)
class DiehlCookRunConfig:
    """A training run; the model's constants are :class:`DiehlCookParameters`."""

    neurons: int = 100
    images: int = 60_000  # training images per pass: the first ``images`` of the training set
    passes: int = 1
    device: str = "cpp_standalone"
    threads: int = 1
    block_slots: int = 500  # presentations per compiled run
    checkpoint_every: int = 5_000  # images between checkpoints, rounded up to whole blocks
    accuracy_window: int = 10_000  # images per training-accuracy estimate
    seed: int = 0
    dataset: str = "mnist"

    def __post_init__(self):
        if min(self.neurons, self.images, self.passes, self.block_slots, self.threads) < 1:
            raise ValueError("neurons, images, passes, block_slots and threads must be >= 1")

    @property
    def images_target(self) -> int:
        """Images the run trains on: ``images`` × ``passes``."""
        return self.images * self.passes


@dataclass
class Progress:
    """Where a training run stands; saved with the network state in every checkpoint."""

    position: int = 0  # index (within the training images) of the next image to show
    intensity: float = 2.0
    blocks_done: int = 0
    images_done: int = 0
    presentations: int = 0  # slots used, re-presentations included
    seconds: float = 0.0
    accuracy_history: list = field(default_factory=list)  # [images done, accuracy] per window
    window_counts: np.ndarray | None = None  # responses [images, N] in the current accuracy window
    window_labels: np.ndarray | None = None
    assignments: np.ndarray | None = None  # labels assigned from the previous window

    ARRAYS = ("window_counts", "window_labels", "assignments")


def block_seed(seed: int, block: int) -> int:
    return (seed * 1_000_003 + block) % (2**31)


def build_dir_root() -> Path:
    """Where compiled networks are cached (a process running a network takes a build folder no
    other process is using, :func:`spiking.block_runner.claim_build_dir`)."""
    return cache_root() / "brian2-builds"


def runner_factory(config: DiehlCookRunConfig, params: DiehlCookParameters, delays_ms: np.ndarray,
                   threads: int | None = None) -> Callable:
    """A picklable ``new_runner()`` building the block runner of ``config``'s network (with
    ``threads`` OpenMP threads instead of the run's, if given)."""
    return partial(make_runner, config.device, params, config.neurons, config.block_slots, build_dir_root(),
                   threads or config.threads, delays_ms)


def _save_checkpoint(directory: Path, state: NetworkState, progress: Progress) -> None:
    scalars = {k: v for k, v in asdict(progress).items() if k not in Progress.ARRAYS}
    arrays = {f"progress_{name}": getattr(progress, name) for name in Progress.ARRAYS
              if getattr(progress, name) is not None}
    buffer = io.BytesIO()
    np.savez(buffer, progress=json.dumps(scalars), **arrays, **state.arrays())
    write_bytes_atomic(directory / CHECKPOINT_FILE, buffer.getvalue())


def load_checkpoint(directory: Path) -> tuple[NetworkState, Progress]:
    path = Path(directory) / CHECKPOINT_FILE
    if not path.is_file():
        raise RunError(f"{path} does not exist; the run has not reached its first checkpoint")
    try:
        with np.load(path) as archive:
            progress = Progress(**json.loads(str(archive["progress"])))
            for name in Progress.ARRAYS:
                if f"progress_{name}" in archive.files:
                    setattr(progress, name, archive[f"progress_{name}"])
            state = NetworkState(**{name: archive[name] for name in archive.files if not name.startswith("progress")})
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise RunError(f"{path} cannot be read ({exc}); delete it to restart the run") from None
    return state, progress


@dataclass(frozen=True)
class BlockOutcome:
    """The images one block finished: their responses ``[images, N]`` and data indices."""

    counts: np.ndarray
    indices: np.ndarray
    presentations: int
    block: Presentations


def present_block(runner, state: NetworkState, images: np.ndarray, position: int, intensity: float,
                  remaining: int, plastic: bool, seed: int) -> tuple[NetworkState, BlockOutcome]:
    """Show the images from ``position`` on (wrapping) for one block; at most ``remaining`` count."""
    pixels = pixel_block(images, position, runner.net.slots, remaining)
    state, block = runner.run_block(state, pixels, intensity, plastic=plastic, seed=seed)
    shown = min(block.images_completed, remaining)  # blank padding after the last image is no image
    indices = ((position + block.image[block.accepted]) % len(images))[:shown]
    outcome = BlockOutcome(block.counts[block.accepted][:shown], indices, int(np.sum(block.image < remaining)), block)
    return state, outcome


def _record_window(progress: Progress, counts: np.ndarray, labels: np.ndarray, window: int) -> None:
    """Add responses to the accuracy window; close the window when it is full.

    Accuracy of a window = its images classified with the labels assigned from the previous
    window (the authors' running estimate of training performance).
    """
    if progress.window_counts is not None:
        counts = np.concatenate([progress.window_counts, counts])
        labels = np.concatenate([progress.window_labels, labels])
    while len(labels) >= window:
        if progress.assignments is not None:
            accuracy = float(np.mean(classify(counts[:window], progress.assignments) == labels[:window]))
            progress.accuracy_history.append([progress.images_done - len(labels) + window, accuracy])
        progress.assignments = assign_labels(counts[:window], labels[:window])
        counts, labels = counts[window:], labels[window:]
    progress.window_counts, progress.window_labels = counts, labels


def _write_metrics(directory: Path, config: DiehlCookRunConfig, progress: Progress) -> None:
    write_json(directory, METRICS_FILE, {
        "images_done": progress.images_done,
        "images_target": config.images_target,
        "presentations": progress.presentations,
        "train_seconds": progress.seconds,
        "images_per_second": progress.images_done / progress.seconds if progress.seconds else None,
        "training_accuracy": progress.accuracy_history or [],
    })


def train(
    config: DiehlCookRunConfig,
    runs_root: Path = Path("runs"),
    params: DiehlCookParameters = DiehlCookParameters(),
    progress_bar: bool = True,
    directory: Path | None = None,
) -> Path:
    """Train a new network in a new run folder under ``runs_root`` (or in ``directory``, a sweep's
    cell); returns the folder."""
    state = initial_state(params, config.neurons, np.random.default_rng(config.seed))
    runner = runner_factory(config, params, state.delays_ms)()
    directory = run_folder(runs_root, f"diehl-cook-{config.neurons}", directory)
    write_json(directory, CONFIG_FILE, {
        "kind": "diehl-cook", "run": asdict(config), "parameters": asdict(params), "command": command_line(),
        "environment": environment(),
    })
    progress = Progress(intensity=params.initial_intensity)
    _continue(directory, config, params, state, progress, progress_bar, runner)
    return directory


def read_run_config(directory: Path) -> tuple[DiehlCookRunConfig, DiehlCookParameters]:
    saved = read_json(directory, CONFIG_FILE)
    if saved.get("kind") != "diehl-cook":
        raise RunError(f"{directory} is not a Diehl & Cook run (kind {saved.get('kind')!r})")
    return DiehlCookRunConfig(**saved["run"]), DiehlCookParameters(**saved["parameters"])


def resume(directory: Path, progress_bar: bool = True, threads: int | None = None) -> Path:
    """Continue a run from its last checkpoint (a finished run is left as it is)."""
    config, params = read_run_config(directory)
    if threads is not None:
        config = DiehlCookRunConfig(**{**asdict(config), "threads": threads})
    state, progress = load_checkpoint(directory)
    if progress.images_done < config.images_target:
        note_resumed(directory, {"images": progress.images_done})
    _continue(Path(directory), config, params, state, progress, progress_bar)
    return Path(directory)


def _continue(directory, config, params, state, progress, progress_bar, runner=None) -> None:
    target = config.images_target
    if progress.images_done >= target:
        return
    images = load(config.dataset, "train").head(config.images)
    runner = runner or runner_factory(config, params, state.delays_ms)()
    images_at_checkpoint = progress.images_done
    with tqdm(total=target, initial=progress.images_done, unit="img", desc=f"Diehl & Cook {config.neurons}",
              disable=not progress_bar, smoothing=0.1) as bar:
        while progress.images_done < target:
            started = time.perf_counter()
            try:
                state, outcome = present_block(
                    runner, state, images.images, progress.position, progress.intensity, target - progress.images_done,
                    plastic=True, seed=block_seed(config.seed, progress.blocks_done),
                )
            except MembraneRunaway as exc:
                kept = f"its checkpoint of {images_at_checkpoint} images" if images_at_checkpoint else "no checkpoint"
                stopped = f"stopped after {progress.images_done} images, {directory} keeps {kept}"
                raise RunError(f"{exc}; {stopped}") from None
            shown = len(outcome.indices)
            progress.images_done += shown
            progress.position = (progress.position + shown) % config.images
            progress.presentations += outcome.presentations
            progress.intensity = outcome.block.next_intensity
            progress.blocks_done += 1
            progress.seconds += time.perf_counter() - started
            _record_window(progress, outcome.counts, images.labels[outcome.indices].astype(np.int64),
                           min(config.accuracy_window, target))
            bar.update(shown)
            if progress.images_done - images_at_checkpoint >= config.checkpoint_every or progress.images_done >= target:
                _save_checkpoint(directory, state, progress)
                _write_metrics(directory, config, progress)
                images_at_checkpoint = progress.images_done


EVALUATION_SEED_OFFSET = 7_919  # evaluation blocks draw from seeds no training block uses
# Frozen responses are measured in shards of this many images, each shown to the trained state,
# the shard from image s with seed + s: shards run in any order, on any number of workers, with
# the same result (and a set of one shard as one sequential run with ``seed``).
EVALUATION_SHARD_IMAGES = 5_000


def frozen_responses(runner, state: NetworkState, images: np.ndarray, seed: int,
                     on_block: Callable[[int], object] = lambda images_done: None) -> tuple[np.ndarray, Presentations]:
    """Responses ``[images, N]`` of the frozen network (no STDP, theta fixed) to every image,
    shown in order from ``state``, and the first block's presentations (for rasters)."""
    responses = np.zeros((len(images), state.n_excitatory), dtype=np.int64)
    done, intensity, block_index, first_block = 0, runner.net.params.initial_intensity, 0, None
    while done < len(images):
        state, outcome = present_block(runner, state, images, done, intensity, len(images) - done,
                                       plastic=False, seed=block_seed(seed, block_index))
        responses[outcome.indices] = outcome.counts
        done += len(outcome.indices)
        intensity = outcome.block.next_intensity
        block_index += 1
        first_block = outcome.block if first_block is None else first_block
        on_block(len(outcome.indices))
    return responses, first_block


_worker = {}  # the runner and trained state of an evaluation worker process


def _start_worker(new_runner: Callable, state: NetworkState) -> None:
    _worker.update(runner=new_runner(), state=state)


def _worker_shard(images: np.ndarray, seed: int) -> tuple[np.ndarray, Presentations]:
    return frozen_responses(_worker["runner"], _worker["state"], images, seed)


def _save_shard(path: Path, result: tuple[np.ndarray, Presentations]) -> None:
    counts, block = result
    buffer = io.BytesIO()
    np.savez_compressed(buffer, shard_counts=counts, **asdict(block))
    write_bytes_atomic(path, buffer.getvalue())


def _load_shard(path: Path) -> tuple[np.ndarray, Presentations]:
    with np.load(path) as archive:
        fields = {name: archive[name] for name in archive.files}
    counts = fields.pop("shard_counts")
    block = Presentations(**{**fields, "images_completed": int(fields["images_completed"]),
                             "next_intensity": float(fields["next_intensity"])})
    return counts, block


def sharded_responses(new_runner: Callable, state: NetworkState, image_sets: list[np.ndarray], seeds: list[int],
                      workers: int = 1, progress_bar: bool = True, shard_folder: Path | None = None
                      ) -> list[tuple[np.ndarray, Presentations]]:
    """:func:`frozen_responses` of the trained ``state`` to each of ``image_sets`` (with its seed),
    measured in shards of :data:`EVALUATION_SHARD_IMAGES` on ``workers`` processes, each with a
    runner from ``new_runner()``; per set, the responses and its first block's presentations.

    ``shard_folder``: each finished shard is saved there, and shards found there are not run
    again, so an interrupted evaluation of the same state resumes (the folder must belong to it).
    """
    shards = [(number, start, images[start:start + EVALUATION_SHARD_IMAGES], seed + start)
              for number, (images, seed) in enumerate(zip(image_sets, seeds, strict=True))
              for start in range(0, len(images), EVALUATION_SHARD_IMAGES)]
    paths = [None if shard_folder is None else Path(shard_folder) / f"set{number}-{start}-{len(images)}-seed{seed}.npz"
             for number, start, images, seed in shards]
    results = [_load_shard(path) if path is not None and path.is_file() else None for path in paths]
    to_run = [index for index, result in enumerate(results) if result is None]

    def finish(index: int, result: tuple[np.ndarray, Presentations]) -> None:
        results[index] = result
        if paths[index] is not None:
            _save_shard(paths[index], result)

    loaded = sum(len(images) for (_, _, images, _), result in zip(shards, results, strict=True) if result is not None)
    with tqdm(total=sum(map(len, image_sets)), initial=loaded, unit="img", desc="frozen responses",
              disable=not progress_bar) as bar:
        if workers == 1 and to_run:
            runner = new_runner()
            for index in to_run:
                finish(index, frozen_responses(runner, state, shards[index][2], shards[index][3], bar.update))
        elif to_run:
            context = multiprocessing.get_context("spawn")  # a fresh Brian2 device per worker
            with ProcessPoolExecutor(workers, context, initializer=_start_worker, initargs=(new_runner, state)) as pool:
                futures = {pool.submit(_worker_shard, shards[index][2], shards[index][3]): index for index in to_run}
                for future in as_completed(futures):
                    finish(futures[future], future.result())
                    bar.update(len(shards[futures[future]][2]))
    per_set = [[result for (number, *_), result in zip(shards, results, strict=True) if number == set_number]
               for set_number in range(len(image_sets))]
    return [(np.concatenate([counts for counts, _ in set_results]), set_results[0][1]) for set_results in per_set]


def frozen_predictions(new_runner: Callable, state: NetworkState, labelling, test, seed: int, workers: int = 1,
                       progress_bar: bool = True, shard_folder: Path | None = None
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray, Presentations]:
    """Label the neurons from the frozen network's responses to ``labelling`` (images and labels),
    then classify the ``test`` images (:func:`sharded_responses`): the predictions, the neurons'
    classes, the test responses ``[images, N]`` and the first test block's presentations."""
    (label_counts, _), (test_counts, first_block) = sharded_responses(
        new_runner, state, [labelling.images, test.images], [seed, seed + 1], workers, progress_bar, shard_folder)
    assignments = assign_labels(label_counts, labelling.labels.astype(np.int64))
    return classify(test_counts, assignments), assignments, test_counts, first_block


def frozen_evaluation(new_runner: Callable, state: NetworkState, dataset: str, labelling_images: int,
                      test_images: int, seed: int, workers: int = 1, progress_bar: bool = True,
                      shard_folder: Path | None = None) -> tuple[dict, Presentations]:
    """Label the neurons from the frozen network's responses to the first ``labelling_images``
    training images, then classify the first ``test_images`` test images (:func:`frozen_predictions`).

    Returns the figures (accuracy, confusion matrix, neurons per class, silent test images, image
    counts, θ, seconds) and the first test block's presentations (for rasters).
    """
    from spikebridge.evaluation import confusion_matrix

    started = time.perf_counter()
    labelling = load(dataset, "train").head(labelling_images)
    test = load(dataset, "test").head(test_images)
    predictions, assignments, test_counts, first_block = frozen_predictions(new_runner, state, labelling, test, seed,
                                                                            workers, progress_bar, shard_folder)
    matrix = confusion_matrix(test.labels, predictions)
    figures = {
        "neurons": state.n_excitatory,
        "labelling_images": len(labelling),
        "test_images": len(test),
        "test_accuracy": float(np.trace(matrix) / matrix.sum()),
        "confusion_matrix": matrix.tolist(),
        "neurons_per_class": np.bincount(assignments, minlength=10).tolist(),
        "silent_test_images": int(np.sum(test_counts.sum(axis=1) == 0)),
        "theta_mV": {"mean": float(state.theta_mV.mean()), "min": float(state.theta_mV.min()),
                     "max": float(state.theta_mV.max())},
        "evaluation_seconds": time.perf_counter() - started,
        "evaluation_workers": workers,
    }
    return figures, first_block


def evaluate(directory: Path, labelling_images: int = 60_000, test_images: int = 10_000,
             threads: int | None = None, workers: int = 1, progress_bar: bool = True) -> dict:
    """Label the neurons from frozen responses to training images, classify the test images;
    ``workers`` processes share the work (:func:`sharded_responses`; same result for any number).

    Writes the results record ``evaluation.json`` (the figures of :func:`frozen_evaluation`, the
    run's configuration and training command, changed constants and training statistics; see
    :mod:`spikebridge.records`) and the plots into the run folder, and returns the record. An
    interrupted evaluation resumes from its finished shards (:data:`EVALUATION_SHARDS_FOLDER`).
    """
    from spikebridge.diehl_cook_plots import save_run_plots

    directory = Path(directory)
    config, params = read_run_config(directory)
    state, progress = load_checkpoint(directory)
    threads = threads or config.threads
    seed = config.seed + EVALUATION_SEED_OFFSET
    started = provenance(seeds={"network": config.seed, "evaluation": seed}, threads={"openmp": threads})
    # finished shards survive an interruption; a later checkpoint or device gets a folder of its own
    shards = directory / EVALUATION_SHARDS_FOLDER
    shard_folder = shards / f"images{progress.images_done}-{config.device}-threads{threads}"
    figures, first_block = frozen_evaluation(runner_factory(config, params, state.delays_ms, threads), state,
                                             config.dataset, labelling_images, test_images, seed, workers,
                                             progress_bar, shard_folder)
    defaults = asdict(DiehlCookParameters())
    saved = read_json(directory, CONFIG_FILE)
    summary = {
        **figures,
        "training_images_seen": progress.images_done,
        "passes": config.passes,
        "run": {**asdict(config), "folder": portable_path(directory), "command": saved.get("command", "not recorded"),
                "trained_at": training_commits(saved)},
        "parameters_changed": {name: value for name, value in asdict(params).items() if defaults[name] != value},
        "training": {
            "seconds": progress.seconds,
            "images_per_second": progress.images_done / progress.seconds if progress.seconds else None,
            "presentations_per_image": progress.presentations / progress.images_done if progress.images_done else None,
            "accuracy_history": progress.accuracy_history,
        },
    }
    record = make_record(summary, started)
    write_record(directory / EVALUATION_FILE, record)
    shutil.rmtree(shards)
    save_run_plots(directory, state, progress, np.asarray(figures["confusion_matrix"]), first_block, params)
    return record
