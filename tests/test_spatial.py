"""Spatial networks of Wołczyk et al., rate and spiking: the double task's data, the costs'
gradients, the greedy split, the cross-task traffic, refusals and short real trainings."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from idx_datasets import load
from idx_datasets.double import load_double
from rate_models.spatial import (
    SpatialConfig,
    SpatialNetwork,
    costs,
    cross_task_weight_share,
    density_cost,
    split_tasks,
    task_masks,
    transport_cost,
)
from spikebridge.task_split import split_report
from spikebridge.training import TrainConfig, dataset_tensors, train
from spiking.spatial import SpikingSpatial, SpikingSpatialConfig, cross_task_spike_traffic

SMALL = {"inputs": 784, "widths": (12, 10, 8, 6)}


def test_each_representation_has_its_shape_and_labels_and_mixing_is_the_pixelwise_sum(mnist_folder):
    digits, fashion = load("mnist", "test"), load("fashion", "test")
    concatenated = load_double("mnist+fashion/concatenated", "test")
    mixed = load_double("mnist+fashion/mixed", "test")
    sequential = load_double("mnist+fashion/sequential", "test")
    assert concatenated.images.shape == (10_000, 28, 56) and mixed.images.shape == (10_000, 28, 28)
    assert sequential.images.shape == (20_000, 28, 28)
    assert (concatenated.labels[:, 0] == digits.labels).all() and (mixed.labels == concatenated.labels).all()
    partner = next(i for i in range(len(fashion)) if (fashion.images[i] == concatenated.images[0, :, 28:]).all())
    assert concatenated.labels[0, 1] == fashion.labels[partner]
    np.testing.assert_array_equal(mixed.images[0], digits.images[0].astype(np.uint16) + fashion.images[partner])
    one_label = (sequential.labels >= 0).sum(1)
    assert (one_label == 1).all() and set((sequential.labels[:100, 0] >= 0).tolist()) == {True, False}
    images, labels = dataset_tensors("mnist+fashion/concatenated", "test", 5)
    assert images.shape == (5, 1, 28, 56) and labels.shape == (5, 2) and float(images.max()) <= 1


def test_an_unknown_representation_or_a_missing_cost_layer_is_refused_in_one_line():
    with pytest.raises(ValueError, match="unknown representation 'interleaved' of the double task; choose one of"):
        dataset_tensors("mnist+fashion/interleaved", "test")
    with pytest.raises(ValueError, match="costs cannot start at hidden layer 7: the network has 4 hidden layers"):
        SpatialConfig(first_cost_layer=7)
    with pytest.raises(ValueError, match="this network takes 1568 inputs, the data give 784"):
        SpatialNetwork()(torch.rand(2, 1, 28, 28))


def test_transport_pulls_connected_neurons_together_and_density_pushes_neurons_apart():
    sources = torch.tensor([[0.0, 0.0], [3.0, 0.0]])
    targets = torch.tensor([[1.0, 1.0]], requires_grad=True)
    weights = torch.tensor([[1.0, 0.0]])  # connected to the first source only
    transport_cost(weights, sources, targets).backward()
    moved = targets.detach() - 0.1 * targets.grad
    assert (moved - sources[0]).norm() < (targets.detach() - sources[0]).norm()
    pair = torch.tensor([[0.0, 0.0], [0.5, 0.0]], requires_grad=True)
    density_cost(pair).backward()
    moved = pair.detach() - 0.1 * pair.grad
    assert (moved[0] - moved[1]).norm() > 0.5


def halves(network: torch.nn.Module) -> list[torch.Tensor]:
    """Zero every weight between two halves of each split layer (outputs: the two heads), so that
    the network is two disconnected networks from the first split layer on; the halves' tasks."""
    sizes = [layer.out_features for layer in network.layers]
    cost_layers = network.config.cost_layers
    tasks = [(torch.arange(sizes[index]) >= sizes[index] // 2).long() for index in cost_layers]
    with torch.no_grad():
        for position, index in enumerate(cost_layers[1:], start=1):
            different = tasks[position][:, None] != tasks[position - 1][None, :]
            network.layers[index].weight[different] = 0
    return tasks


@pytest.mark.parametrize("kind", ["rate", "spiking"])
def test_the_split_of_two_disconnected_halves_recovers_them_exactly(kind):
    torch.manual_seed(0)
    network = SpatialNetwork(SpatialConfig(**SMALL)) if kind == "rate" else \
        SpikingSpatial(SpikingSpatialConfig(**SMALL, threshold=0.05))
    tasks = halves(network)
    assert all(torch.equal(found, wanted) for found, wanted in zip(split_tasks(network), tasks, strict=True))
    assert cross_task_weight_share(network, tasks) == 0
    images = torch.rand(6, 1, 28, 28)
    own = network(images, masks=task_masks(tasks, 0))
    full = network(images)
    torch.testing.assert_close(own[..., :10], full[..., :10])  # the MNIST head never needed the other half
    if kind == "spiking":
        counts = network.simulate(images, network.config.steps, measure=True).spike_counts
        assert sum(float(c.detach().sum()) for c in counts) > 0
        traffic = cross_task_spike_traffic(network, counts, tasks)
        assert traffic["cross_task_spike_share"] == 0 and traffic["cross_task_spikes_per_image"] > 0


def test_the_costs_cover_the_layers_from_the_third_hidden_on():
    network = SpatialNetwork(SpatialConfig(**SMALL))
    assert network.config.cost_layers == [2, 3, 4]
    assert [len(network.positions[i]) for i in range(len(network.positions))] == [10, 8, 6, 20]
    transport, density = costs(network)
    assert transport > 0 and 0 < density <= 1
    assert float(SpatialNetwork(SpatialConfig(**SMALL, spatial=False)).penalty()) == 0


@pytest.mark.slow
@pytest.mark.parametrize(("model", "bar"), [("spatial", 0.6), ("snn-spatial", 0.6)])
def test_a_short_training_clears_a_bar_on_both_tasks(tmp_path, model, bar):
    run = train(model, {"inputs": 1568}, TrainConfig(dataset="mnist+fashion/concatenated", train_images=30_000,
                                                      test_images=2_000, epochs=4, batch_size=256,
                                                      learning_rate=5e-3), runs_root=tmp_path, progress=False)
    images, labels = dataset_tensors("mnist+fashion/concatenated", "test", 2_000)
    report = split_report(run.model, images, labels)
    assert report["full_mnist"] > bar and report["full_fashion"] > bar  # chance is 10 % on each
    assert "transport_cost" in run.history[-1] and "cross_task_weight_share" in run.history[-1]
