"""Shared fixtures: the real MNIST files from the data cache, and private cache folders."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from idx_datasets import cache_root, fetch

torch.set_num_threads(2)


@pytest.fixture(scope="session")
def mnist_folder() -> Path:
    """The verified MNIST folder of the shared cache (fetched once if missing)."""
    fetch("mnist", report=lambda message: None)
    return cache_root() / "mnist"


@pytest.fixture
def private_cache(tmp_path, monkeypatch) -> Path:
    """An empty data cache used only by this test (``SPIKEBRIDGE_DATA`` points at it)."""
    folder = tmp_path / "cache"
    folder.mkdir()
    monkeypatch.setenv("SPIKEBRIDGE_DATA", str(folder))
    return folder


@pytest.fixture
def private_mnist_copy(private_cache, mnist_folder) -> Path:
    """A private copy of the real MNIST files that a test may damage."""
    target = private_cache / "mnist"
    shutil.copytree(mnist_folder, target, ignore=shutil.ignore_patterns(".*"))
    return target
