"""The one neuron step (spiking.neuron) against snntorch's per-step Leaky, and its conventions."""

from __future__ import annotations

import pytest
import snntorch as snn
import torch
from snntorch import surrogate

from spiking.neuron import SURROGATES, NeuronParams, NeuronState, run, spike_function, step


def snntorch_reference(currents, beta, threshold, reset, spike_grad):
    """The plain snntorch loop: one Leaky call per step."""
    lif = snn.Leaky(beta=beta, threshold=threshold, reset_mechanism=reset, spike_grad=spike_grad)
    membrane, spikes = lif.init_leaky(), []
    for current in currents:
        spiked, membrane = lif(current, membrane)
        spikes.append(spiked)
    return torch.stack(spikes)


@pytest.mark.parametrize("reset", ["subtract", "zero"])
@pytest.mark.parametrize(("name", "factory", "slope"), [("atan", surrogate.atan, 2.0),
                                                        ("fast_sigmoid", surrogate.fast_sigmoid, 25.0)])
def test_the_multi_step_form_equals_snntorch_in_spikes_and_gradients(reset, name, factory, slope):
    generator = torch.Generator().manual_seed(0)
    currents = (0.8 * torch.randn(12, 5, 20, generator=generator) + 0.3).requires_grad_()
    beta = torch.rand(20, generator=generator).mul(0.5).add(0.45).requires_grad_()  # learned, one per neuron
    threshold = torch.tensor(0.9, requires_grad=True)
    weights = torch.randn(12, 5, 20, generator=generator)  # a loss that weighs every spike differently
    reference = snntorch_reference(currents, beta, threshold, reset, factory(slope))
    expected = torch.autograd.grad((reference * weights).sum(), [currents, beta, threshold])

    params = NeuronParams(beta=beta, threshold=threshold, reset=reset, surrogate=name, slope=slope)
    spikes, _ = run(currents, NeuronState.start(currents[0], params), params)
    gradients = torch.autograd.grad((spikes * weights).sum(), [currents, beta, threshold])

    assert 0.1 < float(spikes.detach().mean()) < 0.9 and torch.equal(spikes, reference)
    for found, wanted in zip(gradients, expected, strict=True):
        assert float(wanted.abs().sum()) > 0  # the gradient reaches it
        torch.testing.assert_close(found, wanted, rtol=1e-5, atol=1e-6)


def test_the_step_without_gradients_writes_the_same_spikes():
    currents = torch.rand(16, 3, 7, generator=torch.Generator().manual_seed(1))
    params = NeuronParams(beta=0.9, threshold=0.5)
    with torch.no_grad():
        fast, fast_state = run(currents, NeuronState.start(currents[0], params), params)
    state, slow = NeuronState.start(currents[0], params), []
    for current in currents:
        spiked, state = step(current, state, params)
        slow.append(spiked)
    assert torch.equal(fast, torch.stack(slow)) and torch.equal(fast_state.v, state.v)


def test_at_the_threshold_only_the_conversion_convention_fires():
    at_threshold = torch.ones(1, 4)
    for fire_at_threshold, expected in ((True, 1.0), (False, 0.0)):
        params = NeuronParams(fire_at_threshold=fire_at_threshold)
        spikes, state = run(at_threshold[None], NeuronState.start(at_threshold, params), params)
        assert torch.equal(spikes, torch.full_like(spikes, expected))
        assert torch.equal(state.membrane(), 1.0 - spikes[0])  # reset by subtraction


def test_a_growing_threshold_grows_by_its_factor_per_spike():
    params = NeuronParams(threshold=1.0, growth=2.0, fire_at_threshold=True)
    currents = torch.full((40, 1), 1.0)  # charge t after t steps: spikes when it reaches 1, 3, 7, 15, 31
    spikes, _ = run(currents, NeuronState.start(currents[0], params), params)
    assert spikes.flatten().nonzero().flatten().add(1).tolist() == [1, 3, 7, 15, 31]


def test_unknown_names_are_refused_with_the_known_ones():
    with pytest.raises(ValueError, match="unknown surrogate 'tanh'; choose one of .*atan"):
        NeuronParams(surrogate="tanh")
    with pytest.raises(ValueError, match="reset must be one of"):
        NeuronParams(reset="none")
    for name in SURROGATES:  # every listed surrogate is a spike function: H forward, a slope backward
        distance = torch.tensor([-0.5, 0.5], requires_grad=True)
        spikes = spike_function(name, None)(distance)
        (gradient,) = torch.autograd.grad(spikes.sum(), distance)
        assert spikes.tolist() == [0.0, 1.0] and (gradient > 0).all()


def test_the_conversion_convention_keeps_the_surrogate_gradient():
    currents = torch.rand(6, 3, 5, generator=torch.Generator().manual_seed(2)).requires_grad_()
    gradients = []
    for fire_at_threshold in (True, False):
        params = NeuronParams(beta=0.8, threshold=0.7, fire_at_threshold=fire_at_threshold)
        spikes, _ = run(currents, NeuronState.start(currents[0], params), params)
        gradients.append(torch.autograd.grad(spikes.sum(), currents)[0])
    assert float(gradients[0].abs().sum()) > 0 and torch.equal(*gradients)  # no value lies exactly at θ
