"""The Diehl & Cook (2015) network: parameters, STDP rule, presentation logic, learning, resume."""

from __future__ import annotations

import ctypes
import json
import math
import subprocess
from dataclasses import replace
from functools import partial
from pathlib import Path

import numpy as np
import pytest

import spikebridge.diehl_cook_runs as runs
from idx_datasets import load
from spikebridge.records import source_commit
from spikebridge.runs import CONFIG_FILE, RunError, read_json, training_commits
from spiking.block_runner import RuntimeBlockRunner, StandaloneBlockRunner, claim_build_dir
from spiking.diehl_cook import (
    MEMBRANE_UPDATES,
    PRESETS,
    RELAXATION_FRACTION_CPP,
    DiehlCookParameters,
    MembraneRunaway,
    NetworkState,
    check_membranes,
    initial_state,
    pixel_block,
    synapse_order,
    with_overrides,
)
from spiking.stdp_window import weight_change, window

PAPER_TABLE = {  # SPEC.md, "Diehl & Cook 2015" (the authors' public code)
    "dt_ms": 0.5, "presentation_ms": 350.0, "rest_ms": 150.0, "pixel_rate_divisor": 8.0,
    "initial_intensity": 2.0, "min_spikes": 5,
    "v_rest_e_mV": -65.0, "v_reset_e_mV": -65.0, "v_thresh_e_mV": -52.0, "theta_offset_mV": 20.0,
    "refractory_e_ms": 5.0, "tau_e_ms": 100.0, "v_init_e_mV": -105.0, "e_inh_e_mV": -100.0,
    "timer_rate": 0.1, "timer_threshold_ms": 5.0,
    "theta_init_mV": 20.0, "theta_plus_mV": 0.05, "tau_theta_ms": 1e7,
    "v_rest_i_mV": -60.0, "v_reset_i_mV": -45.0, "v_thresh_i_mV": -40.0, "refractory_i_ms": 2.0,
    "tau_i_ms": 10.0, "v_init_i_mV": -100.0, "e_inh_i_mV": -85.0,
    "tau_ge_ms": 1.0, "tau_gi_ms": 2.0,
    "w_init_scale": 0.3, "w_init_offset": 0.01, "input_delay_max_ms": 10.0, "w_max": 1.0,
    "w_exc_to_inh": 10.4, "w_inh_to_exc": 17.0, "weight_total": 78.0,
    "tau_pre_ms": 20.0, "tau_post1_ms": 20.0, "tau_post2_ms": 40.0, "nu_pre": 0.0001, "nu_post": 0.01,
}


def test_parameters_are_the_papers():
    params = DiehlCookParameters()
    assert {name: getattr(params, name) for name in PAPER_TABLE} == PAPER_TABLE
    assert params.steps_per_slot == 1000 and params.steps_per_presentation == 700
    assert 255 / params.pixel_rate_divisor * params.initial_intensity == 63.75  # maximum input rate (Hz)


def test_initial_weights_and_delays_follow_the_table():
    state = initial_state(DiehlCookParameters(), 50, np.random.default_rng(1))
    assert state.weights.shape == (784, 50)
    assert 0.3 * 0.01 <= state.weights.min() and state.weights.max() <= 0.3 * 1.01
    assert state.weights.mean() == pytest.approx(0.3 * 0.51, rel=0.01)
    assert 0 <= state.delays_ms.min() and state.delays_ms.max() <= 10
    assert state.delays_ms.mean() == pytest.approx(5, rel=0.02)


def test_pre_before_post_potentiates_with_the_rules_time_constants():
    prime, pre, post = 10.0, 30.0, 40.0  # a first post spike primes the slow post trace (post2)
    expected = (
        -0.0001 * np.exp(-(pre - prime) / 20)  # depression at the pre spike: nu_pre * post1
        + 0.01 * np.exp(-(post - pre) / 20) * np.exp(-(post - prime) / 40)  # nu_post * pre * post2_before
    )
    change = weight_change([pre], [prime, post])
    assert change > 0
    assert change == pytest.approx(expected, rel=1e-6)


def test_post_before_pre_depresses_with_the_post_trace():
    post, pre = 20.0, 35.0
    change = weight_change([pre], [post])
    assert change < 0
    assert change == pytest.approx(-0.0001 * np.exp(-(pre - post) / 20), rel=1e-6)


@pytest.fixture(scope="module")
def small_runtime_runner():
    return RuntimeBlockRunner(DiehlCookParameters(), 10, 3, codegen_target="numpy")


def test_normalisation_makes_each_neurons_weights_sum_to_78(small_runtime_runner):
    params = DiehlCookParameters()
    state = initial_state(params, 10, np.random.default_rng(0))
    assert np.all(np.abs(state.weights.sum(axis=0) - 78) > 30)
    # blank slots: no spike, so normalisation is the only change, and it only rescales columns
    end_state, block = small_runtime_runner.run_block(state, np.zeros((3, 784)), 2.0, True, seed=1)
    assert block.counts.sum() == 0
    np.testing.assert_allclose(end_state.weights.sum(axis=0), 78.0, rtol=1e-9)
    np.testing.assert_allclose(end_state.weights, state.weights * 78.0 / state.weights.sum(axis=0), rtol=1e-9)


def test_frozen_network_keeps_weights_and_theta(small_runtime_runner, mnist_folder):
    params = DiehlCookParameters()
    state = initial_state(params, 10, np.random.default_rng(0))
    images = load("mnist", "train").images
    end_state, block = small_runtime_runner.run_block(state, pixel_block(images, 0, 3, 3), 5.0, False, seed=2)
    assert block.counts.sum() > 0
    np.testing.assert_array_equal(end_state.weights, state.weights)
    np.testing.assert_array_equal(end_state.theta_mV, state.theta_mV)


def test_silent_presentation_is_repeated_at_higher_intensity(small_runtime_runner):
    params = DiehlCookParameters()
    state = initial_state(params, 10, np.random.default_rng(0))
    blank = np.zeros((3, 784))
    _, block = small_runtime_runner.run_block(state, blank, 2.0, True, seed=1)
    assert block.image.tolist() == [0, 0, 0] and not block.accepted.any()
    assert block.intensity.tolist() == [2.0, 3.0, 4.0] and block.next_intensity == 5.0
    assert block.images_completed == 0


def test_bright_image_is_accepted_and_intensity_resets(small_runtime_runner, mnist_folder):
    params = DiehlCookParameters()
    state = initial_state(params, 10, np.random.default_rng(0))
    bright = np.repeat(load("mnist", "train").images[:1].reshape(1, 784).astype(float), 3, axis=0)
    _, block = small_runtime_runner.run_block(state, bright, 6.0, True, seed=1)
    assert block.accepted[0] and block.counts[0].sum() >= params.min_spikes
    assert block.intensity[1] == params.initial_intensity


def _class_mean_correlation(weights: np.ndarray, images: np.ndarray, labels: np.ndarray) -> float:
    """Mean over neurons of the best correlation between its receptive field and a class-mean digit."""
    means = np.stack([images[labels == c].reshape(-1, 784).mean(axis=0) for c in range(10)])
    fields = weights.T
    z_fields = (fields - fields.mean(1, keepdims=True)) / fields.std(1, keepdims=True)
    z_means = (means - means.mean(1, keepdims=True)) / means.std(1, keepdims=True)
    return float((z_fields @ z_means.T / 784).max(axis=1).mean())


@pytest.mark.slow
def test_short_training_learns_digit_like_receptive_fields(tmp_path, mnist_folder):
    config = runs.DiehlCookRunConfig(neurons=25, images=500, block_slots=100, checkpoint_every=500)
    directory = runs.train(config, runs_root=tmp_path, progress_bar=False)
    state, progress = runs.load_checkpoint(directory)
    assert progress.images_done == 500 and progress.presentations >= 500
    train = load("mnist", "train")
    initial = initial_state(DiehlCookParameters(), 25, np.random.default_rng(config.seed))
    before = _class_mean_correlation(initial.weights, train.images[:5000], train.labels[:5000])
    after = _class_mean_correlation(state.weights, train.images[:5000], train.labels[:5000])
    assert after > before + 0.2, (before, after)
    assert np.all(state.theta_mV >= initial.theta_mV.min() - 0.01)


@pytest.mark.slow
def test_resume_after_interruption_gives_the_same_weights(tmp_path, monkeypatch, mnist_folder):
    config = runs.DiehlCookRunConfig(neurons=25, images=250, block_slots=100, checkpoint_every=100)
    uninterrupted, _ = runs.load_checkpoint(runs.train(config, runs_root=tmp_path / "a", progress_bar=False))

    real_save = runs._save_checkpoint

    def save_then_die(directory, state, progress):
        real_save(directory, state, progress)
        raise KeyboardInterrupt

    monkeypatch.setattr(runs, "_save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        runs.train(config, runs_root=tmp_path / "b", progress_bar=False)
    monkeypatch.setattr(runs, "_save_checkpoint", real_save)
    (interrupted,) = (tmp_path / "b").iterdir()
    images_at_checkpoint = runs.load_checkpoint(interrupted)[1].images_done
    assert 100 <= images_at_checkpoint < 250
    resumed, progress = runs.load_checkpoint(runs.resume(interrupted, progress_bar=False))
    assert progress.images_done == 250
    np.testing.assert_array_equal(resumed.weights, uninterrupted.weights)
    np.testing.assert_array_equal(resumed.theta_mV, uninterrupted.theta_mV)
    # the folder names the commit of each chunk
    started, resumed_at = training_commits(read_json(interrupted, CONFIG_FILE))
    assert started["commit"] == resumed_at["commit"] == source_commit()
    assert resumed_at["images"] == images_at_checkpoint
    runs.resume(interrupted, progress_bar=False)  # finished: nothing trains, nothing is noted
    assert len(training_commits(read_json(interrupted, CONFIG_FILE))) == 2


def test_input_spike_counts_match_the_poisson_rate():
    """Geometric waiting times give the Bernoulli(rate * dt) process of Brian's PoissonGroup."""
    import brian2 as b2

    params = DiehlCookParameters()
    runner = RuntimeBlockRunner(params, 10, 1, codegen_target="numpy")
    monitor = b2.SpikeMonitor(runner.net.inputs)
    runner.net.network.add(monitor)
    runner.net.network.store("block_start")
    pixels = np.tile(np.linspace(0, 255, 784), (1, 1))
    runner.run_block(initial_state(params, 10, np.random.default_rng(0)), pixels, 2.0, False, seed=3)
    steps = np.round(np.asarray(monitor.t_) / (params.dt_ms * 1e-3)).astype(int)
    assert steps.max() < params.steps_per_presentation  # silent during the rest
    expected = pixels[0] / 8 * 2.0 * params.dt_ms * 1e-3 * params.steps_per_presentation
    counts = np.bincount(np.asarray(monitor.i), minlength=784)
    assert counts.sum() == pytest.approx(expected.sum(), rel=0.03)  # ~8,750 spikes: 3 % is > 3 sigma
    bright, dim = np.arange(784) >= 588, np.arange(784) < 196
    assert counts[bright].sum() / counts[dim].sum() == pytest.approx(expected[bright].sum() / expected[dim].sum(),
                                                                    rel=0.15)


def test_stdp_window_has_the_rules_sign_and_time_constants():
    delays = np.array([-40.0, -10.0, 5.0, 20.0])
    changes = window(delays)
    assert changes[0] < 0 and changes[1] < 0 and changes[2] > 0 and changes[3] > 0
    assert changes[1] / changes[0] == pytest.approx(np.exp(30 / 20), rel=1e-6)  # depression decays with tau 20 ms


def test_overridden_constants_replace_only_what_is_named():
    changed = with_overrides(DiehlCookParameters(), {"theta_plus_mV": 0.025, "min_spikes": 4})
    assert changed.theta_plus_mV == 0.025 and changed.min_spikes == 4 and isinstance(changed.min_spikes, int)
    assert replace(changed, theta_plus_mV=0.05, min_spikes=5) == DiehlCookParameters()
    assert with_overrides(DiehlCookParameters(), {"membrane_update": "exponential"}).membrane_update == "exponential"
    for bad in ({"theta_plus": 0.1}, {"clamp_v_e_refractory": 1}, {"theta_plus_mV": "high"},
                {"membrane_update": "rk4"}, {"membrane_update": 1}):
        with pytest.raises(ValueError):
            with_overrides(DiehlCookParameters(), bad)


def test_authors_brian1_preset_reproduces_brian1s_stdp_on_recorded_spike_pairs():
    """Brian 1.4.4 running the authors' rule (benchmarks/brian1_stdp.py, recorded in its results
    file): the preset matches its C STDP on every case; the paper's constants miss depression."""
    recorded = json.loads((Path(__file__).parents[1] / "benchmarks/results/brian1_stdp.json").read_text())["rows"]
    as_run = with_overrides(DiehlCookParameters(), PRESETS["authors-brian1"])
    for row in recorded:
        arrivals = [t + row["delay_ms"] for t in row["pre_emitted_ms"]]
        # Brian 1 reads its traces one 0.5 ms step early: up to exp(0.5 / 20) - 1 = 2.5 % apart
        assert weight_change(arrivals, row["post_ms"], as_run) == pytest.approx(row["brian1_c_stdp"], rel=0.03)
        if len(arrivals) == 1 and row["post_ms"][1] < arrivals[0] - 10:  # post well before pre: depression only
            assert weight_change(arrivals, row["post_ms"]) == pytest.approx(0.6 * row["brian1_c_stdp"], rel=0.03)


AS_BRIAN1_RAN = with_overrides(DiehlCookParameters(), PRESETS["authors-brian1"])


def _synchronous_start(params: DiehlCookParameters, neurons: int, firing: int):
    """The initial state with ``firing`` excitatory neurons above threshold: they spike together
    on the first step, and their inhibitory partners hit every other neuron with 17 each."""
    state = initial_state(params, neurons, np.random.default_rng(0))
    v_e_mV = np.full(neurons, params.v_rest_e_mV)
    v_e_mV[:firing] = params.v_thresh_e_mV + 12.0
    return replace(state, v_e_mV=v_e_mV)


def test_synchronous_inhibition_runs_forward_euler_away_without_the_refractory_clamp():
    """Forward Euler diverges once 1 + gi > 2 tau_e / dt = 400 (24 inhibitory spikes of 17).

    With the membrane integrating while refractory (authors-brian1), 30 neurons firing together
    start a runaway that the block refuses; 20 (gi = 340) do not. The paper's clamp recovers even
    from all 400 at once."""
    runner = RuntimeBlockRunner(AS_BRIAN1_RAN, 400, 1, codegen_target="numpy")
    blank = np.zeros((1, 784))
    end, block = runner.run_block(_synchronous_start(AS_BRIAN1_RAN, 400, 20), blank, 2.0, True, seed=1)
    assert block.counts.sum() == 20 and np.all(np.abs(end.v_e_mV - AS_BRIAN1_RAN.v_rest_e_mV) < 1)
    with pytest.raises(MembraneRunaway, match="excitatory membrane potentials left.*2 tau / dt = 400"):
        runner.run_block(_synchronous_start(AS_BRIAN1_RAN, 400, 30), blank, 2.0, True, seed=1)
    paper = DiehlCookParameters()
    end, block = RuntimeBlockRunner(paper, 400, 1, codegen_target="numpy").run_block(
        _synchronous_start(paper, 400, 400), blank, 2.0, True, seed=1)
    assert block.counts.sum() == 400 and np.all(np.abs(end.v_e_mV - paper.v_rest_e_mV) < 1)
    with pytest.raises(MembraneRunaway, match="1 inhibitory membrane potentials left.*nan mV"):
        check_membranes(replace(end, v_i_mV=np.where(np.arange(400) == 7, np.nan, end.v_i_mV)), paper)


def test_exponential_membrane_update_survives_the_inhibition_of_1600_neurons():
    """With 1600 neurons, 100 firing together send gi = 1700 to the rest: forward Euler's step
    (a = dt (1 + gi) / tau_e = 8.5) diverges, the exponential update relaxes every membrane towards
    E_inh and back to rest, and only the 100 spike."""
    neurons, firing = 1600, 100
    blank = np.zeros((1, 784))
    euler = DiehlCookParameters()
    with pytest.raises(MembraneRunaway, match="membrane_update=exponential is stable"):
        RuntimeBlockRunner(euler, neurons, 1, codegen_target="numpy").run_block(
            _synchronous_start(euler, neurons, firing), blank, 2.0, True, seed=1)
    exponential = replace(euler, membrane_update="exponential")
    end, block = RuntimeBlockRunner(exponential, neurons, 1, codegen_target="numpy").run_block(
        _synchronous_start(exponential, neurons, firing), blank, 2.0, True, seed=1)
    assert block.counts.sum() == firing and np.all(np.abs(end.v_e_mV - euler.v_rest_e_mV) < 1)


def test_membrane_updates_agree_while_the_step_is_small():
    """Without inhibition a = dt (1 + ge) / tau is small and both updates drive the same spikes."""
    images = load("mnist", "train").images
    counts = []
    for update in MEMBRANE_UPDATES:
        params = DiehlCookParameters(membrane_update=update)
        runner = RuntimeBlockRunner(params, 1, 1, codegen_target="numpy")  # one neuron: no inhibition
        state = replace(initial_state(params, 1, np.random.default_rng(0)), v_e_mV=np.full(1, params.v_rest_e_mV))
        _, block = runner.run_block(state, pixel_block(images, 0, 1, 1), 2.0, False, seed=3)
        counts.append(block.counts.sum())
    assert counts[0] > 0 and abs(counts[1] - counts[0]) <= 1


def test_a_runaway_stops_training_without_saving_the_diverged_state(tmp_path, monkeypatch, mnist_folder):
    monkeypatch.setattr(runs, "initial_state", lambda params, neurons, rng: _synchronous_start(params, neurons, 40))
    monkeypatch.setattr(runs, "make_runner", lambda device, params, neurons, slots, root, threads, delays_ms:
                        RuntimeBlockRunner(params, neurons, slots, codegen_target="numpy"))
    config = runs.DiehlCookRunConfig(neurons=400, images=10, block_slots=1, device="runtime")
    with pytest.raises(RunError, match="numerical runaway.*stopped after 0 images.*keeps no checkpoint"):
        runs.train(config, runs_root=tmp_path, params=AS_BRIAN1_RAN, progress_bar=False)
    (directory,) = tmp_path.iterdir()
    assert not (directory / runs.CHECKPOINT_FILE).exists()


def test_runs_at_the_same_time_take_build_folders_of_their_own(tmp_path):
    """Blocks read their inputs from files in the build folder: a second process running the same
    network must not share it (two runs once read each other's weights that way)."""
    first, first_lock = claim_build_dir(tmp_path / "network")
    second, second_lock = claim_build_dir(tmp_path / "network")
    assert (first, second) == (tmp_path / "network", tmp_path / "network-1")
    first_lock.close()  # the first run ends: its folder, compiled code and all, is free again
    third, third_lock = claim_build_dir(tmp_path / "network")
    assert third == first
    second_lock.close()
    third_lock.close()


def _block_start() -> NetworkState:
    return initial_state(DiehlCookParameters(), 25, np.random.default_rng(0))


def _one_block_each_way(tmp_path, options: list[dict]) -> tuple[list[StandaloneBlockRunner], list]:
    """One compiled block (25 neurons, 20 slots, the same state, images and seed) per runner
    built with each of ``options``, one network at a time (Brian2 has one device per process):
    the runners and each block's end state and presentations."""
    images = load("mnist", "train").images
    runners, outcomes = [], []
    for option in options:
        runners.append(StandaloneBlockRunner(DiehlCookParameters(), 25, 20, tmp_path, **option))
        outcomes.append(runners[-1].run_block(_block_start(), pixel_block(images, 0, 20, 20), 2.0, True, seed=5))
    return runners, outcomes


@pytest.mark.slow
def test_flushing_subnormals_to_zero_changes_no_spike(tmp_path, mnist_folder):
    """The compiled blocks treat subnormal floats as zero (much faster on CPUs with slow subnormal
    arithmetic); the traces and conductances they cut are below 1e-308, so every spike stays."""
    _, outcomes = _one_block_each_way(tmp_path, [{"flush_subnormals": True}, {"flush_subnormals": False}])
    (flushed_end, flushed), (kept_end, kept) = outcomes
    assert len(flushed.spike_times_ms) > 20
    assert np.array_equal(flushed.spike_times_ms, kept.spike_times_ms)
    assert np.array_equal(flushed.spike_neurons, kept.spike_neurons)
    assert np.allclose(flushed_end.weights, kept_end.weights, rtol=0, atol=1e-12)


@pytest.mark.slow
def test_patched_spike_queue_changes_no_spike(tmp_path, mnist_folder):
    """The compiled blocks file a spike's synaptic events in Brian2's spike queue by runs of equal
    delay, without an integer division; every slot holds the same events in the same order, so
    the spikes and weights are the same, whether the synapses are stored in arrival order (long
    runs) or input by input (runs of about one synapse)."""
    delays_ms = _block_start().delays_ms
    runners, outcomes = _one_block_each_way(tmp_path, [
        {"patch_spike_queue": False, "delays_ms": delays_ms}, {"patch_spike_queue": True, "delays_ms": delays_ms},
        {"patch_spike_queue": False}, {"patch_spike_queue": True},
    ])
    assert [runner.spike_queue_patched for runner in runners] == [False, True, False, True]
    plain = outcomes[0][1]
    assert len(plain.spike_times_ms) > 20
    for _, patched in outcomes[1:]:
        assert np.array_equal(patched.spike_times_ms, plain.spike_times_ms)
        assert np.array_equal(patched.spike_neurons, plain.spike_neurons)
    for (plain_end, _), (patched_end, _) in (outcomes[:2], outcomes[2:]):  # bit for bit in each layout
        np.testing.assert_array_equal(patched_end.weights, plain_end.weights)


def test_synapse_order_groups_each_inputs_synapses_by_arrival_step():
    delays = DiehlCookParameters().input_delay_max_ms * np.random.default_rng(2).random((784, 30))
    order = synapse_order(delays, 0.5)
    assert sorted(order) == list(range(784 * 30))
    rows, columns = np.divmod(order, 30)
    assert np.array_equal(rows, np.repeat(np.arange(784), 30))  # input by input
    steps = np.rint(delays[rows, columns] / 0.5).reshape(784, 30)
    assert np.all(np.diff(steps, axis=1) >= 0)


@pytest.mark.slow
def test_stored_synapse_order_changes_no_spike(tmp_path, mnist_folder):
    """Storing the synapses in arrival order is a memory layout: the same block gives the same
    spikes and weights as input-by-input storage."""
    _, outcomes = _one_block_each_way(tmp_path, [{"delays_ms": None}, {"delays_ms": _block_start().delays_ms}])
    (plain_end, plain), (ordered_end, ordered) = outcomes
    assert len(plain.spike_times_ms) > 20
    assert np.array_equal(plain.spike_times_ms, ordered.spike_times_ms)
    assert np.array_equal(plain.spike_neurons, ordered.spike_neurons)
    assert np.allclose(plain_end.weights, ordered_end.weights, rtol=0, atol=1e-12)
    assert np.allclose(plain_end.last_arrival_ms, ordered_end.last_arrival_ms, rtol=0, atol=1e-9)


@pytest.mark.slow
def test_evaluation_shards_give_the_same_responses_on_any_number_of_workers_and_resume(tmp_path, monkeypatch,
                                                                                        mnist_folder):
    """Frozen responses are measured in shards, each shown to the trained state with a seed of its
    own: two worker processes give exactly the counts of one, a one-shard set those of a single
    sequential run, and an interrupted evaluation resumes from its saved shards to the same counts."""
    monkeypatch.setattr(runs, "EVALUATION_SHARD_IMAGES", 15)
    params = DiehlCookParameters()
    state = initial_state(params, 25, np.random.default_rng(0))
    images = load("mnist", "train").images
    image_sets, seeds = [images[:40], images[40:50]], [3, 4]
    new_runner = partial(StandaloneBlockRunner, params, 25, 20, tmp_path)
    one, two = (runs.sharded_responses(new_runner, state, image_sets, seeds, workers, progress_bar=False)
                for workers in (1, 2))
    for images_in_set, (counts, first_block), (counts_two, first_block_two) in zip(image_sets, one, two, strict=True):
        assert counts.shape == (len(images_in_set), 25)
        assert np.all(counts.sum(axis=1) >= params.min_spikes)  # every image was answered
        np.testing.assert_array_equal(counts, counts_two)
        np.testing.assert_array_equal(first_block.spike_times_ms, first_block_two.spike_times_ms)
    sequential, _ = runs.frozen_responses(new_runner(), state, images[40:50], seeds[1])
    np.testing.assert_array_equal(one[1][0], sequential)

    real_frozen_responses, folder, shards_run = runs.frozen_responses, tmp_path / "shards", []

    def interrupted_after_one_shard(*args, **kwargs):
        if shards_run:
            raise KeyboardInterrupt
        shards_run.append(args)
        return real_frozen_responses(*args, **kwargs)

    monkeypatch.setattr(runs, "frozen_responses", interrupted_after_one_shard)
    with pytest.raises(KeyboardInterrupt):
        runs.sharded_responses(new_runner, state, image_sets, seeds, shard_folder=folder, progress_bar=False)
    assert len(list(folder.iterdir())) == 1
    monkeypatch.setattr(runs, "frozen_responses", real_frozen_responses)
    resumed = runs.sharded_responses(new_runner, state, image_sets, seeds, shard_folder=folder, progress_bar=False)
    for (counts, first_block), (counts_resumed, first_block_resumed) in zip(one, resumed, strict=True):
        np.testing.assert_array_equal(counts, counts_resumed)
        np.testing.assert_array_equal(first_block.spike_neurons, first_block_resumed.spike_neurons)
        assert first_block.next_intensity == first_block_resumed.next_intensity


@pytest.mark.slow
def test_compiled_relaxation_fraction_gives_each_argument_its_own_value(tmp_path):
    """The C++ f(a) = 1 - exp(-a) of the exponential update keeps its last argument and value; a
    repeated argument gets the same bits, a new one its own (compared with libm through Python)."""
    source = tmp_path / "fraction.cpp"
    source.write_text("#include <cmath>\nusing namespace std;\n" + RELAXATION_FRACTION_CPP
                      + 'extern "C" double fraction(double a) { return relaxation_fraction(a); }\n')
    library = tmp_path / "fraction.so"
    subprocess.run(["g++", "-O3", "-ffast-math", "-fno-finite-math-only", "-shared", "-fPIC", str(source),
                    "-o", str(library)], check=True)
    fraction = ctypes.CDLL(str(library)).fraction
    fraction.restype, fraction.argtypes = ctypes.c_double, [ctypes.c_double]
    rest = DiehlCookParameters().dt_ms / DiehlCookParameters().tau_i_ms  # an inhibitory neuron without input
    arguments = [rest, rest, rest * 1.5, rest, 0.0, 8.5, 8.5, rest, 1e-300]
    assert [fraction(a) for a in arguments] == [1 - math.exp(-a) for a in arguments]
