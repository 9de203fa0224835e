"""Results records: the small JSON file behind every published figure.

A record is one JSON object, ``{"provenance": {...}, ...results}``. The provenance says how the
results were produced, so that a figure in the docs can be traced and re-run:

- ``command``: the command line that produced it (``spikebridge ...`` or ``python <script> ...``);
- ``commit``: the git commit of the source tree, marked when it had uncommitted changes;
- ``date``: when the job started and when the record was written (UTC, ISO 8601);
- ``machine``: CPU model, cores, the threads the job used, the 1-minute load average at start and
  end (a load above the job's own threads means something else ran), and a free-text ``note``
  from ``$SPIKEBRIDGE_RECORD_NOTE`` for what the load cannot tell;
- ``seeds``: every seed the results depend on, by name;
- ``environment``: the versions of Python and of the packages that decide the numbers.

Records hold figures, never weights: run folders keep the checkpoints, and
``benchmarks/results/`` keeps the records that the docs quote (``benchmarks/report.py`` checks
the docs' tables against them).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import shlex
import subprocess
import sys
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

from idx_datasets.atomic import write_json_atomic

PROVENANCE_FIELDS = ("command", "commit", "date", "machine", "seeds")
NOTE_VARIABLE = "SPIKEBRIDGE_RECORD_NOTE"
SOURCE_ROOT = Path(__file__).resolve().parents[1]


class RecordError(ValueError):
    """A results record is missing, unreadable or lacks its provenance; one line names the file."""


def environment() -> dict[str, str]:
    """Versions of the interpreter and of the packages that decide the numbers, and the commit."""
    versions = {"python": sys.version.split()[0], "platform": platform.platform(), "commit": source_commit()}
    for package in ("spikebridge", "torch", "numpy", "brian2", "brian2cuda", "snntorch"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions


def source_commit() -> str:
    """``git rev-parse --short HEAD`` of the source tree, ``+ uncommitted changes`` if tracked files
    differ from it; ``unknown`` outside a git checkout (an installed wheel)."""

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(SOURCE_ROOT), *args], capture_output=True, text=True,
                              check=True, timeout=30).stdout.strip()

    try:
        commit = git("rev-parse", "--short=12", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{commit} + uncommitted changes" if dirty else commit


def command_line(argv: list[str] | None = None) -> str:
    """The command that started this process, as a user would type it from the repository root."""
    argv = list(sys.argv if argv is None else argv)
    program, arguments = Path(argv[0]), [portable_argument(argument) for argument in argv[1:]]
    if program.name in ("spikebridge", "__main__.py") or program.parent.name == "spikebridge":
        return shlex.join(["spikebridge", *arguments])
    try:
        program = program.resolve().relative_to(Path.cwd())
    except ValueError:
        pass
    return shlex.join(["python", str(program), *arguments])


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _load_average() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def utc_now() -> str:
    """The current UTC time to the second, ISO 8601."""
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def provenance(seeds: Mapping[str, int | str | None], threads: Mapping[str, int] | None = None,
               command: str | None = None) -> dict[str, Any]:
    """How, where and when a result is being produced; call it when the job starts.

    ``seeds`` names every seed the results depend on; ``threads`` the threads the job runs on
    beyond torch's (e.g. ``{"openmp": 1}`` for Brian2), torch's own are added.
    """
    used_threads = dict(threads or {})
    if "torch" in sys.modules:
        used_threads.setdefault("torch", sys.modules["torch"].get_num_threads())
    try:
        usable_cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable_cores = os.cpu_count()
    return {
        "command": command or command_line(),
        "commit": source_commit(),
        "date": {"started": utc_now()},
        "machine": {
            "cpu": _cpu_model(),
            "cores": os.cpu_count(),
            "usable_cores": usable_cores,
            "threads": used_threads,
            "load_average_1min": {"start": _load_average()},
            "note": os.environ.get(NOTE_VARIABLE, ""),
        },
        "seeds": dict(seeds),
        "environment": environment(),
    }


def finished(started: Mapping[str, Any]) -> dict[str, Any]:
    """``started`` (from :func:`provenance`) completed with the time and load at the end."""
    machine = dict(started["machine"])
    machine["load_average_1min"] = {**machine["load_average_1min"], "end": _load_average()}
    return {**started, "date": {**started["date"], "finished": utc_now()}, "machine": machine}


def make_record(results: Mapping[str, Any], started: Mapping[str, Any]) -> dict[str, Any]:
    """The record: ``results`` under the finished provenance."""
    if "provenance" in results:
        raise ValueError("results must not carry their own 'provenance' key")
    return {"provenance": finished(started), **results}


def write_record(path: Path, record: Mapping[str, Any]) -> Path:
    """Write a record made by :func:`make_record` atomically (never half-written) and return its path."""
    missing = [name for name in PROVENANCE_FIELDS if name not in record.get("provenance", {})]
    if missing:
        raise RecordError(f"{path}: the record lacks provenance fields {missing}")
    write_json_atomic(Path(path), record)
    return Path(path)


def read_record(path: Path) -> dict[str, Any]:
    """A record from disk, with its provenance checked."""
    path = Path(path)
    if not path.is_file():
        raise RecordError(f"{path} does not exist; the command in the docs beside it writes it")
    try:
        record = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise RecordError(f"{path} is not valid JSON ({exc})") from None
    missing = [name for name in PROVENANCE_FIELDS if name not in record.get("provenance", {})]
    if missing:
        raise RecordError(f"{path} lacks provenance fields {missing}; see spikebridge.records")
    return record


def portable_path(path: Path) -> str:
    """``path`` without a machine-specific prefix: relative to the working directory or the
    repository where it lies below one of them, else its last folder and name (``.../runs/NAME``),
    never a folder at the top of the file system (``/scratch/runs`` gives ``.../runs``)."""
    resolved = Path(path).resolve()
    for root in (Path.cwd(), SOURCE_ROOT):
        if resolved.is_relative_to(root):
            return str(resolved.relative_to(root))
    return str(Path("...", *resolved.parts[2:][-2:]))


def portable_argument(argument: str) -> str:
    """A command-line argument with an absolute path in it (``/a/b`` or ``--option=/a/b``) made portable."""
    option, equals, value = argument.partition("=") if argument.startswith("-") else ("", "", argument)
    return option + equals + portable_path(Path(value)) if value.startswith("/") else argument
