"""Surrogate-gradient spiking networks (spiking.surrogate_models) and their training through the one loop."""

from __future__ import annotations

import pytest
import snntorch as snn
import torch
from snntorch import surrogate

from spikebridge import models
from spikebridge.training import TrainConfig, train
from spiking.surrogate_models import SpikingMLP, SpikingMLPConfig, SurrogateSettings, encode


def plain_snntorch_loop(network: SpikingMLP, images: torch.Tensor) -> torch.Tensor:
    """The snntorch tutorials' way: every layer called once per step, Leaky neurons sharing the
    network's weights, decays and thresholds."""
    layers = [snn.Leaky(beta=lif.beta, threshold=lif.threshold, spike_grad=surrogate.atan()) for lif in network.neurons]
    membranes = [layer.init_leaky() for layer in layers]
    pixels, outputs = images.flatten(1), []
    for _ in range(network.config.steps):
        signal = pixels
        for index, (linear, layer) in enumerate(zip(network.linears, layers, strict=True)):
            signal, membranes[index] = layer(linear(signal), membranes[index])
        outputs.append(signal)
    return torch.stack(outputs)


def test_the_multi_step_network_equals_the_plain_snntorch_loop_in_spikes_and_gradients():
    torch.manual_seed(0)
    config = SpikingMLPConfig(widths=(30, 24, 16, 6), steps=6, beta=0.8, learn_beta=True, learn_threshold=True,
                              threshold=0.5)
    network = SpikingMLP(config)
    with torch.no_grad():  # strong enough that every layer spikes
        for linear in network.linears:
            linear.weight.mul_(4)
    images = torch.rand(9, 30)
    weights = torch.randn(6, 9, 6)  # a loss that weighs every output spike differently

    spikes = network(images)
    ours = torch.autograd.grad((spikes * weights).sum(), list(network.parameters()))
    reference = plain_snntorch_loop(network, images)
    theirs = torch.autograd.grad((reference * weights).sum(), list(network.parameters()))

    assert 0.05 < float(spikes.detach().mean()) < 0.95 and torch.equal(spikes, reference)
    for (name, _), found, wanted in zip(network.named_parameters(), ours, theirs, strict=True):
        assert float(wanted.abs().sum()) > 0, f"no gradient reaches {name}"
        torch.testing.assert_close(found, wanted, rtol=1e-4, atol=1e-6, msg=name)


def test_the_input_codings_give_their_rate_and_latency():
    pixels = torch.linspace(0, 1, 11).repeat(2000, 1)
    rates = encode(pixels, SurrogateSettings(steps=1, input_coding="poisson")).mean((0, 1))
    torch.testing.assert_close(rates, pixels[0], atol=0.04, rtol=0)
    latency = encode(pixels[:1], SurrogateSettings(steps=10, input_coding="latency"))[:, 0]  # [T, 11]
    assert torch.equal(latency.sum(0), torch.ones(11))  # one spike per pixel
    first_spike = latency.argmax(0)
    assert (first_spike[1:] <= first_spike[:-1]).all() and first_spike[-1] < first_spike[1]  # brighter is earlier


def test_bad_settings_are_refused_with_the_known_names(tmp_path):
    with pytest.raises(ValueError, match="input_coding must be one of .*latency"):
        SurrogateSettings(input_coding="delta")
    with pytest.raises(ValueError, match="readout must be one of"):
        SurrogateSettings(readout="voltage")
    with pytest.raises(ValueError, match="unknown surrogate 'relu'; choose one of"):
        SurrogateSettings(surrogate="relu")
    with pytest.raises(ValueError, match="loss 'cross_entropy' does not fit the spiking model 'snn-mlp'; choose one"):
        train("snn-mlp", None, TrainConfig(loss="cross_entropy"), runs_root=tmp_path, progress=False)


@pytest.mark.slow
@pytest.mark.parametrize(("readout", "loss"), [("count", None), ("membrane", "ce_membrane")])
def test_a_short_training_on_mnist_clears_a_bar_well_above_chance(tmp_path, readout, loss):
    overrides = {"widths": [784, 256, 10], "steps": 8, "readout": readout}
    config = TrainConfig(epochs=2, train_images=10_000, test_images=2_000, loss=loss)
    run = train("snn-mlp", overrides, config, runs_root=tmp_path, progress=False)
    assert run.test_accuracy > 0.8
    assert run.train_config.loss == (loss or models.entry("snn-mlp").loss)
