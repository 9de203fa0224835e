"""Surrogate-gradient spiking networks (spiking.surrogate_models) and their training through the one loop."""

from __future__ import annotations

import pytest
import torch

from spikebridge import models
from spikebridge.training import TrainConfig, train
from spiking.snntorch_reference import PlainSnntorchLoop
from spiking.surrogate_models import SurrogateSettings, encode

SMALL = {  # the spiking Gupta & Naveed networks, small enough for a test, with decays and thresholds learned
    "snn-mlp": {"widths": [784, 40, 24, 10], "steps": 6},
    "snn-cnn": {"channels": [4, 8, 8], "dense": 16, "steps": 3},
    "snn-gru": {"hidden": 24, "dense": 12, "steps": 2},
}


@pytest.mark.parametrize("name", sorted(SMALL))
def test_the_multi_step_network_equals_the_plain_snntorch_loop_in_spikes_and_gradients(name):
    torch.manual_seed(0)
    network = models.build(name, {**SMALL[name], "beta": 0.8, "learn_beta": True, "learn_threshold": True,
                                  "threshold": 0.5}).eval()  # dropout off: the same masks need the same calls
    with torch.no_grad():  # strong enough that every layer spikes
        for parameter_name, parameter in network.named_parameters():
            if parameter_name.endswith("weight"):
                parameter.mul_(3)
    images = torch.rand(9, 1, 28, 28)

    readout = network(images)
    weights = torch.randn_like(readout)  # a loss that weighs every output spike differently
    ours = torch.autograd.grad((readout * weights).sum(), list(network.parameters()))
    reference = PlainSnntorchLoop(network)(images)
    theirs = torch.autograd.grad((reference * weights).sum(), list(network.parameters()))

    assert 0.02 < float(readout.detach().mean()) < 0.95 and torch.equal(readout, reference)
    for (parameter_name, _), found, wanted in zip(network.named_parameters(), ours, theirs, strict=True):
        assert float(wanted.abs().sum()) > 0, f"no gradient reaches {parameter_name}"
        scale = float(wanted.abs().max())  # float sums in another order: tolerance relative to the largest
        torch.testing.assert_close(found, wanted, rtol=1e-4, atol=1e-5 * scale, msg=parameter_name)


def test_the_measured_run_counts_spikes_and_synaptic_operations_by_fan_out():
    """An MLP neuron's fan-out is the next layer's width: synaptic operations are the hidden
    spikes times those widths (the output's spikes go nowhere), plus the first layer's
    multiply-accumulates once under constant current, or the input spikes times its width."""
    torch.manual_seed(1)
    widths = SMALL["snn-mlp"]["widths"]
    images = torch.rand(5, 1, 28, 28)
    for coding in ("current", "poisson"):
        network = models.build("snn-mlp", {**SMALL["snn-mlp"], "input_coding": coding, "threshold": 0.2}).eval()
        torch.manual_seed(2)
        run = network.run(images)
        torch.manual_seed(2)
        readout = network(images)
        assert torch.equal(run.evidence, network.scores(readout)) and torch.equal(run.spike_counts[-1], readout.sum(0))
        assert [counts.shape[1] for counts in run.spike_counts] == widths[1:]
        hidden = [counts.sum(1) for counts in run.spike_counts[:-1]]
        expected = sum(spikes * fan for spikes, fan in zip(hidden, widths[2:], strict=True))
        if coding == "current":
            assert run.input_ops == widths[0] * widths[1]
        else:
            assert run.input_ops == 0 and float(run.synaptic_ops.sum()) > float(expected.sum())
            expected = expected + encode(images.flatten(1), "poisson", network.config.steps).sum((0, 2)) * widths[1]
        assert float(expected.min()) > 0
        if coding == "current":
            torch.testing.assert_close(run.synaptic_ops, expected)


def test_a_max_pool_gates_the_spikes_before_they_are_counted_as_synaptic_events():
    network = models.build("snn-cnn", SMALL["snn-cnn"]).eval()
    with torch.no_grad():
        for parameter in network.parameters():
            parameter.mul_(3)
    run = network.run(torch.rand(4, 1, 28, 28))
    assert [type(pool).__name__ for pool in network.pools] == ["Identity", "MaxPool2d", "MaxPool2d", "Identity"]
    assert run.spike_counts[1].shape[1:] == (8, 22, 22) and float(run.spike_counts[1].sum()) > 0
    conv3_fan_out = network.fan_outs[2]  # onto the pooled map 8 x 11 x 11, at most 3 x 3 x 8 synapses each
    assert conv3_fan_out.shape == (8, 11, 11) and float(conv3_fan_out.max()) == 3 * 3 * 8


def test_the_input_codings_give_their_rate_and_latency():
    pixels = torch.linspace(0, 1, 11).repeat(2000, 1)
    rates = encode(pixels, "poisson", steps=1).mean((0, 1))
    torch.testing.assert_close(rates, pixels[0], atol=0.04, rtol=0)
    latency = encode(pixels[:1], "latency", steps=10)[:, 0]  # [T, 11]
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
    with pytest.raises(ValueError, match="reset must be one of"):
        SurrogateSettings(reset="hold")
    with pytest.raises(ValueError, match="loss 'cross_entropy' does not fit the spiking model 'snn-mlp'; choose one"):
        train("snn-mlp", None, TrainConfig(loss="cross_entropy"), runs_root=tmp_path, progress=False)


SHORT_TRAININGS = [  # (model, settings, training, bar on 2,000 test images); chance is 10 %
    ("snn-mlp", {"widths": [784, 256, 10], "readout": "count"}, {"train_images": 10_000, "epochs": 2}, 0.8),
    ("snn-mlp", {"widths": [784, 256, 10], "readout": "membrane"},
     {"train_images": 10_000, "epochs": 2, "loss": "ce_membrane"}, 0.8),
    ("snn-cnn", {"channels": [8, 16, 16], "dense": 32, "steps": 4, "beta": 0.5},
     {"train_images": 3_000, "epochs": 1, "learning_rate": 1e-2}, 0.5),
    ("snn-gru", {}, {"train_images": 20_000, "epochs": 2, "learning_rate": 5e-3}, 0.6),
]


@pytest.mark.slow
@pytest.mark.parametrize(("name", "settings", "training", "bar"), SHORT_TRAININGS)
def test_a_short_training_on_mnist_clears_a_bar_well_above_chance(tmp_path, name, settings, training, bar):
    run = train(name, settings, TrainConfig(test_images=2_000, **training), runs_root=tmp_path, progress=False)
    assert run.test_accuracy > bar
    assert run.train_config.loss == training.get("loss", models.entry(name).loss)


def test_converted_and_trained_networks_are_summarised_by_the_same_code(mnist_folder):
    """``summarise`` adds up SpikingRuns batch by batch, whichever network made them: the
    figures equal those of one run over all images, and a converted MLP and a trained one of the
    same widths share the first layer's multiply-accumulates under constant current."""
    from bridges import convert
    from idx_datasets import load
    from spikebridge.training import as_tensors
    from spiking.activity import summarise

    images, labels = as_tensors(load("mnist", "test").head(60))
    widths = SMALL["snn-mlp"]["widths"]
    trained = models.build("snn-mlp", {"widths": widths}).eval()
    converted = convert(models.build("mlp", {"widths": widths}).eval(), images)
    for simulate in (trained.run, lambda batch: converted.run(batch, 6)):
        whole = simulate(images)
        summary = summarise(simulate, images, labels, batch_size=25)
        assert summary.accuracy == pytest.approx(float((whole.evidence.argmax(1) == labels).float().mean()))
        assert summary.synaptic_ops == pytest.approx(float(whole.synaptic_ops.mean()) + whole.input_ops)
        assert summary.spikes_per_image == pytest.approx([float(c.sum()) / len(labels) for c in whole.spike_counts])
        assert whole.input_ops == widths[0] * widths[1]
