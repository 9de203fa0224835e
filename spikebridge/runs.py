"""Run folders: ``runs/<name>-<time>/`` holding config.json, metrics.json, weights and plots."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from idx_datasets.atomic import atomic_path, write_json_atomic
from spikebridge.records import source_commit, utc_now

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.json"


class RunError(RuntimeError):
    """A run folder is missing, incomplete or does not fit the request; one line names the fix."""


def new_run_dir(root: Path, name: str) -> Path:
    """Create and return ``root/<name>-<YYYYmmdd-HHMMSS>`` (with a suffix if that exists)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    candidate = Path(root) / f"{name}-{stamp}"
    suffix = 1
    while candidate.exists():
        suffix += 1
        candidate = Path(root) / f"{name}-{stamp}-{suffix}"
    candidate.mkdir(parents=True)
    return candidate


def run_folder(root: Path, name: str, directory: Path | None = None) -> Path:
    """``directory`` if given (created; refused if it already holds a run), else a new
    ``root/<name>-<time>`` (:func:`new_run_dir`)."""
    if directory is None:
        return new_run_dir(root, name)
    directory = Path(directory)
    if (directory / CONFIG_FILE).exists():
        raise RunError(f"{directory} already holds a run; resume it instead")
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def write_json(run_dir: Path, name: str, payload: Any) -> None:
    write_json_atomic(Path(run_dir) / name, payload)


def read_json(run_dir: Path, name: str) -> Any:
    path = Path(run_dir) / name
    if not path.is_file():
        raise RunError(f"{path} does not exist; is {run_dir} a run folder made by spikebridge?")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise RunError(f"{path} is not valid JSON ({exc}); the run folder is damaged") from None


def note_resumed(run_dir: Path, done: dict[str, int]) -> None:
    """Add the commit and time that continue a run after ``done`` (e.g. ``{"images": 5000}``) to
    the ``resumed`` list of its configuration, so a run trained in chunks names every commit."""
    config = read_json(run_dir, CONFIG_FILE)
    config["resumed"] = [*config.get("resumed", []), {**done, "commit": source_commit(), "date": utc_now()}]
    write_json(run_dir, CONFIG_FILE, config)


def training_commits(config: dict[str, Any]) -> list[dict[str, Any]]:
    """The commit that started a run, then each that resumed it (:func:`note_resumed`), from the
    run's saved configuration."""
    started = {"commit": config.get("environment", {}).get("commit", "not recorded")}
    return [started, *config.get("resumed", [])]


def figure_with_axes(rows: int = 1, columns: int = 1, **options: Any):
    """A matplotlib ``Figure`` and its axes, as ``plt.subplots`` gives them, made without pyplot so
    that the caller's backend and pyplot's figure list stay as they are; ``sharex``, ``sharey``
    and ``squeeze`` go to the subplots, other options to the figure."""
    from matplotlib.figure import Figure

    layout = {name: options.pop(name) for name in ("sharex", "sharey", "squeeze") if name in options}
    figure = Figure(**options)
    return figure, figure.subplots(rows, columns, **layout)


def save_figure(figure, path: Path) -> None:
    """Save a matplotlib figure atomically, in the format its file name ends with."""
    with atomic_path(Path(path)) as partial:
        figure.savefig(partial, format=Path(path).suffix.lstrip("."), dpi=120, bbox_inches="tight")
