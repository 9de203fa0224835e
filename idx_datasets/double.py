"""MNIST and Fashion-MNIST at once: the double classification task of Wołczyk et al.,
"Biologically-Inspired Spatial Neural Networks".

Three representations of the input, each a data set name of the training loop
(``mnist+fashion/<representation>``):

- ``concatenated``: an MNIST image and a Fashion-MNIST image side by side, ``[N, 28, 56]``
  (1568 inputs once flattened); both labels.
- ``mixed``: their pixel-wise sum, ``[N, 28, 28]`` with values in [0, 510]; both labels.
- ``sequential``: one image from either set, ``[N, 28, 28]``; its own label, the other −1 (that
  head's loss is masked, and it is not scored).

Labels are ``int64 [N, 2]``: the MNIST digit, then the Fashion-MNIST class. A pair joins MNIST
image i with the Fashion-MNIST image at position i of a fixed permutation (seed 0 for the
training split, 1 for the test split); the sequential set interleaves both sets in a fixed random
order, so that its first n examples hold both.
"""

from __future__ import annotations

import numpy as np

from idx_datasets.store import LabelledImages, load

PREFIX = "mnist+fashion/"
REPRESENTATIONS = ("concatenated", "mixed", "sequential")
DOUBLE_DATASETS = [PREFIX + representation for representation in REPRESENTATIONS]
SPLIT_SEEDS = {"train": 0, "test": 1}
ABSENT = -1  # the label of a head that has nothing to say about an example


def is_double(dataset: str) -> bool:
    return dataset.startswith(PREFIX)


def representation_of(dataset: str) -> str:
    """``concatenated`` of ``mnist+fashion/concatenated``; an unknown one is refused in one line."""
    representation = dataset.removeprefix(PREFIX)
    if representation not in REPRESENTATIONS:
        raise ValueError(f"unknown representation {representation!r} of the double task; choose one of "
                         f"{DOUBLE_DATASETS}")
    return representation


def load_double(dataset: str, split: str) -> LabelledImages:
    """One split of ``mnist+fashion/<representation>`` (see the module docstring)."""
    representation = representation_of(dataset)
    digits, fashion = load("mnist", split), load("fashion", split)
    order = np.random.default_rng(SPLIT_SEEDS[split]).permutation(len(fashion))
    if representation == "sequential":
        images = np.concatenate([digits.images, fashion.images])
        absent_digits, absent_fashion = np.full(len(digits), ABSENT), np.full(len(fashion), ABSENT)
        labels = np.concatenate([np.stack([digits.labels, absent_digits], 1),
                                 np.stack([absent_fashion, fashion.labels], 1)]).astype(np.int64)
        interleaved = np.random.default_rng(SPLIT_SEEDS[split]).permutation(len(images))
        return LabelledImages(images[interleaved], labels[interleaved], dataset, split)
    partners = fashion.images[order]
    labels = np.stack([digits.labels, fashion.labels[order]], 1).astype(np.int64)
    if representation == "concatenated":
        images = np.concatenate([digits.images, partners], axis=2)
    else:
        images = digits.images.astype(np.uint16) + partners
    return LabelledImages(images, labels, dataset, split)
