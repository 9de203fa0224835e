"""Write files so that an interrupted write never leaves a complete-looking file behind.

Data goes to a hidden ``.<name>.partial-<pid>`` sibling, is flushed to disk, and only then
renamed onto the target (``os.replace`` is atomic on POSIX within one file system).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; rename it onto ``target`` if the block succeeds."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial-{os.getpid()}")
    try:
        yield partial
        with open(partial, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)


def write_bytes_atomic(target: Path, data: bytes) -> None:
    """Write ``data`` to ``target`` atomically."""
    with atomic_path(target) as partial:
        partial.write_bytes(data)


def write_json_atomic(target: Path, payload: Any) -> None:
    """Write ``payload`` as indented JSON to ``target`` atomically."""
    write_bytes_atomic(target, (json.dumps(payload, indent=2, sort_keys=True) + "\n").encode())
