"""The log network of Thériault & François (2021) on real MNIST, and its Weber-Fechner spiking version."""

from __future__ import annotations

import copy
import json
import math
from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from bridges import ConversionError, convert
from bridges.brian2_check import brian2_log_coding_counts
from bridges.log_coding import LogSpikingNetwork, fit_log_law, log_coding_counts, log_law_count, measure_log_coding
from idx_datasets import load
from rate_models.log_network import (
    LOG_FLOOR,
    LogNetwork,
    class_image_sets,
    constrain_,
    first_order_change,
    fit_prototypes,
    log_activation,
)
from rate_models.probes import attack_sweep, fgsm, linearise
from spikebridge.training import TrainConfig, accuracy, as_tensors, train

SUBSET = TrainConfig(epochs=5, batch_size=64, learning_rate=5e-3, train_images=10_000, test_images=2_000)


@pytest.fixture(scope="module")
def mnist(mnist_folder):
    train_x, train_y = as_tensors(load("mnist", "train").head(10_000))
    test_x, test_y = as_tensors(load("mnist", "test").head(2_000))
    return train_x, train_y, test_x, test_y


@pytest.fixture(scope="module")
def joint_run(mnist, tmp_path_factory):
    return train("lognet", None, SUBSET, tmp_path_factory.mktemp("runs"), progress=False)


def assert_constrained(network: LogNetwork) -> None:
    assert float(network.w1.detach().min()) >= 0 and float(network.w1.detach().max()) <= 1
    assert float(network.w2.detach().min()) >= 0


def test_constraints_are_the_papers():
    w1, w2 = torch.tensor([[-0.3, 0.4, 1.7]]), torch.tensor([[-0.2, 0.5]])
    constrain_(w1, w2)
    assert torch.equal(w1, torch.tensor([[0.3, 0.4, 1.0]])) and torch.equal(w2, torch.tensor([[0.0, 0.5]]))


def test_joint_training_keeps_the_constraints_and_learns(joint_run):
    assert_constrained(joint_run.model)
    assert joint_run.test_accuracy > 0.85


def test_control_network_learns_with_frozen_class_prototypes(mnist, tmp_path):
    train_x, train_y, _, _ = mnist
    sets = class_image_sets(train_x, train_y, hidden=100, set_size=50)
    assert sets.shape == (100, 50, 784)

    prototypes = []

    def first_stage(model):
        model.w1.data = fit_prototypes(model.w1.data, sets, steps=100, learning_rate=1.0)
        prototypes.append(model.w1.detach().clone())

    run = train("lognet", {"train_first_layer": False},
                replace(SUBSET, learning_rate=1e-2), tmp_path, progress=False, prepare=first_stage)
    network = run.model
    assert_constrained(network)
    assert torch.equal(network.w1, prototypes[0])  # frozen through the second stage
    assert json.loads((run.directory / "config.json").read_text())["prepare"].endswith("first_stage")
    # each prototype looks most like the mean image of its own class
    class_means = torch.stack([train_x[train_y == c].flatten(1).mean(0) for c in range(10)])
    similarity = F.normalize(network.w1, dim=1) @ F.normalize(class_means, dim=1).t()
    assert (similarity.argmax(1) == torch.arange(100) % 10).float().mean() >= 0.9
    assert run.test_accuracy > 0.6


def test_paper_loss_collapses_w2_for_pixels_in_unit_range(tmp_path):
    """x2 = log(mean projection) < 0 when pixels and w1 are in [0, 1], so -x3[y] is lowered by
    shrinking w2, and the constraint w2 >= 0 stops it at zero (measured, see docs)."""
    config = TrainConfig(epochs=2, batch_size=32, schedule="constant", train_images=5_000, test_images=1_000,
                         loss="target_score")
    run = train("lognet", None, config, tmp_path, progress=False)
    assert float(run.model.w2.detach().max()) == 0.0
    assert run.test_accuracy < 0.15  # all scores equal: one class wins every image


def test_log_of_zero_is_guarded():
    network = LogNetwork()
    blank = torch.zeros(2, 1, 28, 28, requires_grad=True)
    hidden = log_activation(blank, network.w1)
    assert torch.equal(hidden, torch.full_like(hidden, math.log(LOG_FLOOR)))
    network(blank).sum().backward()
    assert torch.isfinite(blank.grad).all() and torch.isfinite(network.w1.grad).all()


def test_linearisation_removes_the_activation(joint_run, mnist, tmp_path):
    """The linearised networks are linear maps of the image, and removing the log costs the log
    net accuracy (the size of the drop, against the paper's, is in the docs)."""
    _, _, test_x, test_y = mnist
    relu = train("mlp", {"widths": [784, 100, 10], "dropout": 0.0}, SUBSET, tmp_path, progress=False).model
    a, b = test_x[:5], test_x[5:10]
    for network in (joint_run.model, relu):
        linear = linearise(network)
        with torch.no_grad():
            offset = linear(torch.zeros_like(a))
            torch.testing.assert_close(linear(a + b) - offset, (linear(a) - offset) + (linear(b) - offset),
                                       rtol=1e-4, atol=1e-4)
    assert not any(isinstance(module, torch.nn.ReLU) for module in linearise(relu).modules())
    log_drop = accuracy(joint_run.model, test_x, test_y) - accuracy(linearise(joint_run.model), test_x, test_y)
    assert log_drop > 0.05


def test_first_order_perturbation_matches_finite_differences_only_when_small(joint_run, mnist):
    _, _, test_x, _ = mnist
    network = copy.deepcopy(joint_run.model).double()
    image = test_x[:1].double()
    direction = torch.randn(image.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    direction = direction / direction.abs().max()
    errors = []
    for size in (1e-9, 0.5):
        with torch.no_grad():
            numerical = network(image + size * direction) - network(image)
            predicted = torch.log1p(first_order_change(image, size * direction, network.w1, network.w2))
        errors.append(float((predicted - numerical).abs().max() / numerical.abs().max()))
    assert errors[0] < 1e-3  # tiny perturbation: the formula is exact to first order
    assert not errors[1] <= 0.1  # large perturbation: it is not (or is undefined: 1 + delta x3 / x3 <= 0)


def test_log_coding_neuron_fires_one_more_spike_per_factor_r():
    growth, theta0, steps = 1.2, 1e-3, 600
    drives = 1e-3 * growth ** torch.arange(0, 30, dtype=torch.float64)  # four decades at the top
    counts = log_coding_counts(drives.expand(steps, -1), theta0, growth)
    steps_up = counts.diff()
    assert (steps_up == 1).float().mean() >= 0.9 and steps_up.min() >= 0 and steps_up.max() <= 1
    assert torch.equal(counts, log_law_count(drives * steps, theta0, growth))
    fit = fit_log_law(drives, counts)
    assert fit.slope == pytest.approx(1 / math.log(growth), rel=0.03)


def test_brian2_log_coding_neuron_gives_the_same_counts():
    drives = np.logspace(-4, 0, 17)
    torch_counts = log_coding_counts(torch.from_numpy(drives).expand(400, -1), 1e-3, 1.1)
    assert np.array_equal(brian2_log_coding_counts(drives, 400, 1e-3, 1.1), torch_counts.numpy())


def test_converted_log_network_approaches_the_rate_accuracy(joint_run, mnist):
    train_x, _, test_x, test_y = mnist
    snn = convert(joint_run.model, train_x[:500])
    assert isinstance(snn, LogSpikingNetwork)
    report = measure_log_coding(snn, test_x, test_y, [8, 64])
    few, many = report.results
    assert many.accuracy > few.accuracy
    assert many.accuracy >= report.ann_accuracy - 0.01
    assert many.correlation[0] > few.correlation[0] and many.correlation[0] > 0.99
    assert many.first_layer_within_one_spike == 1.0  # constant current: the counts follow the log law
    poisson = convert(joint_run.model, train_x[:500], input_coding="poisson")
    assert (poisson(test_x[:500], steps=64).argmax(1) == test_y[:500]).float().mean() >= report.ann_accuracy - 0.05


def test_log_conversion_refusals(joint_run, mnist):
    train_x = mnist[0][:100]
    broken = LogNetwork()
    broken.w2.data[0, 0] = float("nan")
    with pytest.raises(ConversionError, match="w2"):
        convert(broken, train_x)
    negative = LogNetwork()
    negative.w1.data[0, 0] = -0.5
    with pytest.raises(ConversionError, match="non-negative"):
        convert(negative, train_x)
    with pytest.raises(ConversionError, match="unknown option 'percentile'"):
        convert(joint_run.model, train_x, percentile=99.0)
    with pytest.raises(ConversionError, match="does not fit"):
        convert(joint_run.model, train_x)(torch.zeros(2, 1, 20, 20), steps=8)


def test_attacks_lower_accuracy_and_find_flipping_epsilons(joint_run, mnist):
    _, _, test_x, test_y = mnist
    sweep = attack_sweep(joint_run.model, test_x[:200], test_y[:200], [0.01, 0.1, 0.3], fgsm)
    assert sweep.accuracy[-1] < sweep.accuracy[0] - 0.3
    first = sweep.smallest_epsilon == torch.tensor(0.01)  # flipped already by the smallest eps
    assert first.any()
    adversarial = fgsm(joint_run.model, test_x[:200][first], test_y[:200][first], 0.01)
    with torch.no_grad():
        assert (joint_run.model(adversarial).argmax(1) != test_y[:200][first]).all()
