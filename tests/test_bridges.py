"""ANN-to-SNN conversion on real MNIST: the firing-rate equivalence of Gupta & Naveed, section 3.5."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from bridges import neurons
from bridges.common import ConversionError
from bridges.conversion import convert
from bridges.equivalence import measure
from bridges.neurons import (
    SPARSE_DENSITY,
    conv2d_integrate_and_fire,
    integrate_and_fire,
    max_pool_gate,
    max_pool_gate_stepwise,
    poisson_spikes,
)
from idx_datasets import load
from rate_models.quantised import QCFS
from spikebridge.training import as_tensors


@pytest.fixture(scope="module")
def mnist(mnist_folder):
    train_x, train_y = as_tensors(load("mnist", "train").head(4_000))
    test_x, test_y = as_tensors(load("mnist", "test").head(500))
    return train_x, train_y, test_x, test_y


def fit(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, epochs: int = 2) -> nn.Module:
    torch.manual_seed(0)
    optimiser = torch.optim.Adam(model.parameters(), lr=2e-3)
    model.train()
    for _ in range(epochs):
        for start in range(0, len(images), 64):
            optimiser.zero_grad()
            F.cross_entropy(model(images[start:start + 64]), labels[start:start + 64]).backward()
            optimiser.step()
    return model.eval()


@pytest.fixture(scope="module")
def mlp(mnist):
    train_x, train_y, _, _ = mnist
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Dropout(0.2), nn.Linear(128, 64),
                          nn.ReLU(), nn.Linear(64, 10))
    return fit(model, train_x, train_y)


def test_first_layer_rates_are_within_one_spike_of_the_activation(mnist, mlp):
    train_x, _, test_x, _ = mnist
    snn = convert(mlp, train_x[:500])
    activation = snn.analog(test_x[:200])[0][0]  # in units of the threshold
    for steps in (8, 32, 128):
        rate = snn.run(test_x[:200], steps).rates()[0]
        below = activation <= 1
        assert (rate[below] - activation[below]).abs().max() <= 1 / steps + 1e-6
        assert torch.all(rate[activation >= 1] == 1)  # saturated neurons fire every step
        assert torch.all(rate[activation <= 0] == 0)  # and negative drive never fires


def test_rates_track_relu_activations_better_as_steps_grow(mnist, mlp):
    train_x, _, test_x, test_y = mnist
    snn = convert(mlp, train_x[:500])
    report = measure(snn, test_x, test_y, [4, 16, 64, 256])
    for layer in range(2):
        correlations = [r.correlation[layer] for r in report.results]
        errors = [r.mean_abs_error[layer] for r in report.results]
        assert correlations == sorted(correlations) and correlations[-1] > 0.99
        assert errors == sorted(errors, reverse=True) and errors[-1] < errors[0] / 8


def test_spiking_accuracy_approaches_the_ann(mnist, mlp):
    train_x, _, test_x, test_y = mnist
    report = measure(convert(mlp, train_x[:500]), test_x, test_y, [2, 64])
    assert report.ann_accuracy > 0.85
    assert abs(report.results[-1].accuracy - report.ann_accuracy) <= 0.01
    assert report.results[0].accuracy <= report.results[-1].accuracy


def compare_bias_correction(ann: nn.Module, calibration: torch.Tensor, images: torch.Tensor, steps: int):
    """``ann`` converted from v = 0 without and with biases corrected for ``steps``: the corrected
    network, the ANN's logits on ``images``, per layer the mean rate deficit (clipped activation -
    rate) of each network, and each one's agreement with the ANN's predictions."""
    plain = convert(ann, calibration, v_init=0.0)
    corrected = convert(ann, calibration, v_init=0.0, bias_correction_steps=steps)
    activations, logits = plain.analog(images)
    runs = [snn.run(images, steps) for snn in (plain, corrected)]
    deficits = [tuple(float((activation.clamp(max=1) - run.rates()[layer]).mean()) for run in runs)
                for layer, activation in enumerate(activations)]
    agreement = [float((run.evidence.argmax(1) == logits.argmax(1)).float().mean()) for run in runs]
    return corrected, logits, deficits, agreement


def test_bias_correction_removes_the_rate_deficit_of_a_zero_initial_membrane(mnist, mlp):
    """From v = 0 a count is floor(T a), on average short of T a; the biases corrected on calibration
    images (Li et al. 2021) remove most of that deficit on test images, and the ANN stays the same."""
    train_x, _, test_x, _ = mnist
    corrected, logits, deficits, agreement = compare_bias_correction(mlp, train_x[:500], test_x, steps=4)
    torch.testing.assert_close(corrected.analog(test_x)[1], logits, rtol=0, atol=0)
    for plain_deficit, corrected_deficit in deficits:
        assert plain_deficit > 0.05
        assert abs(corrected_deficit) < plain_deficit / 2
    assert agreement[1] > agreement[0] + 0.15


@pytest.fixture(scope="module")
def user_net(mnist):
    """:class:`UserNet` trained for one epoch (a network that is not one of the project's classes)."""
    torch.manual_seed(0)
    return fit(UserNet(), mnist[0], mnist[1], epochs=1)


def test_a_network_built_here_converts_and_keeps_its_function(mnist, user_net):
    train_x, _, test_x, _ = mnist
    snn = convert(user_net, train_x[:500])
    with torch.no_grad():
        logits = user_net(test_x[:200])
    _, analog_logits = snn.analog(test_x[:200])
    torch.testing.assert_close(analog_logits, logits, rtol=1e-4, atol=1e-4)  # BatchNorm folded, scales undone
    agreement = (snn(test_x[:200], steps=64).argmax(1) == logits.argmax(1)).float().mean()
    assert agreement >= 0.95


def test_bias_correction_per_channel_brings_a_convolutional_network_closer_to_its_ann(mnist, user_net):
    train_x, _, test_x, _ = mnist
    corrected, _, deficits, agreement = compare_bias_correction(user_net, train_x[:500], test_x, steps=4)
    assert corrected.stacks[0][0].bias.shape == (8,)  # one correction per channel
    for plain_deficit, corrected_deficit in deficits:
        assert 0 < corrected_deficit < 0.7 * plain_deficit
    assert agreement[1] > agreement[0] + 0.3


def test_dense_simulation_as_on_a_gpu_gives_the_event_driven_spike_counts(mnist, user_net, monkeypatch):
    """The dense path (taken on a GPU, or when many inputs spike) against the compiled event-driven
    one on a CPU, with Poisson input, so that both convolutions and the max-pool gate are simulated."""
    train_x, _, test_x, _ = mnist
    snn = convert(user_net, train_x[:500], input_coding="poisson")
    event_driven = snn.run(test_x[:32], 24, generator=torch.Generator().manual_seed(3))
    monkeypatch.setattr(neurons, "SPARSE_DENSITY", -1.0)  # every layer dense
    dense = snn.run(test_x[:32], 24, generator=torch.Generator().manual_seed(3))
    for fast, slow in zip(event_driven.spike_counts, dense.spike_counts, strict=True):
        assert fast.sum() > 0
        assert (fast != slow).float().mean() < 1e-3  # equal but for float rounding at the threshold
    assert (event_driven.evidence.argmax(1) == dense.evidence.argmax(1)).float().mean() >= 0.97


def test_conversion_inside_inference_mode_counts_the_same_synaptic_events(mnist):
    train_x, _, test_x, _ = mnist
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4 * 13 * 13, 10))
    normal = convert(net, train_x[:200]).run(test_x[:8], 8)
    with torch.inference_mode():
        inferred = convert(net, train_x[:200]).run(test_x[:8], 8)
    assert torch.equal(normal.evidence, inferred.evidence)
    assert torch.equal(normal.synaptic_ops, inferred.synaptic_ops) and normal.synaptic_ops.min() > 0


@pytest.fixture(scope="module")
def pixel_spikes(mnist):
    """Poisson spikes of 16 test images over 12 steps, as 3 channels: ``[12, 16, 3, 28, 28]``."""
    images = mnist[2][:16].expand(-1, 3, -1, -1)
    return poisson_spikes(images, 12, torch.Generator().manual_seed(0))


@pytest.mark.parametrize("stride, padding, bias, pool", [
    ((1, 1), (0, 0), True, None), ((2, 2), (1, 1), False, ((2, 2), (2, 2))), ((1, 2), (2, 0), True, ((3, 2), (2, 1)))])
def test_event_driven_convolution_layer_equals_the_dense_one(pixel_spikes, stride, padding, bias, pool):
    generator = torch.Generator().manual_seed(1)
    # multiples of 1/32: every sum is exact in float32, so any order of summation gives the same spikes
    weight = torch.randint(-12, 13, (6, 3, 3, 4), generator=generator) / 32
    bias = torch.randint(-4, 5, (6,), generator=generator) / 32 if bias else None
    out_size = F.conv2d(pixel_spikes[0], weight, bias, stride, padding).shape[1:]
    membrane = torch.full((pixel_spikes.shape[1], *out_size), 0.5)
    counts = torch.randint(0, 3, membrane.shape, generator=generator).float()  # many ties for the gate
    assert 0 < float(pixel_spikes.mean()) < SPARSE_DENSITY  # the event-driven path is the one tested
    passed, final_counts, final_membrane = conv2d_integrate_and_fire(pixel_spikes, weight, bias, stride, padding,
                                                                     membrane, counts, pool)
    currents = F.conv2d(pixel_spikes.flatten(0, 1), weight, bias, stride, padding).unflatten(0, pixel_spikes.shape[:2])
    spikes, expected_membrane = integrate_and_fire(membrane, currents)
    expected, expected_counts = (spikes, counts + spikes.sum(0)) if pool is None else max_pool_gate_stepwise(
        spikes, counts, *pool)
    assert torch.equal(passed, expected) and torch.equal(final_membrane, expected_membrane)
    assert torch.equal(final_counts, expected_counts)
    assert 0 < float(passed.mean()) < 1
    assert torch.equal(membrane, torch.full_like(membrane, 0.5))  # the caller's state is left as it was


@pytest.mark.parametrize("kernel, stride", [((2, 2), (2, 2)), ((3, 2), (2, 1))])
def test_compiled_max_pool_gate_equals_the_stepwise_one(pixel_spikes, kernel, stride):
    counts = torch.randint(0, 3, pixel_spikes.shape[1:], generator=torch.Generator().manual_seed(2)).float()
    pooled, final_counts = max_pool_gate(pixel_spikes, counts, kernel, stride)
    expected, expected_counts = max_pool_gate_stepwise(pixel_spikes, counts, kernel, stride)
    assert torch.equal(pooled, expected) and torch.equal(final_counts, expected_counts)
    assert pooled.sum() > 0


class UserNet(nn.Module):
    """Conv-BatchNorm-ReLU-MaxPool, Conv-ReLU-AvgPool, Flatten, Dense-ReLU-Dropout, Dense."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3)
        self.norm1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 16, 3)
        self.pool = nn.AvgPool2d(2)
        self.fc1 = nn.Linear(16 * 5 * 5, 32)
        self.drop = nn.Dropout(0.1)
        self.fc2 = nn.Linear(32, 10)

    def forward(self, x):
        x = nn.functional.max_pool2d(F.relu(self.norm1(self.conv1(x))), 2)
        x = self.pool(torch.relu(self.conv2(x)))
        x = torch.flatten(x, 1)
        return self.fc2(self.drop(F.relu(self.fc1(x))))


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(784, 784), nn.Linear(784, 10)

    def forward(self, x):
        x = torch.flatten(x, 1)
        return self.fc2(F.relu(self.fc1(x)) + x)


@pytest.mark.parametrize("model, message", [
    (nn.Sequential(nn.Flatten(), nn.Linear(784, 10), nn.LeakyReLU(), nn.Linear(10, 10)), "LeakyReLU"),
    (nn.Sequential(nn.Flatten(), nn.Linear(784, 10), nn.Softmax(dim=1)), "Softmax is not supported"),
    (Residual(), "branches"),
    (nn.Sequential(nn.Flatten(), nn.Linear(784, 10), nn.ReLU()), "must end in a Linear or Conv2d"),
])
def test_unsupported_networks_are_refused_naming_the_layer(mnist, model, message):
    with pytest.raises(ConversionError, match=message):
        convert(model, mnist[0][:10])


def test_nan_weights_wrong_shapes_and_bad_options_are_refused(mnist, mlp):
    train_x = mnist[0]
    broken = nn.Sequential(nn.Flatten(), nn.Linear(784, 10), nn.ReLU(), nn.Linear(10, 10))
    with torch.no_grad():
        broken[3].weight[0, 0] = float("nan")
    with pytest.raises(ConversionError, match="3: weight contains NaN"):
        convert(broken, train_x[:10])
    with pytest.raises(ConversionError, match="do not fit the network"):
        convert(mlp, torch.zeros(10, 1, 20, 20))
    snn = convert(mlp, train_x[:100])
    with pytest.raises(ConversionError, match=r"expected \[batch, 1, 28, 28\]"):
        snn(torch.zeros(2, 784), steps=4)
    with pytest.raises(ConversionError, match="percentile"):
        convert(mlp, train_x[:10], percentile=0)
    with pytest.raises(ConversionError, match="bias_correction_steps"):
        convert(mlp, train_x[:10], bias_correction_steps=0)
    with pytest.raises(ConversionError, match="Poisson input needs pixel values in"):
        convert(mlp, train_x[:10], input_coding="poisson")(train_x[:2] * 2, steps=4)


def test_poisson_input_rates_track_the_activations(mnist, mlp):
    train_x, _, test_x, test_y = mnist
    snn = convert(mlp, train_x[:500], input_coding="poisson")
    report = measure(snn, test_x[:200], test_y[:200], [256])
    assert report.results[0].correlation[0] > 0.95
    assert report.results[0].accuracy >= report.ann_accuracy - 0.03


def test_qcfs_layer_converts_exactly_at_as_many_steps_as_levels(mnist):
    train_x, train_y, test_x, _ = mnist
    torch.manual_seed(0)
    model = fit(nn.Sequential(nn.Flatten(), nn.Linear(784, 64), QCFS(levels=4), nn.Linear(64, 10)), train_x, train_y)
    snn = convert(model, train_x[:100])
    assert snn.scales == [pytest.approx(model[2].threshold.item())]
    counts = snn.run(test_x[:100], steps=4).spike_counts[0]
    with torch.no_grad():
        quantised = model[2](model[1](model[0](test_x[:100]))) / model[2].threshold
    torch.testing.assert_close(counts / 4, quantised, rtol=0, atol=1e-5)


def test_brian2_integrate_and_fire_gives_the_same_spike_counts(mnist):
    from bridges.brian2_check import brian2_spike_counts

    train_x, train_y, test_x, _ = mnist
    torch.manual_seed(0)
    model = fit(nn.Sequential(nn.Flatten(), nn.Linear(784, 32), nn.ReLU(), nn.Linear(32, 16), nn.ReLU(),
                              nn.Linear(16, 10)), train_x, train_y, epochs=1)
    snn = convert(model, train_x[:200]).double()
    for image in test_x[:2].double():
        counts, evidence = brian2_spike_counts(snn, image, steps=32)
        run = snn.run(image[None], 32)
        for brian_counts, torch_counts in zip(counts, run.spike_counts, strict=True):
            np.testing.assert_array_equal(brian_counts, torch_counts[0].numpy().astype(np.int64))
        np.testing.assert_allclose(evidence, run.evidence[0].numpy(), rtol=1e-12, atol=1e-12)


def test_nir_file_reads_back_with_the_same_weights_and_neurons(mnist, mlp, tmp_path):
    import nir

    from bridges.nir_export import export_nir

    snn = convert(mlp, mnist[0][:200])
    export_nir(snn, tmp_path / "mlp.nir")
    graph = nir.read(str(tmp_path / "mlp.nir"))
    affine = [graph.nodes[name] for name, _ in graph.edges if isinstance(graph.nodes[name], nir.Affine)]
    linears = [op for stack in snn.stacks for op in stack if isinstance(op, nn.Linear)]
    assert len(affine) == len(linears) == 3
    for node, linear in zip(affine, linears, strict=True):
        np.testing.assert_array_equal(node.weight, linear.weight.detach().numpy())
        np.testing.assert_array_equal(node.bias, linear.bias.detach().numpy())
    neurons = [node for node in graph.nodes.values() if isinstance(node, nir.IF)]
    assert [n.v_threshold.shape for n in neurons] == [(128,), (64,)]
    assert all((n.v_threshold == 1).all() for n in neurons)
    assert neurons[0].metadata["reset"] == "subtract" and neurons[0].metadata["v_init"] == snn.options.v_init
    last = next(source for source, target in graph.edges if target == "output")  # the output current
    assert isinstance(graph.nodes[last], nir.Affine) and list(graph.nodes["input"].input_type["input"]) == [784]
    with pytest.raises(ConversionError, match="max-pool"):
        export_nir(convert(UserNet().eval(), mnist[0][:50]), tmp_path / "pooled.nir")
