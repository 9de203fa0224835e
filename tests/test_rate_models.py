"""Shapes and structure of the baselines of Gupta & Naveed ("How close are ANNs to the brain?")."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import rate_models
from rate_models import CNNConfig, MLPConfig
from spikebridge import models


@pytest.mark.parametrize("name", sorted(models.MODELS))
def test_models_map_images_to_ten_scores_per_task(name):
    """Rate models give logits; spiking models a readout per step, which they score. The double
    task's models (Wołczyk et al.) take an MNIST and a Fashion-MNIST image side by side and give
    ten scores per task."""
    model = models.build(name)
    config = models.make_config(name)
    width = getattr(config, "inputs", 784) // 28
    scores = 10 * (2 if models.entry(name).loss.startswith("double") else 1)
    outputs = model(torch.rand(4, 1, 28, width))
    if models.entry(name).kind == "rate":
        assert outputs.shape == (4, scores)
    else:
        assert outputs.shape[1:] == (4, scores) and model.scores(outputs).shape == (4, scores)
        assert len(outputs) == model.run(torch.rand(2, 1, 28, width)).steps  # the steps simulated


def test_mlp_is_the_diehl_network_by_default():
    model = models.build("mlp")
    linear = [m for m in model if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linear] == [(784, 1200), (1200, 1200), (1200, 10)]
    assert all(isinstance(m, nn.ReLU) for m in model if not isinstance(m, (nn.Linear, nn.Flatten, nn.Dropout)))


def test_mlp_widths_and_bias_are_configurable():
    model = models.build("mlp", {"widths": [784, 50, 20, 10], "bias": False})
    assert sum(p.numel() for p in model.parameters()) == 784 * 50 + 50 * 20 + 20 * 10
    with pytest.raises(ValueError, match="784"):
        rate_models.build_mlp(MLPConfig(widths=(100, 10)))


def test_cnn_follows_the_seed_table():
    model = models.build("cnn")
    convolutions = [m for m in model if isinstance(m, nn.Conv2d)]
    assert [(m.out_channels, m.kernel_size) for m in convolutions] == [(32, (3, 3)), (128, (5, 5)), (128, (3, 3))]
    assert [m.p for m in model if isinstance(m, nn.Dropout)] == [CNNConfig().dropout_conv, CNNConfig().dropout_dense]
    features = model[:9](torch.rand(2, 1, 28, 28))  # up to the second max-pool and dropout
    assert features.shape == (2, 128, 4, 4)


def test_gru_reads_rows_as_time_steps():
    model = models.build("gru").eval()
    assert model.gru.input_size == 28 and model.gru.hidden_size == 128
    images = torch.rand(3, 1, 28, 28)
    reversed_rows = images.flip(dims=[2])
    assert not torch.allclose(model(images), model(reversed_rows))  # order of rows matters


def test_unknown_model_or_setting_is_refused():
    with pytest.raises(ValueError, match="unknown model"):
        models.build("resnet")
    with pytest.raises(ValueError, match="no setting 'width'"):
        models.build("mlp", {"width": 100})
