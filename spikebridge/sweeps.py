"""Sweeps: a grid of runs over settings and seeds, in parallel, resumable, here or on a Ray cluster.

A spec (a TOML file, a mapping or a :class:`SweepSpec`) names a job kind of
:data:`spikebridge.sweep_jobs.JOB_KINDS`, the settings every cell shares, and the axes whose
product gives the cells, in the order written (the last axis varies fastest)::

    name = "mlp-width"
    kind = "train"
    threads = 1                      # torch / OpenMP threads per cell
    [settings]
    model = "mlp"
    epochs = 2
    train_images = 5000
    [axes]
    "model.widths" = [[784, 64, 10], [784, 256, 10]]
    seed = [0, 1, 2]

An axis may also list tables of settings that go together, each a value of the axis (its
``label`` names it in folders and tables; the axis name itself is then not a setting)::

    [axes]
    "model.neurons" = [16, 100]
    variant = [{label = "mesh", model = "mesh"},
               {label = "one-layer-relu", model = "one-layer", "model.activation" = "relu"}]

``run_sweep(spec)`` (``spikebridge sweep run SPEC.toml``) makes ``runs/sweep-<name>-<time>/`` with
``spec.json`` and one ordinary run folder per cell, ``cells/<axis=value_...>/``, whose
``cell.json`` holds its status (``running``, ``done`` or ``failed``), settings, metrics or
one-line error. Run again on the folder, a sweep skips finished cells and resumes the others from
their checkpoints; a failed cell is run again only with ``retry_failed``. A folder made by another
spec is refused, naming the setting that differs. Cells run in a pool of worker processes
(``workers``, by default the usable cores over the threads a cell asks for), or as Ray tasks that
request those threads as ``num_cpus`` (``ray``: an address, or ``"local"`` for an instance
started here); a Ray cell ships its folder both ways, so workers need not share a file system.

``sweep_report(folder)`` (``spikebridge sweep report FOLDER``) tabulates every metric as mean,
sample standard deviation (n − 1) and n over the ``seed`` axis for each combination of the other
axes, writes ``report.md``, the results record ``report.json`` and ``report.png`` (error bars
against the first axis that is not ``seed``).
"""

from __future__ import annotations

import io
import itertools
import json
import math
import multiprocessing
import os
import re
import shutil
import sys
import tarfile
import tempfile
import time
import traceback
from collections.abc import Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from idx_datasets.atomic import write_bytes_atomic
from spikebridge.records import make_record, provenance, write_record
from spikebridge.runs import figure_with_axes, new_run_dir, read_json, save_figure, write_json
from spikebridge.sweep_jobs import CELL_FILE, job_kind

SPEC_FILE, CELLS = "spec.json", "cells"
AXIS_ORDER = "axis_order"
DONE, FAILED, RUNNING = "done", "failed", "running"
SEED_AXIS = "seed"


class SweepError(ValueError):
    """A spec or sweep folder that cannot be run; one line names the fix."""


@dataclass(frozen=True)
class Cell:
    """One point of the grid: its folder name, its axis values and all its settings."""

    name: str
    axes: dict[str, Any]
    settings: dict[str, Any]


@dataclass(frozen=True)
class SweepSpec:
    name: str
    kind: str
    axes: dict[str, list]
    settings: dict[str, Any] = field(default_factory=dict)
    threads: int = 1

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> SweepSpec:
        known = [f.name for f in cls.__dataclass_fields__.values()]
        data = dict(data)
        order = data.pop(AXIS_ORDER, None)  # spec.json keeps its keys sorted: the axes' order is kept apart
        if unknown := sorted(set(data) - set(known)):
            raise SweepError(f"a sweep spec has no field {unknown[0]!r}; it has {known}")
        missing = [name for name in ("name", "kind", "axes") if name not in data]
        if missing:
            raise SweepError(f"a sweep spec needs {missing[0]!r} (fields: {known})")
        axes = dict(data["axes"]) if order is None else {axis: data["axes"][axis] for axis in order}
        return cls(**{**data, "axes": axes, "settings": dict(data.get("settings", {}))})

    @classmethod
    def load(cls, path: Path) -> SweepSpec:
        if sys.version_info >= (3, 11):
            import tomllib
        else:  # pragma: no cover
            import tomli as tomllib
        try:
            return cls.from_mapping(tomllib.loads(Path(path).read_text()))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise SweepError(f"{path}: cannot read the sweep spec ({exc})") from None

    def check(self) -> None:
        """Refuse a bad spec before anything runs: the kind, the axes and every cell's settings."""
        kind = job_kind(self.kind)
        if not re.fullmatch(r"[\w.-]+", self.name):
            raise SweepError(f"sweep name {self.name!r} must be letters, digits, '.', '_' or '-'")
        if self.threads < 1:
            raise SweepError(f"threads must be >= 1, got {self.threads}")
        for axis, values in self.axes.items():
            if not isinstance(values, list) or not values:
                raise SweepError(f"axis {axis!r} must be a non-empty list of values")
            bundles = [value for value in values if isinstance(value, Mapping)]
            if bundles and len(bundles) < len(values):
                raise SweepError(f"axis {axis!r} mixes tables of settings with single values")
            for name in [axis] if not bundles else sorted({k for bundle in bundles for k in _bundled(bundle)}):
                if name in self.settings:
                    raise SweepError(f"{name!r} is both a fixed setting and set by axis {axis!r}")
        for cell in self.cells():
            kind.check(cell.settings)

    def cells(self) -> list[Cell]:
        """The product of the axes, in spec order (the last axis varies fastest)."""
        cells = []
        for values in itertools.product(*self.axes.values()):
            axes = dict(zip(self.axes, values, strict=True))
            name = "_".join(f"{axis}={_text(value)}" for axis, value in axes.items())
            settings = dict(self.settings)
            for axis, value in axes.items():
                settings.update(_bundled(value) if isinstance(value, Mapping) else {axis: value})
            cells.append(Cell(name, axes, settings))
        if len({cell.name for cell in cells}) < len(cells):
            raise SweepError("two cells would share a folder name: make the axis values distinct")
        return cells

    def to_json(self) -> dict[str, Any]:
        """The spec as JSON values (tuples become lists, as after a round trip), with the order of
        its axes, which names the cells, kept in ``axis_order``."""
        return json.loads(json.dumps({**asdict(self), AXIS_ORDER: list(self.axes)}))


LABEL = "label"  # names a table of settings that is one value of an axis


def _bundled(value: Mapping[str, Any]) -> dict[str, Any]:
    """The settings of a table that is one value of an axis (all but its label)."""
    return {name: setting for name, setting in value.items() if name != LABEL}


def _text(value: Any) -> str:
    """A readable, file-safe form of an axis value: lists joined by 'x', a table of settings by its
    label (or its settings), other characters kept short."""
    if isinstance(value, Mapping):
        text = str(value.get(LABEL) or "-".join(f"{k}-{_text(v)}" for k, v in value.items()))
    else:
        text = "x".join(map(_text, value)) if isinstance(value, list | tuple) else str(value)
    return re.sub(r"[^\w.+-]", "-", text)


def _difference(old: Any, new: Any, path: str = "") -> str | None:
    """The first setting (a dotted path) in which two specs differ, with both values."""
    if isinstance(old, dict) and isinstance(new, dict):
        for key in dict.fromkeys([*old, *new]):
            where = f"{path}{key}"
            if key not in old or key not in new:
                return f"{where} is {old.get(key)!r} there, {new.get(key)!r} here"
            if found := _difference(old[key], new[key], f"{where}."):
                return found
        return None
    return None if old == new else f"{path.rstrip('.')} is {old!r} there, {new!r} here"


# --- running one cell ---------------------------------------------------------------------------------

def _pin_threads(threads: int) -> None:
    import torch

    os.environ["OMP_NUM_THREADS"] = str(threads)
    torch.set_num_threads(threads)


def run_cell(kind: str, settings: dict[str, Any], folder: str, threads: int, progress: bool = False) -> dict:
    """Run one cell in ``folder`` and record its outcome in ``cell.json``; a failure is recorded
    with its one-line error, never raised."""
    folder_path = Path(folder)
    _pin_threads(threads)
    started = time.perf_counter()
    status: dict[str, Any] = {"status": RUNNING, "settings": settings}
    write_json(folder_path, CELL_FILE, status)
    try:
        metrics = job_kind(kind).run(settings, folder_path, progress)
        status = {**status, "status": DONE, "metrics": metrics}
    except Exception as exc:  # noqa: BLE001  (a cell's failure of any kind is its result)
        lines = str(exc).strip().splitlines() or [""]
        status = {**status, "status": FAILED, "error": f"{type(exc).__name__}: {lines[0]}",
                  "traceback": traceback.format_exc()}
    status["seconds"] = time.perf_counter() - started
    write_json(folder_path, CELL_FILE, status)
    return status


def _pack(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        if folder.exists():
            archive.add(folder, arcname=".")
    return buffer.getvalue()


def _unpack(data: bytes, folder: Path) -> None:
    """Replace ``folder`` with the archive's contents (unpacked beside it first, then renamed)."""
    partial = folder.with_name(f".{folder.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        archive.extractall(partial, filter="data")
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(partial, folder)


def _remote_cell(kind: str, settings: dict, packed: bytes, inputs: dict[str, bytes], threads: int) -> tuple:
    """A cell on a Ray worker: unpack its folder and inputs in a temporary folder, run, pack."""
    with tempfile.TemporaryDirectory(prefix="spikebridge-cell-") as scratch:
        folder, here = Path(scratch) / "cell", dict(settings)
        _unpack(packed, folder)
        for name, data in inputs.items():
            _unpack(data, Path(scratch) / "inputs" / name)
            here[name] = str(Path(scratch) / "inputs" / name)
        status = {**run_cell(kind, here, str(folder), threads), "settings": settings}  # the spec's paths, not ours
        write_json(folder, CELL_FILE, status)
        return status, _pack(folder)


# --- running a sweep ----------------------------------------------------------------------------------

def _status(folder: Path) -> str | None:
    try:
        return json.loads((folder / CELL_FILE).read_text())["status"]
    except (OSError, ValueError, KeyError):
        return None


def _open_folder(spec: SweepSpec, folder: Path | None, runs_root: Path) -> Path:
    if folder is None:
        folder = new_run_dir(runs_root, f"sweep-{spec.name}")
    elif (folder / SPEC_FILE).exists():
        if difference := _difference(read_json(folder, SPEC_FILE), spec.to_json()):
            raise SweepError(f"{folder} was made by another spec: {difference}; start a new sweep instead")
        return folder
    write_json(folder, SPEC_FILE, spec.to_json())
    return folder


def run_sweep(spec: SweepSpec | Mapping | Path, folder: Path | None = None, workers: int | None = None,
              ray: str | None = None, retry_failed: bool = False, runs_root: Path = Path("runs"),
              progress: bool = True) -> Path:
    """Run every unfinished cell of ``spec`` (in ``folder`` if given, else a new sweep folder),
    then write the report; returns the folder."""
    if not isinstance(spec, SweepSpec):
        spec = SweepSpec.load(spec) if isinstance(spec, str | Path) else SweepSpec.from_mapping(spec)
    spec.check()
    folder = _open_folder(spec, None if folder is None else Path(folder), runs_root)
    cells = spec.cells()
    skipped = {DONE} if retry_failed else {DONE, FAILED}
    todo = [cell for cell in cells if _status(folder / CELLS / cell.name) not in skipped]
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    workers = workers or max(1, usable // spec.threads)
    with tqdm(total=len(cells), initial=len(cells) - len(todo), unit="cell", desc=f"sweep {spec.name}",
              disable=not progress) as bar:
        if ray is None:
            _run_in_pool(spec, folder, todo, workers, bar)
        else:
            _run_on_ray(spec, folder, todo, ray, workers, bar)
    sweep_report(folder)
    return folder


def _show(bar: tqdm, running: list[str]) -> None:
    bar.set_postfix_str(("running: " + ", ".join(running))[:120] if running else "")


def _run_in_pool(spec: SweepSpec, folder: Path, todo: list[Cell], workers: int, bar: tqdm) -> None:
    """Cells in worker processes. If a worker dies (killed, out of memory), the pool is rebuilt and
    the cells it was running start again, from their checkpoints, once."""
    context = multiprocessing.get_context("spawn")
    attempts = {cell.name: 0 for cell in todo}
    while todo:
        broken: list[Cell] = []
        with ProcessPoolExecutor(workers, mp_context=context) as pool:
            futures: dict[Future, Cell] = {
                pool.submit(run_cell, spec.kind, cell.settings, str(folder / CELLS / cell.name), spec.threads): cell
                for cell in todo
            }
            pending = set(futures)
            while pending:
                _show(bar, [futures[f].name for f in pending
                            if f.running() and _status(folder / CELLS / futures[f].name) == RUNNING])
                finished, pending = wait(pending, timeout=2.0, return_when=FIRST_COMPLETED)
                for future in finished:
                    cell = futures[future]
                    try:
                        future.result()
                        bar.update(1)
                    except BrokenProcessPool:
                        attempts[cell.name] += 1
                        broken.append(cell)
        todo = [cell for cell in broken if attempts[cell.name] <= 1]
        for cell in broken:
            if attempts[cell.name] > 1:
                write_json(folder / CELLS / cell.name, CELL_FILE, {
                    "status": FAILED, "settings": cell.settings, "error": "its worker process died twice"})
                bar.update(1)
        if todo:
            tqdm.write(f"a worker process died; running {len(todo)} interrupted cell(s) again")


def _run_on_ray(spec: SweepSpec, folder: Path, todo: list[Cell], address: str, workers: int, bar: tqdm) -> None:
    try:
        import ray
    except ImportError:
        raise SweepError("--ray needs Ray: pip install 'spikebridge[ray]'") from None
    if not ray.is_initialized():
        if address == "local":
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
        else:
            ray.init(address=address, log_to_driver=False)
    kind = job_kind(spec.kind)
    remote = ray.remote(_remote_cell)
    refs = {}
    for cell in todo:
        inputs = {name: _pack(Path(cell.settings[name])) for name in kind.inputs}
        options = remote.options(num_cpus=spec.threads, num_gpus=1 if kind.needs_gpu(cell.settings) else 0)
        refs[options.remote(spec.kind, cell.settings, _pack(folder / CELLS / cell.name), inputs, spec.threads)] = cell
    while refs:
        ready, _ = ray.wait(list(refs), num_returns=1)
        cell = refs.pop(ready[0])
        try:
            _, packed = ray.get(ready[0])
            _unpack(packed, folder / CELLS / cell.name)
        except ray.exceptions.RayError as exc:  # the worker died or could not ship the cell back
            write_json(folder / CELLS / cell.name, CELL_FILE, {
                "status": FAILED, "settings": cell.settings, "error": str(exc).strip().splitlines()[0]})
        bar.update(1)


# --- the report ---------------------------------------------------------------------------------------

def _statistics(values: list[float]) -> dict[str, float | int | None]:
    n = len(values)
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else None
    return {"mean": mean, "std": std, "n": n}


def report_rows(spec: SweepSpec, folder: Path) -> tuple[list[dict], dict[str, list[str]]]:
    """One row per combination of the axes other than ``seed``: each metric's mean, std and n over
    the finished cells; and the cells that failed or are unfinished."""
    groups: dict[tuple, dict[str, list[float]]] = {}
    others = [axis for axis in spec.axes if axis != SEED_AXIS]
    unfinished: dict[str, list[str]] = {FAILED: [], "unfinished": []}
    for cell in spec.cells():
        key = tuple(json.dumps(cell.axes[axis]) for axis in others)
        group = groups.setdefault(key, {})
        try:
            status = json.loads((folder / CELLS / cell.name / CELL_FILE).read_text())
        except (OSError, ValueError):
            status = {"status": None}
        if status["status"] != DONE:
            unfinished[FAILED if status["status"] == FAILED else "unfinished"].append(cell.name)
            continue
        for metric, value in status["metrics"].items():
            if isinstance(value, int | float):
                group.setdefault(metric, []).append(float(value))
    rows = [{"axes": {axis: json.loads(value) for axis, value in zip(others, key, strict=True)},
             "metrics": {metric: _statistics(values) for metric, values in metrics.items()}}
            for key, metrics in groups.items()]
    return rows, unfinished


def _format(statistics: dict) -> str:
    std = "" if statistics["std"] is None else f" ± {statistics['std']:.4g}"
    return f"{statistics['mean']:.4g}{std} (n = {statistics['n']})"


def report_markdown(spec: SweepSpec, rows: list[dict]) -> str:
    others = [axis for axis in spec.axes if axis != SEED_AXIS]
    metrics = list(dict.fromkeys(metric for row in rows for metric in row["metrics"]))
    lines = ["| " + " | ".join([*others, *metrics]) + " |", "| " + " | ".join(["---"] * len(others)
                                                                            + ["---:"] * len(metrics)) + " |"]
    for row in rows:
        cells = [_text(value) if isinstance(value := row["axes"][axis], Mapping) else json.dumps(value)
                 for axis in others]
        cells += [_format(row["metrics"][m]) if m in row["metrics"] else "—" for m in metrics]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _plot(spec: SweepSpec, rows: list[dict], path: Path) -> None:
    """Each metric against the first axis that is not ``seed``, one line per value of the others."""
    others = [axis for axis in spec.axes if axis != SEED_AXIS]
    metrics = list(dict.fromkeys(metric for row in rows for metric in row["metrics"]))
    if not metrics:
        return
    x_axis = others[0] if others else None
    x_values = spec.axes[x_axis] if x_axis else [None]
    numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in x_values)
    position = {json.dumps(v): (v if numeric else index) for index, v in enumerate(x_values)}
    columns = min(3, len(metrics))
    grid_rows = math.ceil(len(metrics) / columns)
    figure, axes = figure_with_axes(grid_rows, columns, squeeze=False, figsize=(5 * columns, 3.6 * grid_rows))
    axes = axes.ravel()
    lines: dict[str, list[dict]] = {}
    for row in rows:
        label = ", ".join(f"{a}={_text(row['axes'][a])}" for a in others[1:])
        lines.setdefault(label, []).append(row)
    for axis, metric in zip(axes, metrics, strict=False):
        for label, members in lines.items():
            points = [(position[json.dumps(r["axes"][x_axis]) if x_axis else "null"], r["metrics"][metric])
                      for r in members if metric in r["metrics"]]
            axis.errorbar([p for p, _ in points], [s["mean"] for _, s in points],
                          yerr=[s["std"] or 0.0 for _, s in points], marker="o", capsize=3, label=label or None)
        axis.set(title=metric, xlabel=x_axis or "", ylabel="mean ± std over seeds")
        if numeric and min(x_values) > 0 and max(x_values) >= 20 * min(x_values):  # e.g. 16 to 1024 neurons
            axis.set_xscale("log")
        if not numeric:
            axis.set_xticks(range(len(x_values)), [_text(v) for v in x_values], rotation=30, fontsize=7)
        if len(lines) > 1:
            axis.legend(fontsize=7)
    for axis in axes[len(metrics):]:
        axis.set_visible(False)
    figure.tight_layout()
    save_figure(figure, path)


FAMILY = re.compile(r"(?P<prefix>.+)_(?P<value>\d+(?:\.\d+)?)")  # e.g. pruned_0.25: a family "pruned" at 0.25


def metric_families(rows: list[dict]) -> dict[str, list[tuple[float, str]]]:
    """Metrics that are one measure at several values (``<prefix>_<number>``, three or more):
    prefix -> [(value, metric name)] in order of value."""
    families: dict[str, list[tuple[float, str]]] = {}
    for metric in dict.fromkeys(metric for row in rows for metric in row["metrics"]):
        if match := FAMILY.fullmatch(metric):
            families.setdefault(match["prefix"], []).append((float(match["value"]), metric))
    return {prefix: sorted(members) for prefix, members in families.items() if len(members) >= 3}


def _plot_family(spec: SweepSpec, rows: list[dict], members: list[tuple[float, str]], prefix: str,
                 path: Path) -> None:
    """One family's metric against its value, one line (mean ± std over seeds) per row of the report."""
    others = [axis for axis in spec.axes if axis != SEED_AXIS]
    figure, axis = figure_with_axes(figsize=(6.5, 4.2))
    for row in rows:
        points = [(value, row["metrics"][metric]) for value, metric in members if metric in row["metrics"]]
        label = ", ".join(_text(row["axes"][a]) for a in others) or None
        axis.errorbar([p for p, _ in points], [s["mean"] for _, s in points], yerr=[s["std"] or 0.0 for _, s in points],
                      marker="o", capsize=3, label=label)
    axis.set(xlabel=prefix, ylabel="mean ± std over seeds", title=f"{spec.name}: {prefix}")
    axis.legend(fontsize=7)
    figure.tight_layout()
    save_figure(figure, path)


def sweep_report(folder: Path) -> dict:
    """Write ``report.md``, ``report.json`` (a results record), ``report.png`` and, for each family
    of metrics (:func:`metric_families`), ``report_<prefix>.png``; return the record."""
    folder = Path(folder)
    spec = SweepSpec.from_mapping(read_json(folder, SPEC_FILE))
    started = provenance(seeds={SEED_AXIS: spec.axes.get(SEED_AXIS, spec.settings.get(SEED_AXIS))})
    rows, unfinished = report_rows(spec, folder)
    write_bytes_atomic(folder / "report.md", report_markdown(spec, rows).encode())
    _plot(spec, rows, folder / "report.png")
    for prefix, members in metric_families(rows).items():
        _plot_family(spec, rows, members, prefix, folder / f"report_{prefix}.png")
    record = make_record({"spec": spec.to_json(), "rows": rows, **unfinished}, started)
    write_record(folder / "report.json", record)
    return record
