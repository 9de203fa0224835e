"""The IDX format of LeCun's MNIST files.

Header: two zero bytes, a type code (0x08 = unsigned byte), the number of dimensions n, then n
big-endian uint32 sizes; the data follow in C order. Image files have magic 2051 (n = 3),
label files 2049 (n = 1). Files may be gzipped; the pinned checksums are of the decoded bytes.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from idx_datasets.errors import DataError

UNSIGNED_BYTE = 0x08
GZIP_MAGIC = b"\x1f\x8b"


def decode_file(path: Path) -> bytes:
    """Return the decoded bytes of an IDX file, raw or gzipped (``*.gz`` or gzip magic)."""
    data = Path(path).read_bytes()
    if data[:2] != GZIP_MAGIC:
        return data
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(
            f"{path} is not a valid gzip file ({exc}); delete it and fetch the data again"
        ) from None


def parse_idx(data: bytes, source: str, expected_magic: int | None = None) -> np.ndarray:
    """Parse decoded IDX bytes into a uint8 array; ``source`` names the file in errors."""
    if len(data) < 4:
        raise DataError(f"{source} is too short to be an IDX file ({len(data)} bytes)")
    magic = int.from_bytes(data[:4], "big")
    type_code, ndim = data[2], data[3]
    if data[:2] != b"\x00\x00" or type_code != UNSIGNED_BYTE or ndim == 0:
        raise DataError(
            f"{source} has wrong IDX magic number 0x{magic:08x} (expected an unsigned-byte "
            "IDX file such as 0x00000803 for images); it is not an MNIST-format file"
        )
    if expected_magic is not None and magic != expected_magic:
        raise DataError(
            f"{source} has wrong IDX magic number {magic} (expected {expected_magic}); "
            "images and labels may be swapped"
        )
    header_size = 4 + 4 * ndim
    shape = tuple(
        int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)
    )
    expected_size = header_size + int(np.prod(shape))
    if len(data) != expected_size:
        raise DataError(
            f"{source} is truncated or padded: header says {shape} ({expected_size} bytes), "
            f"file has {len(data)} bytes; delete it and fetch the data again"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header_size).reshape(shape)


def read_idx(path: Path, expected_magic: int | None = None) -> np.ndarray:
    """Read an IDX file (raw or gzipped) from disk without checksum verification."""
    path = Path(path)
    return parse_idx(decode_file(path), str(path), expected_magic)
