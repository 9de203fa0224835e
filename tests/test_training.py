"""The shared training loop on real MNIST subsets."""

from __future__ import annotations

import json

import pytest
import torch

import spikebridge.training as training
from spikebridge import models
from spikebridge.runs import CONFIG_FILE, RunError, read_json, training_commits
from spikebridge.training import TrainConfig, load_run, resume, train

SMALL_MLP = {"widths": [784, 128, 10]}


@pytest.mark.slow
def test_mlp_clears_ninety_percent_after_5000_images(tmp_path):
    config = TrainConfig(epochs=4, batch_size=64, train_images=5000, test_images=2000)
    run = train("mlp", None, config, runs_root=tmp_path, progress=False)
    assert run.test_accuracy >= 0.90
    assert {"config.json", "metrics.json", "checkpoint.pt", "model.pt", "learning_curves.png"} <= {
        p.name for p in run.directory.iterdir()
    }
    saved = json.loads((run.directory / "config.json").read_text())
    assert saved["model_config"]["widths"] == [784, 1200, 1200, 10] and saved["train"]["train_images"] == 5000
    entry = models.entry("mlp")  # the run records its kind and the loss it used, its model's own
    assert (saved["kind"], saved["train"]["loss"], saved["prepare"]) == (entry.kind, entry.loss, None)
    metrics = json.loads((run.directory / "metrics.json").read_text())
    assert metrics["finished"] and metrics["test_accuracy"] == run.test_accuracy
    assert metrics["history"][-1]["train_loss"] < metrics["history"][0]["train_loss"]


def same_weights(first, second) -> bool:
    a, b = first.model.state_dict(), second.model.state_dict()
    return a.keys() == b.keys() and all(torch.equal(a[name], b[name]) for name in a)


def test_same_seed_gives_same_weights_and_another_seed_does_not(tmp_path):
    config = TrainConfig(epochs=1, train_images=1000, test_images=500)
    first = train("mlp", SMALL_MLP, config, runs_root=tmp_path, progress=False)
    second = train("mlp", SMALL_MLP, config, runs_root=tmp_path, progress=False)
    other = train("mlp", SMALL_MLP, TrainConfig(epochs=1, train_images=1000, test_images=500, seed=1),
                  runs_root=tmp_path, progress=False)
    assert first.test_accuracy == second.test_accuracy
    assert same_weights(first, second)
    assert not same_weights(first, other)


@pytest.mark.slow
@pytest.mark.parametrize(("model", "overrides"), [
    ("mlp", SMALL_MLP),
    ("snn-mlp", {"widths": [784, 64, 10], "steps": 4, "input_coding": "poisson"}),  # random input spikes too
])
def test_resume_after_interruption_equals_an_uninterrupted_run(tmp_path, monkeypatch, model, overrides):
    config = TrainConfig(epochs=3, train_images=1000, test_images=500)
    uninterrupted = train(model, overrides, config, runs_root=tmp_path / "a", progress=False)

    real_write_metrics = training._write_metrics  # runs after each epoch's checkpoint

    def interrupt_after_second_epoch(run):
        real_write_metrics(run)
        if len(run.history) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(training, "_write_metrics", interrupt_after_second_epoch)
    with pytest.raises(KeyboardInterrupt):
        train(model, overrides, config, runs_root=tmp_path / "b", progress=False)
    monkeypatch.setattr(training, "_write_metrics", real_write_metrics)
    (interrupted_dir,) = (tmp_path / "b").iterdir()
    assert not (interrupted_dir / "model.pt").exists()
    assert len(load_run(interrupted_dir).history) == 2

    resumed = resume(interrupted_dir, progress=False)
    assert [entry.get("epochs") for entry in training_commits(read_json(interrupted_dir, CONFIG_FILE))] == [None, 2]
    assert [r["test_accuracy"] for r in resumed.history] == [r["test_accuracy"] for r in uninterrupted.history]
    assert same_weights(resumed, uninterrupted)
    assert (interrupted_dir / "model.pt").exists()


def test_damaged_checkpoint_is_refused_with_the_fix(tmp_path):
    run = train("mlp", SMALL_MLP, TrainConfig(epochs=1, train_images=200, test_images=100),
                runs_root=tmp_path, progress=False)
    (run.directory / "checkpoint.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(RunError, match="checkpoint.pt cannot be read"):
        load_run(run.directory)


def test_bad_training_settings_are_refused():
    with pytest.raises(ValueError, match="schedule"):
        TrainConfig(schedule="linear")
    with pytest.raises(ValueError, match="epochs"):
        TrainConfig(epochs=0)
