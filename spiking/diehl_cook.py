"""Diehl & Cook (2015), "Unsupervised learning of digit recognition using spike-timing-dependent
plasticity", Front. Comput. Neurosci. 9:99, in Brian2, with the parameters of the authors' code.

Excitatory neurons (conductance-based LIF with adaptive threshold and a spike timer)::

    dv/dt     = ((v_rest_e - v) + ge (0 mV - v) + gi (E_inh_e - v)) / tau_e     (unless refractory)
    dge/dt    = -ge / tau_ge,   dgi/dt = -gi / tau_gi
    dtheta/dt = -theta / tau_theta      (only while learning; theta is frozen for evaluation)
    dtimer/dt = 0.1
    spike  if v > theta - theta_offset + v_thresh_e  and  timer > timer_threshold
    reset  v = v_reset_e,  theta += theta_plus (learning only),  timer = 0

Inhibitory neurons: the same membrane with tau_i, E_inh_i and a fixed threshold, no theta/timer.

Input: 784 Poisson neurons at pixel/8 * intensity Hz for 350 ms, then 150 ms silent. Fewer than
5 excitatory spikes in a presentation: intensity += 1 and the same image again; otherwise the
next image at intensity 2. Before every presentation (learning only) each excitatory neuron's
incoming weights are scaled to sum to 78.

STDP on input -> excitatory synapses, traces pre (tau 20 ms), post1 (20 ms), post2 (40 ms)::

    on pre:  ge += w;  pre = 1;  w = clip(w - nu_pre * post1, 0, w_max)
    on post: w = clip(w + nu_post * pre * post2_before, 0, w_max);  post1 = 1;  post2 = 1

The post traces depend only on the excitatory neuron, so they live there (one exact decay per
neuron and step instead of three exponentials per synaptic event); the pre trace, reset to 1 at
each delayed arrival, is stored as the arrival time. Both forms equal the authors' traces.

Simulation design: presentations and rests sit on a fixed 500 ms grid ("slots"), so one Brian2
run holds a whole block of slots. A one-neuron *controller* group counts excitatory spikes during
the presentation, decides at its last time step whether the next slot shows the next image (at
the initial intensity) or the same one again (intensity + 1), and the input neurons read the
current image's rates from a ``TimedArray`` indexed by the controller's image counter. With the
``cpp_standalone`` device the block is compiled once and re-run with new state through
``run_args``, so no per-image work happens in Python.

Deviations from the authors' code: (1) the block structure carries weights, theta, membrane
potentials, conductances, spike timers and STDP traces across blocks, but not refractory state
or spikes in flight (neither exists at the end of a 150 ms silent rest); (2) Poisson input is a
Bernoulli trial per time step as in Brian's PoissonGroup, drawn as geometric waiting times;
(3) evaluation presentations use the same re-presentation rule with frozen weights and theta,
as the authors' test mode does. Membranes are integrated with forward Euler by default, as in
the Brian2 port of the model and in Brian 1; a block whose membranes diverged is refused
(:func:`check_membranes`). From 1600 neurons on the lateral inhibition makes forward Euler
diverge; ``membrane_update="exponential"`` (:func:`membrane_step`) is exact for each step's
conductances and stable.

The defaults are the parameter table of the paper and of the authors' code as written. Brian 1.4
executes that code differently in three places, each measured here by running the authors' rules
in Brian 1.4.4 (see the README): ``brian_no_units`` turns ``dtimer/dt = 100.0 : ms`` into 100
per second, so the timer never limits; a string reset with a refractory period only blocks
spikes while the membrane keeps integrating; and Brian 1's STDP reads delayed postsynaptic traces
by their position in the STDP equations while its trace group orders them by a set iteration, so
depression reads post2 (40 ms) in place of post1 (20 ms). :data:`PRESETS` ``"authors-brian1"``
sets the three.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np

INPUT_SIZE = 784
PIXEL_MAX = 255.0


# How a membrane advances one step: a fraction f of the way to the potential its conductances
# pull it to (see membrane_step). "euler": f = a, forward Euler as Brian 1 and the Brian2 port run
# the authors' code; it overshoots once a > 1 and diverges once a > 2 (check_membranes).
# "exponential": f = 1 - exp(-a), exact for the step's conductances (exponential Euler); never
# overshoots, whatever the inhibition.
MEMBRANE_UPDATES = ("euler", "exponential")


@dataclass(frozen=True)
class DiehlCookParameters:
    """The network's constants; the defaults are those of the authors' public code."""

    dt_ms: float = 0.5
    membrane_update: str = "euler"  # one of MEMBRANE_UPDATES
    presentation_ms: float = 350.0
    rest_ms: float = 150.0
    pixel_rate_divisor: float = 8.0  # rate (Hz) = pixel (0-255) / 8 * intensity
    initial_intensity: float = 2.0
    min_spikes: int = 5
    # excitatory population
    v_rest_e_mV: float = -65.0
    v_reset_e_mV: float = -65.0
    v_thresh_e_mV: float = -52.0
    theta_offset_mV: float = 20.0
    refractory_e_ms: float = 5.0
    clamp_v_e_refractory: bool = True  # v held at reset while refractory (Brian2 port); Brian 1 did not
    tau_e_ms: float = 100.0
    v_init_e_mV: float = -105.0
    e_inh_e_mV: float = -100.0
    timer_rate: float = 0.1  # dtimer/dt: 100 ms per second
    timer_threshold_ms: float = 5.0
    theta_init_mV: float = 20.0
    theta_plus_mV: float = 0.05
    tau_theta_ms: float = 1e7
    # inhibitory population
    v_rest_i_mV: float = -60.0
    v_reset_i_mV: float = -45.0
    v_thresh_i_mV: float = -40.0
    refractory_i_ms: float = 2.0
    tau_i_ms: float = 10.0
    v_init_i_mV: float = -100.0
    e_inh_i_mV: float = -85.0
    # conductances
    tau_ge_ms: float = 1.0
    tau_gi_ms: float = 2.0
    # synapses
    w_init_scale: float = 0.3  # w = 0.3 * (U(0, 1) + 0.01)
    w_init_offset: float = 0.01
    input_delay_max_ms: float = 10.0  # delays U(0, 10 ms)
    w_max: float = 1.0
    w_exc_to_inh: float = 10.4
    w_inh_to_exc: float = 17.0
    weight_total: float = 78.0  # incoming weights per excitatory neuron after normalisation
    # STDP
    tau_pre_ms: float = 20.0
    tau_post1_ms: float = 20.0
    tau_post2_ms: float = 40.0
    nu_pre: float = 0.0001
    nu_post: float = 0.01

    def __post_init__(self):
        if self.membrane_update not in MEMBRANE_UPDATES:
            raise ValueError(f"membrane_update must be one of {MEMBRANE_UPDATES}, got {self.membrane_update!r}")

    @property
    def slot_ms(self) -> float:
        return self.presentation_ms + self.rest_ms

    @property
    def steps_per_slot(self) -> int:
        return round(self.slot_ms / self.dt_ms)

    @property
    def steps_per_presentation(self) -> int:
        return round(self.presentation_ms / self.dt_ms)


# Named sets of overrides: the paper's table, and the authors' code as Brian 1.4 executes it.
PRESETS: dict[str, dict[str, object]] = {
    "paper": {},
    "authors-brian1": {"timer_rate": 100.0, "clamp_v_e_refractory": False, "tau_post1_ms": 40.0},
}


def with_overrides(params: DiehlCookParameters, overrides: dict[str, object]) -> DiehlCookParameters:
    """``params`` with some constants replaced (experiments away from the paper's values; a run's
    config.json records the result). Numbers are cast to the field's type."""
    types = {field.name: type(getattr(params, field.name)) for field in fields(params)}
    if unknown := sorted(set(overrides) - set(types)):
        raise ValueError(f"the Diehl & Cook model has no constant {unknown[0]!r}; it has {sorted(types)}")
    for name, value in overrides.items():
        if types[name] is str:
            if not isinstance(value, str):
                raise ValueError(f"{name} must be a name, got {value!r}")
        elif (isinstance(value, bool) != (types[name] is bool) or not isinstance(value, (int, float))
                or (types[name] is int and value != int(value))):
            raise ValueError(f"{name} must be of type {types[name].__name__}, got {value!r}")
    return replace(params, **{name: types[name](value) for name, value in overrides.items()})


def namespace_of(params: DiehlCookParameters) -> dict:
    """Brian2 constants named as in the equations, with units."""
    from brian2 import Hz, ms, mV

    units = {"_mV": mV, "_ms": ms}
    namespace = {}
    for field in fields(params):
        if field.name in ("dt_ms", "membrane_update"):  # the groups' clock variable; a choice of code
            continue
        value = getattr(params, field.name)
        suffix = next((s for s in units if field.name.endswith(s)), None)
        if suffix:
            namespace[field.name.removesuffix(suffix)] = value * units[suffix]
        else:
            namespace[field.name] = value
    namespace["steps_per_slot"] = params.steps_per_slot
    namespace["steps_per_presentation"] = params.steps_per_presentation
    namespace["Hz_per_pixel"] = Hz / params.pixel_rate_divisor
    namespace["post1_decay"] = np.exp(-params.dt_ms / params.tau_post1_ms)
    namespace["post2_decay"] = np.exp(-params.dt_ms / params.tau_post2_ms)
    namespace["relaxation_fraction"] = relaxation_fraction()
    return namespace


# 1 during the first 350 ms of every 500 ms slot, 0 during the rest (integer time steps, no drift)
PRESENTING = "int((t_in_timesteps % steps_per_slot) < steps_per_presentation)"

# v, ge and gi advance in membrane_step; the group's state updater integrates theta and timer.
EXCITATORY_EQUATIONS = """
v : volt
ge : 1
gi : 1
dtheta/dt = -plasticity * theta / tau_theta : volt
dtimer/dt = timer_rate : second
post1 : 1  # STDP traces of this neuron's spikes (reset to 1, decaying exactly with tau_post1/2)
post2 : 1
plasticity : 1 (shared)
w_total : 1  # sum of incoming input weights, refreshed at the start of every slot
"""
EXCITATORY_THRESHOLD = "v > theta - theta_offset + v_thresh_e and timer > timer_threshold"
POST_TRACE_RESET = "post1 = 1; post2 = 1"
EXCITATORY_RESET = "v = v_reset_e; theta += plasticity * theta_plus; timer = 0*ms; " + POST_TRACE_RESET
POST_TRACE_DECAY = "post1 *= post1_decay; post2 *= post2_decay"  # exp(-dt/tau) per step: exact

INHIBITORY_EQUATIONS = """
v : volt
ge : 1
gi : 1
"""


# f(a) = 1 - exp(-a) in generated C++, keeping the last argument and its value: the inhibitory
# neurons without input (ge = 0, nearly all of them at any step) share one a, so one exp serves
# a run of them, bit for bit the value each would compute.
RELAXATION_FRACTION_CPP = """
static inline double relaxation_fraction(double a)
{
    static thread_local double last_a = -1.0, last_fraction = 0.0;  // a >= 0: the first call computes
    if (a != last_a)
    {
        last_a = a;
        last_fraction = 1 - exp(-a);
    }
    return last_fraction;
}
"""
RELAXATION_FRACTION_PLAIN = {
    "cython": "cdef double relaxation_fraction(double a):\n    return 1 - exp(-a)\n",
    "cuda": "__host__ __device__ static inline double relaxation_fraction(double a)\n{\n    return 1 - exp(-a);\n}\n",
}


def relaxation_fraction():
    """The Brian2 function f(a) = 1 - exp(-a) of the exponential membrane update
    (:func:`membrane_step`), with the same values on every target."""
    from brian2 import Function

    function = Function(lambda a: 1 - np.exp(-a), arg_units=[1], return_unit=1)
    function.implementations.add_implementation("cpp", RELAXATION_FRACTION_CPP, name="relaxation_fraction")
    for target, code in RELAXATION_FRACTION_PLAIN.items():
        function.implementations.add_implementation(target, code, name="relaxation_fraction")
    return function


def membrane_step(population: str, update: str, clamped: bool) -> str:
    """Brian2 code advancing ``population``'s (``"e"`` or ``"i"``) membrane and conductances by dt.

    dv/dt = ((v_rest - v) + ge (0 mV - v) + gi (E_inh - v)) / tau = (v_inf - v) a / dt, with
    a = dt (1 + ge + gi) / tau and v_inf = (v_rest + gi E_inh) / (1 + ge + gi); so one step moves v
    the fraction f(a) of :data:`MEMBRANE_UPDATES` towards v_inf, with the conductances of the
    step's start. Then the conductances decay by forward Euler's 1 - dt / tau_g (which gives a
    spike's conductance the same integral, w tau_g, as the continuous decay). ``clamped``: v is
    held while refractory.
    """
    conductance = "(1 + ge + gi)"
    a = f"dt * {conductance} / tau_{population}"
    fraction = a if update == "euler" else f"relaxation_fraction({a})"
    gate = "int(not_refractory) * " if clamped else ""
    return (f"v += {gate}{fraction} * ((v_rest_{population} + gi * e_inh_{population}) / {conductance} - v)\n"
            "ge *= 1 - dt / tau_ge\ngi *= 1 - dt / tau_gi")

# Poisson input as a Bernoulli trial per time step (probability rate * dt), drawn as the geometric
# number of steps to the next spike: one random number per spike instead of one per step.
INPUT_EQUATIONS = """
image : integer (linked)
intensity : 1 (linked)
next_step : integer  # time step of this input's next spike
p_spike = clip(pixels(image * ms, i) * Hz_per_pixel * intensity * dt, 1e-12, 0.5) : 1
"""
# trials to the first success, geometric(p_spike) >= 1; clipped before rounding to stay in int32
STEPS_TO_SPIKE = "1 + floor(clip(log(rand()) / log(1 - p_spike), 0, 1e9))"
INPUT_THRESHOLD = "t_in_timesteps >= next_step and " + PRESENTING + " == 1"
# (the 64-bit step counter is added on a line of its own: brian2cuda warns when it shares one with log)
INPUT_RESET = "next_step = int(" + STEPS_TO_SPIKE + ")\nnext_step += t_in_timesteps"
INPUT_PRESENTATION_START = "next_step = int(" + STEPS_TO_SPIKE + ") - 1\nnext_step += t_in_timesteps"

# The presynaptic trace is reset to 1 at each (delayed) arrival, so it equals
# exp(-(t - last_arrival) / tau_pre): storing the arrival time is exact and needs no decay work.
STDP_MODEL = """
w : 1
last_arrival : second
w_total_post = w : 1 (summed)
"""
STDP_ON_PRE = """
ge_post += w
last_arrival = t
w = clip(w - plasticity_post * nu_pre * post1_post, 0, w_max)
"""
STDP_ON_POST = """
w = clip(w + plasticity_post * nu_post * exp(-(t - last_arrival) / tau_pre) * post2_post, 0, w_max)
"""  # runs before the neuron's reset, so post2_post is still the value before this spike
NORMALISE = "w = w * (1 + plasticity_post * (weight_total / w_total_post - 1))"
NEVER_ARRIVED_MS = -1e7

CONTROLLER_EQUATIONS = """
image : integer
intensity : 1
spikes : integer
"""
# evaluated on the first time step of each rest, when all of the presentation's spikes are counted
CONTROLLER_DECIDES = "t_in_timesteps % steps_per_slot == steps_per_presentation"
CONTROLLER_UPDATE = """
accepted = int(spikes >= min_spikes)
image += accepted
intensity = accepted * initial_intensity + (1 - accepted) * (intensity + 1)
spikes = 0
"""
COUNT_PRESENTATION_SPIKE = "spikes_post += " + PRESENTING


@dataclass
class DiehlCookNetwork:
    """The Brian2 objects of one block of ``slots`` presentations of ``n_excitatory`` neurons."""

    params: DiehlCookParameters
    n_excitatory: int
    slots: int
    network: object
    pixels: object  # TimedArray [slots, 784] of pixel values (0-255)
    inputs: object
    excitatory: object
    inhibitory: object
    controller: object
    input_to_excitatory: object
    synapse_order: np.ndarray  # flat index i * N + j of each input synapse, in Brian2's synapse order
    spikes: object  # SpikeMonitor of the excitatory population
    decisions: object  # EventMonitor of the controller: image and intensity of each presentation


def synapse_order(delays_ms: np.ndarray, dt_ms: float) -> np.ndarray:
    """Flat indices ``i * N + j`` of the input synapses ``[784, N]``, each input's sorted by the
    time step its spikes take to arrive (then by target).

    Stored in this order, the synapses that one input spike reaches in the same time step lie next
    to each other in memory, so delivering them reads whole cache lines instead of one line per
    synapse (a memory layout only: the network is the same).
    """
    steps = np.rint(delays_ms / dt_ms).astype(np.int64)
    order = np.argsort(steps, axis=1, kind="stable")
    return (np.arange(delays_ms.shape[0])[:, None] * delays_ms.shape[1] + order).ravel()


def build_network(params: DiehlCookParameters, n_excitatory: int, slots: int,
                  delays_ms: np.ndarray | None = None) -> DiehlCookNetwork:
    """Create (but do not run) the network for a block of ``slots`` presentations.

    ``delays_ms`` (``[784, N]``, optional): store the input synapses in :func:`synapse_order`
    for these delays; without it they are stored input by input, target by target. Works on any
    Brian2 device; the caller chooses the device before calling this.
    """
    from brian2 import (
        Clock,
        EventMonitor,
        Network,
        NeuronGroup,
        SpikeMonitor,
        Synapses,
        TimedArray,
        defaultclock,
        linked_var,
        ms,
    )

    namespace = namespace_of(params)
    # Every group steps on the default clock (brian2cuda's synapse code refers to it by name).
    defaultclock.dt = params.dt_ms * ms
    slot = params.slot_ms * ms
    pixels = TimedArray(np.zeros((slots, INPUT_SIZE)), dt=1 * ms, name="pixels")
    namespace["pixels"] = pixels

    controller = NeuronGroup(
        1, CONTROLLER_EQUATIONS, events={"decide": CONTROLLER_DECIDES}, namespace=namespace, name="controller"
    )
    controller.run_on_event("decide", CONTROLLER_UPDATE, when="end")
    controller.intensity = params.initial_intensity

    inputs = NeuronGroup(
        INPUT_SIZE, INPUT_EQUATIONS, threshold=INPUT_THRESHOLD, reset=INPUT_RESET, namespace=namespace,
        name="inputs",
    )
    inputs.run_regularly(INPUT_PRESENTATION_START, dt=slot, when="start", order=2, name="presentation_start")
    inputs.image = linked_var(controller, "image", index=np.zeros(INPUT_SIZE, dtype=int))
    inputs.intensity = linked_var(controller, "intensity", index=np.zeros(INPUT_SIZE, dtype=int))

    excitatory = NeuronGroup(
        n_excitatory, EXCITATORY_EQUATIONS, threshold=EXCITATORY_THRESHOLD, reset=EXCITATORY_RESET,
        refractory=params.refractory_e_ms * ms, method="euler", namespace=namespace, name="excitatory",
    )
    excitatory.run_regularly(POST_TRACE_DECAY, when="groups", name="post_trace_decay")
    inhibitory = NeuronGroup(
        n_excitatory, INHIBITORY_EQUATIONS, threshold="v > v_thresh_i", reset="v = v_reset_i",
        refractory=params.refractory_i_ms * ms, namespace=namespace, name="inhibitory",
    )
    # after the state updaters (order 0), which set not_refractory for this step
    for group, population, clamped in ((excitatory, "e", params.clamp_v_e_refractory), (inhibitory, "i", True)):
        group.run_regularly(membrane_step(population, params.membrane_update, clamped), when="groups", order=1,
                            name=f"{group.name}_membrane")

    input_to_excitatory = Synapses(
        inputs, excitatory, STDP_MODEL, on_pre=STDP_ON_PRE, on_post=STDP_ON_POST,
        namespace=namespace, name="input_to_excitatory",
    )
    order = (np.arange(INPUT_SIZE * n_excitatory) if delays_ms is None
             else synapse_order(delays_ms, params.dt_ms))
    input_to_excitatory.connect(i=order // n_excitatory, j=order % n_excitatory)  # all to all
    # per-synapse delays come from the state; the block runners set them (see block_runner)
    # Normalisation needs each neuron's weight sum only once per slot, at its start: the summed
    # variable is updated on a slot clock instead of every time step (Brian2 has no public knob).
    summed = input_to_excitatory.summed_updaters["w_total_post"]
    summed._clock = Clock(dt=slot, name="slot_clock")
    summed.when, summed.order = "start", 0
    input_to_excitatory.run_regularly(NORMALISE, dt=slot, when="start", order=1, name="normalise")

    excitatory_to_inhibitory = Synapses(
        excitatory, inhibitory, on_pre="ge_post += w_exc_to_inh", namespace=namespace, name="exc_to_inh"
    )
    excitatory_to_inhibitory.connect(j="i")
    inhibitory_to_excitatory = Synapses(
        inhibitory, excitatory, on_pre="gi_post += w_inh_to_exc", namespace=namespace, name="inh_to_exc"
    )
    inhibitory_to_excitatory.connect(condition="i != j")
    spike_counter = Synapses(
        excitatory, controller, on_pre=COUNT_PRESENTATION_SPIKE, namespace=namespace, name="spike_counter"
    )
    spike_counter.connect()

    spikes = SpikeMonitor(excitatory, name="excitatory_spikes")
    decisions = EventMonitor(controller, "decide", variables=["image", "intensity"], name="decisions")
    network = Network(
        controller, inputs, excitatory, inhibitory, input_to_excitatory, excitatory_to_inhibitory,
        inhibitory_to_excitatory, spike_counter, spikes, decisions,
    )
    return DiehlCookNetwork(
        params, n_excitatory, slots, network, pixels, inputs, excitatory, inhibitory, controller,
        input_to_excitatory, order, spikes, decisions,
    )


@dataclass
class NetworkState:
    """Everything that carries from one block to the next (plain arrays, units in the names).

    Synaptic arrays are ``[784, N]`` (input, excitatory neuron).
    """

    weights: np.ndarray
    delays_ms: np.ndarray
    last_arrival_ms: np.ndarray  # relative to the start of the next block
    post1: np.ndarray
    post2: np.ndarray
    theta_mV: np.ndarray
    v_e_mV: np.ndarray
    ge_e: np.ndarray
    gi_e: np.ndarray
    timer_e_ms: np.ndarray
    v_i_mV: np.ndarray
    ge_i: np.ndarray
    gi_i: np.ndarray

    @property
    def n_excitatory(self) -> int:
        return self.weights.shape[1]

    def arrays(self) -> dict[str, np.ndarray]:
        return {field.name: getattr(self, field.name) for field in fields(self)}


def initial_state(params: DiehlCookParameters, n_excitatory: int, rng: np.random.Generator) -> NetworkState:
    """Random initial weights and delays, resting potentials as in the authors' code."""
    shape = (INPUT_SIZE, n_excitatory)
    zeros = np.zeros(n_excitatory)
    return NetworkState(
        weights=params.w_init_scale * (rng.random(shape) + params.w_init_offset),
        delays_ms=params.input_delay_max_ms * rng.random(shape),
        last_arrival_ms=np.full(shape, NEVER_ARRIVED_MS),
        post1=zeros.copy(),
        post2=zeros.copy(),
        theta_mV=np.full(n_excitatory, params.theta_init_mV),
        v_e_mV=np.full(n_excitatory, params.v_init_e_mV),
        ge_e=zeros.copy(),
        gi_e=zeros.copy(),
        timer_e_ms=zeros.copy(),
        v_i_mV=np.full(n_excitatory, params.v_init_i_mV),
        ge_i=zeros.copy(),
        gi_i=zeros.copy(),
    )


@dataclass(frozen=True)
class Presentations:
    """One row per slot of a block: the image shown (index into the block's images), its
    intensity, whether it reached the minimum spike count, and the excitatory spike counts
    ``[slots, N]`` during its presentation."""

    image: np.ndarray
    intensity: np.ndarray
    accepted: np.ndarray
    counts: np.ndarray
    images_completed: int  # images that moved on during the block (the controller's final counter)
    next_intensity: float  # intensity of the next slot, the first of the following block
    spike_times_ms: np.ndarray  # all excitatory spikes of the block, for rasters
    spike_neurons: np.ndarray


def state_values(net: DiehlCookNetwork, state: NetworkState, plastic: bool, intensity: float) -> list:
    """``(group, variable, value)`` for everything a block starts from except the synaptic
    delays, which the block runners set in a device-specific way."""
    from brian2 import ms, mV

    syn, exc, inh = net.input_to_excitatory, net.excitatory, net.inhibitory
    order = net.synapse_order
    return [
        (syn, "w", state.weights.ravel()[order]),
        (syn, "last_arrival", state.last_arrival_ms.ravel()[order] * ms),
        (exc, "post1", state.post1),
        (exc, "post2", state.post2),
        (exc, "theta", state.theta_mV * mV),
        (exc, "v", state.v_e_mV * mV),
        (exc, "ge", state.ge_e),
        (exc, "gi", state.gi_e),
        (exc, "timer", state.timer_e_ms * ms),
        (exc, "plasticity", float(plastic)),
        (inh, "v", state.v_i_mV * mV),
        (inh, "ge", state.ge_i),
        (inh, "gi", state.gi_i),
        (net.controller, "image", np.zeros(1, dtype=np.int32)),
        (net.controller, "intensity", np.array([intensity])),
    ]


class MembraneRunaway(RuntimeError):
    """The membrane update diverged: a membrane potential left the range its equation allows."""


RUNAWAY_MARGIN_MV = 100.0


def check_membranes(state: NetworkState, params: DiehlCookParameters) -> None:
    """Refuse a state whose membrane potentials left their reversal potentials' range.

    Solved exactly, dv/dt = ((v_rest - v) + ge (0 mV - v) + gi (E_inh - v)) / tau keeps v between
    the lowest of E_inh, v_rest, v_reset, v_init and the highest of 0 mV, v_rest, v_reset. Forward
    Euler multiplies a deviation by 1 - dt (1 + ge + gi) / tau per step, so it diverges once
    1 + ge + gi > 2 tau / dt: 400 for the excitatory neurons at dt = 0.5 ms, about 24 inhibitory
    spikes (17 each) arriving together. Raises :class:`MembraneRunaway` if a potential is not
    finite or lies more than ``RUNAWAY_MARGIN_MV`` outside that range.
    """
    populations = (
        ("excitatory", state.v_e_mV, params.tau_e_ms,
         (params.e_inh_e_mV, params.v_rest_e_mV, params.v_reset_e_mV, params.v_init_e_mV)),
        ("inhibitory", state.v_i_mV, params.tau_i_ms,
         (params.e_inh_i_mV, params.v_rest_i_mV, params.v_reset_i_mV, params.v_init_i_mV)),
    )
    for name, v_mV, tau_ms, potentials in populations:
        low = min(potentials) - RUNAWAY_MARGIN_MV
        high = max(0.0, *potentials) + RUNAWAY_MARGIN_MV
        outside = ~np.isfinite(v_mV) | (v_mV < low) | (v_mV > high)
        if outside.any():
            worst = v_mV[outside][np.argmax(np.nan_to_num(np.abs(v_mV[outside]), nan=np.inf))]
            cause = (f"forward Euler at dt = {params.dt_ms:g} ms diverges once 1 + ge + gi > 2 tau / dt = "
                     f"{2 * tau_ms / params.dt_ms:g}; membrane_update=exponential is stable"
                     if params.membrane_update == "euler" else "the membrane update diverged")
            raise MembraneRunaway(
                f"numerical runaway: {outside.sum()} {name} membrane potentials left [{low:g}, {high:g}] mV "
                f"(one at {worst:.3g} mV); {cause}"
            )


def _in_input_order(values: np.ndarray, order: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Per-synapse ``values`` in Brian2's synapse ``order`` as an array ``[784, N]``."""
    arranged = np.empty(values.size)
    arranged[order] = values
    return arranged.reshape(shape)


def read_state(net: DiehlCookNetwork, previous: NetworkState) -> NetworkState:
    """The state at the end of a block, times shifted to the start of the next block; a state
    whose membranes ran away is refused (:func:`check_membranes`)."""
    syn, exc, inh = net.input_to_excitatory, net.excitatory, net.inhibitory
    block_ms = net.slots * net.params.slot_ms
    state = NetworkState(
        weights=_in_input_order(np.asarray(syn.w), net.synapse_order, previous.weights.shape),
        delays_ms=previous.delays_ms,
        last_arrival_ms=_in_input_order(np.asarray(syn.last_arrival_) * 1e3 - block_ms, net.synapse_order,
                                        previous.weights.shape),
        post1=np.asarray(exc.post1).copy(),
        post2=np.asarray(exc.post2).copy(),
        theta_mV=np.asarray(exc.theta_) * 1e3,
        v_e_mV=np.asarray(exc.v_) * 1e3,
        ge_e=np.asarray(exc.ge).copy(),
        gi_e=np.asarray(exc.gi).copy(),
        timer_e_ms=np.asarray(exc.timer_) * 1e3,
        v_i_mV=np.asarray(inh.v_) * 1e3,
        ge_i=np.asarray(inh.ge).copy(),
        gi_i=np.asarray(inh.gi).copy(),
    )
    check_membranes(state, net.params)
    return state


def read_presentations(net: DiehlCookNetwork) -> Presentations:
    """Per-slot image, intensity and per-neuron spike counts during the presentation."""
    params = net.params
    spike_steps = np.round(np.asarray(net.spikes.t_) * 1e3 / params.dt_ms).astype(np.int64)
    slot_of_spike = spike_steps // params.steps_per_slot
    during_presentation = spike_steps % params.steps_per_slot < params.steps_per_presentation
    counts = np.zeros((net.slots, net.n_excitatory), dtype=np.int64)
    np.add.at(counts, (slot_of_spike[during_presentation], np.asarray(net.spikes.i)[during_presentation]), 1)
    image = np.asarray(net.decisions.image).astype(np.int64)
    images_completed = int(np.asarray(net.controller.image)[0])
    return Presentations(
        image=image,
        intensity=np.asarray(net.decisions.intensity).astype(float),
        accepted=np.diff(np.append(image, images_completed)) > 0,  # the controller moved on
        counts=counts,
        images_completed=images_completed,
        next_intensity=float(np.asarray(net.controller.intensity)[0]),
        spike_times_ms=np.asarray(net.spikes.t_) * 1e3,
        spike_neurons=np.asarray(net.spikes.i).astype(np.int64),
    )


def pixel_block(images: np.ndarray, start: int, slots: int, remaining: int) -> np.ndarray:
    """Pixels ``float [slots, 784]`` of the images from ``start`` on (wrapping around ``images``).

    Only ``remaining`` images are still to be shown; the rows after them are blank, which
    presents nothing (a blank slot changes no weight and theta only by its slow decay).
    """
    order = (start + np.arange(slots)) % len(images)
    block = images[order].reshape(slots, INPUT_SIZE).astype(np.float64)
    block[max(remaining, 0):] = 0.0
    return block


def assign_labels(counts: np.ndarray, labels: np.ndarray, classes: int = 10) -> np.ndarray:
    """Each neuron's class: the one with the highest mean response over ``counts [images, N]``.

    Classes without any image get a mean response of zero.
    """
    sums = np.zeros((classes, counts.shape[1]))
    np.add.at(sums, labels, counts)
    images_per_class = np.bincount(labels, minlength=classes)[:, None]
    return np.argmax(sums / np.maximum(images_per_class, 1), axis=0)


def classify(counts: np.ndarray, assignments: np.ndarray, classes: int = 10) -> np.ndarray:
    """The class whose assigned neurons have the highest mean spike count, per image.

    Classes with no assigned neuron score zero.
    """
    sums = np.zeros((counts.shape[0], classes))
    np.add.at(sums.T, assignments, counts.T)
    neurons_per_class = np.bincount(assignments, minlength=classes)
    return np.argmax(sums / np.maximum(neurons_per_class, 1), axis=1)


