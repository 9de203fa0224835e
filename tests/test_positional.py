"""Shader's positional neuron layers, rate and spiking: effective weights, positions that move or
stay, the distance penalty's pull, pruning whole neurons, frames, and short real trainings."""

from __future__ import annotations

import pytest
import torch

from rate_models.positional import (
    PositionalConfig,
    PositionalNetwork,
    VanillaConfig,
    effective_weights,
    layer_distances,
    mean_squared_weight,
    prune,
    regularisation,
)
from rate_models.positions import LayerPositions, layout, squared_distances
from spikebridge import position_frames
from spikebridge.sweeps import run_cell
from spikebridge.training import TrainConfig, train
from spiking.positional import SpikingPositional, SpikingPositionalConfig, spike_weighted_scores

SMALL = (784, 12, 8, 10)


def test_effective_weights_are_the_falloff_of_the_squared_distance_times_the_raw_weights():
    positions = LayerPositions([torch.tensor([[0.0, 0.0], [1.0, 0.0]]), torch.tensor([[0.0, 1.0]])], [False, True])
    weights = torch.tensor([[2.0, 3.0]])
    torch.testing.assert_close(positions.squared_distances(0), torch.tensor([[1.0, 2.0]]))
    torch.testing.assert_close(effective_weights(weights, positions.squared_distances(0), "inverse_square"),
                               torch.tensor([[2.0 / 2, 3.0 / 3]]))


def test_the_network_uses_b_of_d_times_w_for_its_own_positions():
    torch.manual_seed(0)
    network = PositionalNetwork(PositionalConfig(widths=SMALL))
    expected = network.layers[1].weight / (1 + squared_distances(network.positions[2], network.positions[1]))
    torch.testing.assert_close(network.layers[1].effective_weight(layer_distances(network, 1)), expected)


def test_the_layouts_are_the_authors():
    grid = layout("grid", 784)
    assert grid.min() == -2 and grid.max() == 2 and len(grid.unique(dim=0)) == 784
    torch.testing.assert_close(layout("circle", 10, extent=5).norm(dim=1), torch.full((10,), 5.0))
    line = layout("line", 10, extent=3)
    assert line[:, 1].abs().max() == 0 and line[0, 0] == -3 and line[-1, 0] == 3
    with pytest.raises(ValueError, match="unknown layout 'spiral'"):
        layout("spiral", 4)


def test_fixed_positions_stay_fixed_and_trainable_ones_receive_gradients():
    torch.manual_seed(1)
    network = PositionalNetwork(PositionalConfig(widths=SMALL))
    trainable = dict(network.named_parameters())
    assert "positions.layer_0" not in trainable and "positions.layer_3" not in trainable
    inputs, outputs = network.positions[0].clone(), network.positions[-1].clone()
    optimiser = torch.optim.Adam(network.parameters(), lr=0.1)
    images, labels = torch.rand(16, 1, 28, 28), torch.randint(0, 10, (16,))
    for _ in range(3):
        loss = torch.nn.functional.cross_entropy(network(images), labels) + network.penalty()
        optimiser.zero_grad()
        loss.backward()
        for hidden in (1, 2):
            assert network.positions[hidden].grad.abs().sum() > 0
        optimiser.step()
    assert torch.equal(network.positions[0], inputs) and torch.equal(network.positions[-1], outputs)


def test_the_distance_penalty_pulls_connected_neurons_together():
    """Gradient descent on d²·w² alone moves a hidden neuron towards the input it is strongly
    connected to, not towards the one it is not."""
    config = PositionalConfig(widths=(784, 1, 10), regulariser="distance", l2_strength=0.0)
    network = PositionalNetwork(config)
    with torch.no_grad():
        network.layers[0].weight.zero_()
        network.layers[0].weight[0, 0] = 1.0  # connected to input pixel 0 only
        network.layers[1].weight.zero_()
        network.positions.layer_1.copy_(torch.tensor([[1.0, 1.0]]))
    strong, weak = network.positions[0][0], network.positions[0][783]
    before = (network.positions[1][0] - strong).norm(), (network.positions[1][0] - weak).norm()
    regularisation(network, config).backward()
    with torch.no_grad():
        network.positions.layer_1 -= 0.1 * network.positions.layer_1.grad
    after = (network.positions[1][0] - strong).norm(), (network.positions[1][0] - weak).norm()
    assert after[0] < before[0] and after[1] > before[1]


@pytest.mark.parametrize("model", ["positional", "vanilla", "snn-positional"])
def test_pruning_removes_whole_neurons_and_shrinks_the_matrices(model):
    torch.manual_seed(2)
    network = {"positional": lambda: PositionalNetwork(PositionalConfig(widths=(784, 20, 10, 10))),
               "vanilla": lambda: PositionalNetwork(VanillaConfig(widths=(784, 20, 10, 10))),
               "snn-positional": lambda: SpikingPositional(SpikingPositionalConfig(widths=(784, 20, 10, 10),
                                                                                   input_coding="current"))}[model]()
    scores = mean_squared_weight(network)
    pruned = prune(network, 0.4, scores)
    removed = torch.cat(scores).argsort()[:12]  # 40 % of the 30 hidden neurons
    first, second = (removed < 20).sum().item(), (removed >= 20).sum().item()
    assert [layer.out_features for layer in pruned.layers] == [20 - first, 10 - second, 10]
    assert [layer.in_features for layer in pruned.layers] == [784, 20 - first, 10 - second]
    if network.positions is not None:
        assert [len(pruned.positions[i]) for i in range(4)] == [784, 20 - first, 10 - second, 10]
    # the author zeroes a pruned neuron's weights: removing it computes the same outputs
    zeroed = prune(network, 0.0)
    with torch.no_grad():
        for index in removed.tolist():
            layer, neuron = (0, index) if index < 20 else (1, index - 20)
            zeroed.layers[layer].weight[neuron] = 0
            zeroed.layers[layer].bias[neuron] = 0
            zeroed.layers[layer + 1].weight[:, neuron] = 0
    images = torch.rand(8, 1, 28, 28)
    torch.testing.assert_close(pruned(images), zeroed(images), rtol=1e-5, atol=1e-5)
    assert len(network.layers[0].weight) == 20  # the network itself is untouched


def test_a_neuron_that_never_fires_scores_nothing_in_the_spike_weighted_criterion():
    torch.manual_seed(3)
    network = SpikingPositional(SpikingPositionalConfig(widths=(784, 20, 10), input_coding="current"))
    with torch.no_grad():
        network.layers[0].bias[:5] = -100.0  # silenced
        network.layers[0].bias[5:] = 5.0  # fire at every step
    scores = spike_weighted_scores(network, torch.rand(8, 1, 28, 28))[0]
    assert (scores[:5] == 0).all() and (scores[5:] > 0).all()
    assert set(prune(network, 0.25, [scores]).layers[0].weight.shape[:1]) == {15}


def test_bad_settings_are_refused_in_one_line(tmp_path):
    with pytest.raises(ValueError, match="unknown falloff 'cubic'"):
        PositionalConfig(falloff="cubic")
    with pytest.raises(ValueError, match="the distance regulariser needs positions"):
        VanillaConfig(regulariser="distance")
    with pytest.raises(ValueError, match="outputs must be one of"):
        PositionalConfig(outputs="square")
    with pytest.raises(ValueError, match="keeps one beta for all neurons"):
        SpikingPositionalConfig(learn_beta=True)
    with pytest.raises(ValueError, match="the pruned proportion must be in"):
        prune(PositionalNetwork(), 1.0)
    status = run_cell("train-prune", {"model": "vanilla", "prune_criterion": "random"}, str(tmp_path / "cell"), 1)
    assert status["error"].startswith("ValueError: unknown pruning criterion 'random'; choose one of")


@pytest.mark.slow
def test_training_records_the_positions_as_frames_and_a_gif(tmp_path):
    run = train("positional", {"widths": list(SMALL)}, TrainConfig(train_images=500, test_images=100, epochs=2),
                runs_root=tmp_path, progress=False)
    snapshots = position_frames.read(run.directory)
    assert sorted(snapshots) == [0, 1, 2]
    assert torch.equal(torch.from_numpy(snapshots[2][1]), run.model.positions[1].detach())
    assert not (snapshots[0][1] == snapshots[2][1]).all()  # the hidden neurons moved
    assert (snapshots[0][0] == snapshots[2][0]).all()  # the input grid did not
    assert (run.directory / "positions.gif").stat().st_size > 0
    assert len(list((run.directory / position_frames.FRAMES).glob("*.png"))) == 3


@pytest.mark.slow
@pytest.mark.parametrize(("name", "bar"), [("positional", 0.8), ("vanilla", 0.85), ("snn-positional", 0.6)])
def test_a_short_training_on_mnist_clears_a_bar(tmp_path, name, bar):
    """Chance is 10 %; these reach about 86, 90 and 70 %."""
    run = train(name, None, TrainConfig(train_images=10_000, test_images=2_000, epochs=3, learning_rate=2e-3),
                runs_root=tmp_path, progress=False)
    assert run.test_accuracy > bar
