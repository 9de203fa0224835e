"""Weber-Fechner coding: carry the log network of Thériault & François (2021) into spike counts.

The log-coding neuron is integrate-and-fire with reset by subtraction whose threshold grows by a
factor r > 1 at each spike::

    v[t] = v[t-1] + I[t];   s[t] = (v[t] >= theta[t-1]);   v[t] -= s[t] theta[t-1];   theta[t] = theta[t-1] r^s[t]

Its n-th spike needs the charge theta0 (r^n - 1) / (r - 1), so after a total charge Q it has fired

    n = floor(log_r(1 + Q (r - 1) / theta0))  ~  log_r(Q) + log_r((r - 1) / theta0)

times: the count is the log of the drive plus a constant (the Weber-Fechner law), one spike per
factor r. Driven for T steps by the log network's mean projection d_j = (1/N) sum_k w1[j, k] x1[k],
it estimates x2[j] = log d_j as  ln r (n_j + 1/2) + log(theta0 / ((r - 1) T)), where the 1/2
centres the floor. The output layer integrates w2 ln r n_j and a bias current that compensates
the constant, so its evidence estimates x3 = w2 x2 (the classes' offsets sum_j w2[i, j] c differ,
so without the bias the class with the smallest row sum of w2 would be favoured).

Choice of r and theta0 for T steps: from the calibration drives' low and high percentiles d_lo,
d_hi, theta0 puts d_lo at Q (r - 1) / theta0 = e^headroom (inside the log regime), and r makes d_hi
fire ``fill`` T spikes, so no neuron needs more than one spike per step by the end of the window:

    ln r = ln(1 + e^headroom d_hi / d_lo) / (fill T),    theta0 = d_lo T (r - 1) e^-headroom

The resolution of x2 is ln r per spike, which shrinks as 1/T.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

import torch
from torch import nn

from bridges.common import (
    INPUT_CODINGS,
    ConversionError,
    EquivalenceReport,
    Moments,
    SpikingRun,
    StepsResult,
    percentile_value,
)
from bridges.neurons import poisson_spikes, spike_driven_linear
from rate_models.log_network import LogNetwork, log_activation, mean_projection
from spiking import neuron


def log_coding_neuron(theta0: float, growth: float) -> neuron.NeuronParams:
    """The log-coding neuron: the step of :mod:`spiking.neuron` with β = 1, reset by subtraction
    and a threshold from ``theta0`` that grows by the factor ``growth`` with each spike."""
    return neuron.NeuronParams(beta=1.0, threshold=theta0, reset="subtract", growth=growth, fire_at_threshold=True)


def log_coding_counts(currents: torch.Tensor, theta0: float, growth: float) -> torch.Tensor:
    """Spike counts of log-coding neurons started at v = 0, theta = ``theta0``, over ``currents [T, ...]``."""
    params = log_coding_neuron(theta0, growth)
    spikes, _ = neuron.run(currents, neuron.NeuronState.start(currents[0], params), params)
    return spikes.sum(0)


def log_law_count(charge: torch.Tensor, theta0: float, growth: float) -> torch.Tensor:
    """The spike count floor(log_r(1 + Q (r - 1) / theta0)) after a total charge ``charge``."""
    return torch.floor(torch.log1p(charge * (growth - 1.0) / theta0) / math.log(growth) + 1e-9)


@dataclass(frozen=True)
class LogCodingOptions:
    """How a log network is converted and simulated (see the module docstring).

    input_coding: ``current`` (pixels as constant current) or ``poisson`` (spikes with probability =
    pixel per step). low/high_percentile: calibration drive percentiles that set d_lo and d_hi.
    headroom: ln of Q (r - 1) / theta0 at d_lo. fill: share of the T steps the strongest drive fills with spikes.
    """

    input_coding: str = "current"
    low_percentile: float = 0.1
    high_percentile: float = 99.9
    headroom: float = 2.0
    fill: float = 0.5

    def __post_init__(self):
        if self.input_coding not in INPUT_CODINGS:
            raise ConversionError(f"input_coding must be one of {INPUT_CODINGS}, got {self.input_coding!r}")
        if not 0 < self.low_percentile < self.high_percentile <= 100:
            raise ConversionError("need 0 < low_percentile < high_percentile <= 100")
        if not 0 < self.fill <= 1 or self.headroom <= 0:
            raise ConversionError(f"fill must be in (0, 1] and headroom > 0, got {self.fill}, {self.headroom}")


@dataclass(frozen=True)
class LogCode:
    """The neuron parameters for one T: growth r, initial threshold theta0, and the constant c with
    x2 ~ ln r n + c."""

    growth: float
    theta0: float
    offset: float

    @classmethod
    def for_steps(cls, steps: int, low: float, high: float, options: LogCodingOptions) -> LogCode:
        log_growth = math.log1p(math.exp(options.headroom) * high / low) / (options.fill * steps)
        growth = math.exp(log_growth)
        theta0 = low * steps * (growth - 1.0) * math.exp(-options.headroom)
        return cls(growth, theta0, log_growth / 2 + math.log(theta0 / ((growth - 1.0) * steps)))

    def decode(self, counts: torch.Tensor) -> torch.Tensor:
        """The log activation x2 estimated from spike counts."""
        return math.log(self.growth) * counts + self.offset


class LogSpikingNetwork(nn.Module):
    """A converted log network: log-coding hidden neurons, integrating output with the offset
    compensated. ``low``/``high`` are the calibration drives d_lo, d_hi."""

    def __init__(self, w1: torch.Tensor, w2: torch.Tensor, low: float, high: float, options: LogCodingOptions):
        super().__init__()
        self.register_buffer("w1", w1.detach().clone())
        self.register_buffer("w2", w2.detach().clone())
        self.low, self.high, self.options = low, high, options

    def code(self, steps: int) -> LogCode:
        return LogCode.for_steps(steps, self.low, self.high, self.options)

    def forward(self, images: torch.Tensor, steps: int = 64) -> torch.Tensor:
        return self.run(images, steps).evidence

    def describe(self, steps: int) -> str:
        """The method and its settings in a few words, for tables."""
        return f"Weber-Fechner log coding, T = {steps}, {self.options.input_coding} input"

    def equivalence(self, images: torch.Tensor, labels: torch.Tensor, steps_list: list[int], progress=None
                    ) -> EquivalenceReport:
        """The log coding's equivalence on ``images`` at every T (:func:`measure_log_coding`)."""
        return measure_log_coding(self, images, labels, steps_list, progress=progress)

    @torch.no_grad()
    def analog(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The rate model: x2 and x3."""
        hidden = log_activation(images, self.w1)
        return hidden, hidden @ self.w2.t()

    @torch.no_grad()
    def run(self, images: torch.Tensor, steps: int, time_chunk: int = 32, generator: torch.Generator | None = None
            ) -> SpikingRun:
        """Simulate ``steps`` steps, ``time_chunk`` at a time; evidence[i] = sum_j w2[i, j] (ln r n_j + c),
        i.e. the output neurons integrate ln r w2 per hidden spike and the bias current c sum_j w2[i, j] / T
        per step."""
        if steps < 1:
            raise ConversionError(f"steps must be >= 1, got {steps}")
        if images.shape[0] and images[0].numel() != self.w1.shape[1]:
            raise ConversionError(f"input of {images[0].numel()} values does not fit the log network's "
                                  f"{self.w1.shape[1]} inputs")
        if not torch.isfinite(images).all():
            raise ConversionError("the input contains NaN or infinite values")
        code, pixels = self.code(steps), images.flatten(1)
        poisson = self.options.input_coding == "poisson"
        if poisson and (pixels.min() < 0 or pixels.max() > 1):
            raise ConversionError("Poisson input needs pixel values in [0, 1] (spike probabilities per step)")
        drive = None if poisson else mean_projection(pixels, self.w1)  # constant current: computed once
        weight_t = self.w1.t().contiguous() / pixels.shape[1] if poisson else None  # rows read per input spike
        params = log_coding_neuron(code.theta0, code.growth)
        state = neuron.NeuronState.start(pixels.new_zeros((pixels.shape[0], self.w1.shape[0])), params)
        counts = torch.zeros_like(state.v)
        input_spike_count = pixels.new_zeros(pixels.shape[0])
        for start in range(0, steps, time_chunk):
            chunk = min(time_chunk, steps - start)
            if poisson:
                input_spikes = poisson_spikes(pixels, chunk, generator)
                input_spike_count += input_spikes.sum((0, 2))
                currents = spike_driven_linear(input_spikes.flatten(0, 1), weight_t, None).unflatten(0, (chunk, -1))
            else:
                currents = drive.expand(chunk, -1, -1)
            spikes, state = neuron.run(currents, state, params)
            counts += spikes.sum(0)
        input_ops = 0.0 if poisson else float(self.w1.numel())
        synaptic_ops = input_spike_count * self.w1.shape[0]
        synaptic_ops = synaptic_ops + counts.sum(1) * self.w2.shape[0]
        evidence = code.decode(counts) @ self.w2.t()
        return SpikingRun(evidence=evidence, spike_counts=[counts], steps=steps, synaptic_ops=synaptic_ops,
                          input_ops=input_ops)


def convert_log_network(network: LogNetwork, calibration_inputs: torch.Tensor, **options) -> LogSpikingNetwork:
    """The spiking log network; d_lo and d_hi are percentiles of the calibration images' drives."""
    settings = LogCodingOptions(**options)
    for name, weight in (("w1", network.w1), ("w2", network.w2)):
        if not torch.isfinite(weight).all():
            raise ConversionError(f"{name}: contains NaN or infinite values")
    if network.w1.min() < 0 or network.w2.min() < 0:
        raise ConversionError("the log network's weights must be non-negative (train it with its constraints)")
    with torch.no_grad():
        drives = mean_projection(calibration_inputs.float(), network.w1).flatten()
    drives = drives[drives > 0]
    if drives.numel() == 0:
        raise ConversionError("every calibration drive is zero: the calibration images or w1 are blank")
    low = percentile_value(drives, settings.low_percentile)
    high = percentile_value(drives, settings.high_percentile)
    return LogSpikingNetwork(network.w1, network.w2, low, high, settings)


def measure_log_coding(snn: LogSpikingNetwork, images: torch.Tensor, labels: torch.Tensor, steps_list: list[int],
                       batch_size: int = 1000, progress=None) -> EquivalenceReport:
    """For every T: spiking accuracy beside the rate model's, the decoded x2 against x2, and the
    hidden counts against the log law (drives in [d_lo, d_hi], constant-current charge d T): the
    "first layer" error of the report is in spikes / T, so that times T it reads in spikes."""
    batches = list(zip(images.split(batch_size), labels.split(batch_size), strict=True))
    analog = [snn.analog(batch) for batch, _ in batches]
    rate_correct = sum(int((x3.argmax(1) == y).sum()) for (_, x3), (_, y) in zip(analog, batches, strict=True))
    report = EquivalenceReport(
        ann_accuracy=rate_correct / len(labels), ann_macs=float(snn.w1.numel() + snn.w2.numel()), input_ops=0.0,
        layer_names=["x2 (log coding)"], scales=[], quantity="decoded log activation vs x2",
        parameters={"d_lo": snn.low, "d_hi": snn.high, "options": asdict(snn.options), "growth": {}},
    )
    for steps in steps_list:
        started, code, moments = time.perf_counter(), snn.code(steps), Moments()
        correct, synaptic, worst, hits, total = 0, 0.0, 0.0, 0, 0
        for (batch, y), (x2, _) in zip(batches, analog, strict=True):
            run = snn.run(batch, steps)
            correct += int((run.evidence.argmax(1) == y).sum())
            synaptic += float(run.synaptic_ops.sum())
            report.input_ops = run.input_ops
            counts = run.spike_counts[0]
            moments.add(code.decode(counts), x2)
            drives = x2.exp()
            inside = (drives >= snn.low) & (drives <= snn.high)
            deviation = (counts - log_law_count(drives * steps, code.theta0, code.growth)).abs()[inside]
            worst = max(worst, float(deviation.max()) if deviation.numel() else 0.0)
            hits += int((deviation <= 1).sum())
            total += int(inside.sum())
            if progress is not None:
                progress.update(len(batch))
        report.parameters["growth"][steps] = code.growth
        report.results.append(StepsResult(
            steps=steps, accuracy=correct / len(labels), correlation=[moments.correlation()],
            mean_abs_error=[moments.mean_abs_error()], first_layer_max_error=worst / steps,
            first_layer_within_one_spike=hits / max(total, 1), synaptic_ops=synaptic / len(labels),
            seconds=time.perf_counter() - started,
        ))
    return report


@dataclass
class LogLawFit:
    """Spike count against drive, and the least-squares line count = slope ln(drive) + intercept."""

    drives: list[float]
    counts: list[float]
    slope: float  # the law predicts 1 / ln r
    intercept: float
    max_residual: float  # largest |count - line|, in spikes


def fit_log_law(drives: torch.Tensor, counts: torch.Tensor) -> LogLawFit:
    """Fit count = slope ln(drive) + intercept."""
    x, y = torch.log(drives.double()), counts.double()
    design = torch.stack([x, torch.ones_like(x)], 1)
    slope, intercept = torch.linalg.lstsq(design, y[:, None]).solution.flatten().tolist()
    residual = float((y - slope * x - intercept).abs().max())
    return LogLawFit(drives.tolist(), counts.tolist(), slope, intercept, residual)


