"""The neural mesh of Papakipos & Beck, rate and spiking: the exchange against a neuron-by-neuron
reading of the paper, energy conservation, the one-layer net it emulates, gradients, training."""

from __future__ import annotations

import pytest
import torch

from rate_models.mesh import (
    DIRECTIONS,
    MeshConfig,
    NeuralMesh,
    OneLayerConfig,
    build_one_layer,
    energy,
    exchange,
    neighbour_sources,
    run_mesh,
    transfer_coefficients,
)
from spikebridge import models
from spikebridge.training import LOSSES, TrainConfig, train
from spiking.mesh import SpikingMesh, SpikingMeshConfig

# (row, column) step of each direction of DIRECTIONS
STEPS = {"up": (-1, 0), "down": (1, 0), "left": (0, -1), "right": (0, 1)}


def exchange_one_by_one(firing: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """I − D neuron by neuron, as the paper describes it: each neuron sends W_dir · f / 4 to its
    neighbour that way on the torus and loses |W_dir| · f / 4."""
    _, height, width = weights.shape
    change = torch.zeros_like(firing)
    for row in range(height):
        for column in range(width):
            for index, direction in enumerate(DIRECTIONS):
                sent = weights[index, row, column] * firing[:, row, column] / 4
                down, right = STEPS[direction]
                change[:, (row + down) % height, (column + right) % width] += sent
                change[:, row, column] -= sent.abs()
    return change


@pytest.mark.parametrize("grid", [(3, 4), (5, 1), (1, 6), (2, 2)])
def test_the_exchange_moves_each_neurons_energy_to_its_four_neighbours_on_the_torus(grid):
    torch.manual_seed(0)
    weights = torch.empty(4, *grid, dtype=torch.float64).uniform_(-1, 1)
    firing = torch.rand(3, *grid, dtype=torch.float64)
    fast = exchange(firing.flatten(1), transfer_coefficients(weights), neighbour_sources(*grid))
    torch.testing.assert_close(fast.view(3, *grid), exchange_one_by_one(firing, weights))


def random_drive(grid=(6, 5), batch=4, sign=1.0):
    torch.manual_seed(1)
    return sign * torch.rand(batch, *grid, dtype=torch.float64)


def test_energy_is_conserved_exactly_with_non_negative_weights_and_no_input_after_the_first_step():
    drive = random_drive()
    weights = torch.rand(4, *drive.shape[1:], dtype=torch.float64)
    states = run_mesh(drive, weights, window=30, input_every_step=False, relu_each_step=False, clip=False)
    torch.testing.assert_close(energy(states), energy(drive).expand(30, -1), rtol=1e-12, atol=1e-12)
    assert (states >= 0).all()  # a neuron never sends more than it holds


def test_energy_never_increases_with_any_weights():
    drive = torch.randn(4, 6, 5, dtype=torch.float64)
    weights = torch.empty(4, 6, 5, dtype=torch.float64).uniform_(-1, 1)
    totals = energy(run_mesh(drive, weights, window=30, input_every_step=False, relu_each_step=False, clip=False))
    assert (totals[1:] <= totals[:-1] + 1e-12).all()
    assert (totals[-1] < totals[0]).all()  # negative weights spend energy to inhibit


def test_input_shown_every_step_adds_its_energy_each_step():
    drive = random_drive()
    weights = torch.rand(4, *drive.shape[1:], dtype=torch.float64)
    totals = energy(run_mesh(drive, weights, window=5, input_every_step=True, relu_each_step=False, clip=False))
    steps = torch.arange(1, 6, dtype=torch.float64)[:, None]
    torch.testing.assert_close(totals, steps * energy(drive), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(("options", "activation"), [({"clip": True}, "clip"), ({"clip": False,
                         "relu_each_step": True}, "relu"), ({"clip": False}, "none")])
@pytest.mark.parametrize("window", [1, 10])
def test_with_zero_mesh_weights_the_mesh_is_the_one_layer_net(mnist_folder, options, activation, window):
    from idx_datasets import load
    from spikebridge.training import as_tensors

    images, _ = as_tensors(load("mnist", "test").head(64))
    mesh = NeuralMesh(MeshConfig(neurons=36, window=window, **options))
    with torch.no_grad():
        mesh.weights.zero_()
    net = build_one_layer(OneLayerConfig(neurons=36, activation=activation))
    net[1].load_state_dict(mesh.input.state_dict())
    net[3].load_state_dict(mesh.readout.state_dict())
    if activation == "none" and window > 1:  # without a clip, nothing stops zero-weight states from
        return  # being re-fired: the linear net is the mesh's window-1 case only
    torch.testing.assert_close(mesh(images), net(images))


def test_a_grid_that_cannot_hold_the_neurons_is_refused_in_one_line():
    with pytest.raises(ValueError, match="10 neurons make no square grid; give the width"):
        MeshConfig(neurons=10)
    with pytest.raises(ValueError, match="a grid of 12 neurons cannot be 5 wide"):
        SpikingMeshConfig(neurons=12, width=5)
    with pytest.raises(ValueError, match="activation must be one of"):
        OneLayerConfig(activation="tanh")


def test_the_weights_are_kept_within_one_so_no_neuron_sends_more_than_it_holds():
    for mesh in (NeuralMesh(), SpikingMesh()):
        with torch.no_grad():
            mesh.weights.mul_(5)
        mesh.constrain_()
        assert mesh.weights.abs().max() <= 1


def test_the_baseline_has_the_mesh_s_neuron_count_by_default():
    mesh, net = models.build("mesh"), models.build("one-layer")
    assert net[1].out_features == mesh.input.out_features == MeshConfig().neurons
    assert models.make_config("snn-mesh").neurons == MeshConfig().neurons


def test_spikes_conserve_membrane_plus_in_flight_energy_with_non_negative_weights_and_no_leak():
    """With β = 1 and W ≥ 0 the membranes before reset (energy held plus energy of the spikes in
    flight) sum to what the input put in, step after step, while spikes move it about."""
    torch.manual_seed(2)
    mesh = SpikingMesh(SpikingMeshConfig(neurons=36, steps=40, beta=1.0)).double()
    with torch.no_grad():
        mesh.weights.uniform_(0, 1)
    images = torch.rand(8, 1, 28, 28, dtype=torch.float64)
    membranes, spikes, _ = mesh.trajectory(images)
    totals = membranes.sum(-1)
    torch.testing.assert_close(totals, totals[0].expand_as(totals), rtol=1e-10, atol=1e-10)
    assert spikes[1:].sum() > 0 and (spikes.sum(0) > 0).sum() > 10  # energy did travel


def test_a_leak_or_negative_weights_only_lose_energy():
    torch.manual_seed(3)
    images = torch.rand(8, 1, 28, 28, dtype=torch.float64)
    for beta, low in ((0.9, 0.0), (1.0, -1.0)):
        mesh = SpikingMesh(SpikingMeshConfig(neurons=36, steps=20, beta=beta)).double()
        with torch.no_grad():
            mesh.weights.uniform_(low, 1)
            mesh.input.weight.abs_()  # a positive start, so a leak can only lose energy
        totals = mesh.trajectory(images)[0].sum(-1)
        assert (totals[1:] <= totals[:-1] + 1e-9).all()
        assert (totals[-1] < totals[0] - 1e-3).all()


@pytest.mark.parametrize("coding", ["current", "poisson"])
def test_surrogate_gradients_reach_every_direction_weight(coding):
    torch.manual_seed(4)
    config = SpikingMeshConfig(neurons=64, input_coding=coding)
    mesh = SpikingMesh(config)
    images, labels = torch.rand(64, 1, 28, 28), torch.randint(0, 10, (64,))
    LOSSES[models.entry("snn-mesh").loss](mesh(images), labels).backward()
    fired = mesh.trajectory(images)[1].sum((0, 1)) > 0 if coding == "current" else torch.ones(64, dtype=bool)
    assert fired.float().mean() > 0.75
    # a weight moves energy only when its neuron fires: the gradient reaches each such weight, every direction
    reached = (mesh.weights.grad != 0).flatten(1)
    assert torch.equal(reached, fired.expand_as(reached))


def test_the_spiking_mesh_counts_spikes_and_synaptic_operations_by_fan_out():
    torch.manual_seed(5)
    mesh = SpikingMesh(SpikingMeshConfig(neurons=16, input_coding="poisson"))
    images = torch.rand(4, 1, 28, 28)
    torch.manual_seed(6)
    run = mesh.run(images)
    torch.manual_seed(6)  # the same Poisson input again
    simulation = mesh.simulate(images, mesh.config.steps, measure=True)
    torch.testing.assert_close(run.spike_counts[0], simulation.spike_counts[0])
    input_spikes = simulation.input_counts.flatten(1).sum(1)
    expected = 16 * input_spikes + (len(DIRECTIONS) + 10) * run.spike_counts[0].sum(1)
    torch.testing.assert_close(run.synaptic_ops, expected)
    assert run.input_ops == 0


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mesh", "snn-mesh", "one-layer"])
def test_a_short_training_on_mnist_clears_a_bar(tmp_path, name):
    run = train(name, None, TrainConfig(train_images=10_000, test_images=2_000, epochs=1, learning_rate=3e-3),
                runs_root=tmp_path, progress=False)
    assert run.test_accuracy > 0.8  # chance is 10 %; about 86 % after this epoch
