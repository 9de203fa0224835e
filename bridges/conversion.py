"""Convert a trained ReLU network into a spiking network of integrate-and-fire neurons.

The method of Diehl et al. (2015) and Rueckauer et al. (2017, "Conversion of continuous-valued
deep networks to efficient event-driven networks for image classification"):

1. Trace the network (``torch.fx``) into a chain of Linear, Conv2d, BatchNorm, ReLU, AvgPool2d,
   MaxPool2d, Flatten and Dropout; fold BatchNorm into the layer before it, drop Dropout.
2. Measure every ReLU layer's activations a_l on calibration data and take a scale lambda_l (the
   maximum, or a percentile such as 99.9 to ignore outliers; a QCFS layer brings its own).
3. Rescale: W_l <- W_l lambda_{l-1} / lambda_l, b_l <- b_l / lambda_l (lambda_0 = 1), so every
   neuron's activation in units of its threshold lies in [0, 1] and one spike per step is the
   most a neuron needs.
4. Simulate IF neurons with reset by subtraction (:mod:`bridges.neurons`); the rate of layer l
   times lambda_l approximates a_l. The output layer only integrates: its mean input current over
   the T steps is the class evidence, on the scale of the ANN's logits.

``MaxPool2d`` next to a ReLU (before or after it: they commute) becomes a spike gate that passes
the spikes of the unit with the highest count so far (Rueckauer et al. 2017).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import fx, nn
from torch.nn.modules.utils import _pair

from bridges.common import (
    INPUT_CODINGS,
    ConversionError,
    EquivalenceReport,
    check_option_names,
    percentile_value,
)
from bridges.neurons import (
    Pool,
    conv2d_integrate_and_fire,
    count_and_gate,
    integrate_and_fire,
    integrate_and_fire_constant,
    poisson_spikes,
    spike_driven_linear,
    sum_over_steps,
)
from rate_models.log_network import LogNetwork
from rate_models.quantised import QCFS
from spiking.activity import AFFINE, SpikingRun, fan_out, synaptic_events

PASSIVE = (nn.Flatten, nn.AvgPool2d)  # linear, parameter-free: kept as they are
IGNORED = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Identity)
BATCHNORM = (nn.BatchNorm1d, nn.BatchNorm2d)
NEGATIVE_RESPONSE = (nn.LeakyReLU, nn.PReLU, nn.ELU, nn.SELU, nn.GELU, nn.SiLU, nn.Tanh, nn.Sigmoid, nn.Softplus)
FUNCTIONAL_POOLS = {  # functional pooling calls and the names of their positional arguments
    F.max_pool2d: (nn.MaxPool2d, ("kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices")),
    F.avg_pool2d: (nn.AvgPool2d, ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad",
                                  "divisor_override")),
}
MICRO_BATCH_NEURONS = 300_000  # images x neurons of the widest layer simulated at once
SUPPORTED = "Linear, Conv2d, BatchNorm1d/2d, ReLU, QCFS, AvgPool2d, MaxPool2d, Flatten, Dropout"


@dataclass(frozen=True)
class ConversionOptions:
    """How to convert and simulate.

    percentile: activation percentile per layer used as its scale (100 = the maximum).
    input_coding: ``current`` (pixels as constant input current) or ``poisson`` (spikes with
    probability = pixel per step; pixels must lie in [0, 1]).
    v_init: initial membrane potential as a fraction of the threshold (0.5 centres the rounding
    error of the spike count; 0 is the classic choice).
    calibration_batch: calibration images propagated at once while measuring the scales.
    bias_correction_steps: if set, correct every spiking layer's biases for simulations of this
    many steps (:func:`correct_biases`, Li et al. 2021); None leaves the rescaled ANN's biases.
    """

    percentile: float = 99.9
    input_coding: str = "current"
    v_init: float = 0.5
    calibration_batch: int = 500
    bias_correction_steps: int | None = None

    def __post_init__(self):
        if not 0 < self.percentile <= 100:
            raise ConversionError(f"percentile must be in (0, 100], got {self.percentile}")
        if self.input_coding not in INPUT_CODINGS:
            raise ConversionError(f"input_coding must be one of {INPUT_CODINGS}, got {self.input_coding!r}")
        if not 0 <= self.v_init < 1:
            raise ConversionError(f"v_init must be in [0, 1), got {self.v_init}")
        if self.bias_correction_steps is not None and self.bias_correction_steps < 1:
            raise ConversionError(f"bias_correction_steps must be >= 1 or None, got {self.bias_correction_steps}")


# --- tracing ------------------------------------------------------------------------------------

@dataclass
class Op:
    """One step of the traced chain; ``kind``: affine (Linear, Conv2d), batchnorm, relu (ReLU, QCFS),
    maxpool, passive (Flatten, AvgPool2d: linear, no parameters) or ignored (Dropout)."""

    kind: str
    name: str
    module: nn.Module | None = None


def _function_op(node: fx.Node) -> Op:
    if node.target in (F.relu, torch.relu) or (node.op == "call_method" and node.target == "relu"):
        return Op("relu", node.name, nn.ReLU())
    if node.target is torch.flatten or (node.op == "call_method" and node.target == "flatten"):
        start = node.args[1] if len(node.args) > 1 else node.kwargs.get("start_dim", 0)
        if start != 1:
            raise ConversionError(f"{node.name}: flatten must keep the batch axis (start_dim=1)")
        return Op("passive", node.name, nn.Flatten())
    if node.target is F.dropout:
        return Op("ignored", node.name)
    if node.target in FUNCTIONAL_POOLS:
        module_type, names = FUNCTIONAL_POOLS[node.target]
        return _module_op(node.name, module_type(**dict(zip(names, node.args[1:], strict=False)), **node.kwargs))
    raise ConversionError(f"{node.name}: operation {getattr(node.target, '__name__', node.target)} is not supported; "
                          f"supported layers: {SUPPORTED}")


def _module_op(name: str, module: nn.Module) -> Op:
    if isinstance(module, AFFINE):
        if isinstance(module, nn.Conv2d) and (module.groups != 1 or module.padding_mode != "zeros"):
            raise ConversionError(f"{name}: grouped convolutions and non-zero padding modes are not supported")
        for parameter_name, parameter in module.named_parameters():
            if not torch.isfinite(parameter).all():
                raise ConversionError(f"{name}: {parameter_name} contains NaN or infinite values")
        return Op("affine", name, module)
    if isinstance(module, BATCHNORM):
        return Op("batchnorm", name, module)
    if isinstance(module, (nn.ReLU, QCFS)):
        return Op("relu", name, module)
    if isinstance(module, nn.MaxPool2d):
        if module.padding != 0 or module.dilation != 1 or module.ceil_mode:
            raise ConversionError(f"{name}: MaxPool2d with padding, dilation or ceil_mode is not supported")
        return Op("maxpool", name, module)
    if isinstance(module, PASSIVE):
        return Op("passive", name, module)
    if isinstance(module, IGNORED):
        return Op("ignored", name)
    activation = type(module).__name__
    if isinstance(module, NEGATIVE_RESPONSE):
        raise ConversionError(f"{name}: activation {activation} has a non-zero response to negative input; "
                              "an integrate-and-fire neuron is silent there, so only ReLU (negative slope 0) converts")
    raise ConversionError(f"{name}: layer {activation} is not supported; supported layers: {SUPPORTED}")


class _Tracer(fx.Tracer):
    """Keeps QCFS activations whole (fx would otherwise trace into them)."""

    def is_leaf_module(self, module: nn.Module, qualified_name: str) -> bool:
        return isinstance(module, QCFS) or super().is_leaf_module(module, qualified_name)


def trace(ann: nn.Module) -> list[Op]:
    """The network as a chain of :class:`Op` (no branches), Dropout removed."""
    try:
        graph = _Tracer().trace(ann)
    except Exception as exc:  # fx raises many kinds of error for data-dependent control flow
        raise ConversionError(f"the network cannot be traced with torch.fx ({exc}); only feed-forward chains "
                              "convert") from None
    modules = dict(ann.named_modules())
    ops, previous = [], None
    for node in graph.nodes:
        if node.op == "placeholder":
            if previous is not None:
                raise ConversionError("the network takes more than one input")
            previous = node
            continue
        if node.op == "output":
            break
        tensor_args = [a for a in node.all_input_nodes]
        if tensor_args != [previous] or len(node.users) != 1:
            raise ConversionError(f"{node.name}: the network branches here; only a chain of layers converts")
        op = _module_op(node.target, modules[node.target]) if node.op == "call_module" else _function_op(node)
        if op.kind != "ignored":
            ops.append(op)
        previous = node
    return ops


# --- folding and grouping -----------------------------------------------------------------------

def fold_batchnorm(affine: nn.Module, norm: nn.Module) -> nn.Module:
    """A copy of ``affine`` that computes ``norm(affine(x))`` (inference statistics)."""
    folded = copy.deepcopy(affine)
    scale = norm.weight.detach() / torch.sqrt(norm.running_var + norm.eps)
    bias = affine.bias.detach() if affine.bias is not None else torch.zeros_like(norm.running_mean)
    with torch.no_grad():
        folded.weight.mul_(scale.view(-1, *([1] * (folded.weight.dim() - 1))))
        folded.bias = nn.Parameter((bias - norm.running_mean) * scale + norm.bias.detach())
    return folded


@dataclass
class Block:
    """Linear ops ending in a ReLU (a spiking layer; ``maxpool`` gates its spikes) or, for the
    last block, in nothing (the integrating output)."""

    ops: list[nn.Module] = field(default_factory=list)
    maxpool: nn.MaxPool2d | None = None
    relu_name: str | None = None
    activation: nn.Module | None = None  # ReLU, or QCFS (which brings its own scale)


def group_blocks(ops: list[Op]) -> list[Block]:
    """Fold BatchNorm, move MaxPool next to the ReLU after it, and cut the chain at ReLUs."""
    blocks, current, pending_pool = [], Block(), None
    for index, op in enumerate(ops):
        if op.kind == "batchnorm":
            if not current.ops or not isinstance(current.ops[-1], AFFINE):
                raise ConversionError(f"{op.name}: BatchNorm must follow a Linear or Conv2d layer to be folded")
            current.ops[-1] = fold_batchnorm(current.ops[-1], op.module)
        elif op.kind in ("affine", "passive"):
            if pending_pool is not None:
                raise ConversionError(f"{pending_pool.name}: MaxPool2d must sit next to a ReLU")
            current.ops.append(copy.deepcopy(op.module))
        elif op.kind == "maxpool":
            before_relu = index + 1 < len(ops) and ops[index + 1].kind == "relu"
            after_relu = not current.ops and blocks and blocks[-1].maxpool is None
            if before_relu:
                pending_pool = op
            elif after_relu:
                blocks[-1].maxpool = op.module
            else:
                raise ConversionError(f"{op.name}: MaxPool2d must sit next to a ReLU "
                                      "(relu(maxpool(x)) = maxpool(relu(x)) lets it move there)")
        elif op.kind == "relu":
            if not any(isinstance(m, AFFINE) for m in current.ops):
                raise ConversionError(f"{op.name}: a ReLU must follow a Linear or Conv2d layer")
            current.relu_name, current.activation = op.name, op.module
            current.maxpool = pending_pool.module if pending_pool is not None else None
            blocks.append(current)
            current, pending_pool = Block(), None
    if not any(isinstance(m, AFFINE) for m in current.ops):
        raise ConversionError("the network must end in a Linear or Conv2d layer without activation (the class scores)")
    blocks.append(current)
    return blocks


# --- normalisation ------------------------------------------------------------------------------

@torch.no_grad()
def layer_scales(blocks: list[Block], calibration: torch.Tensor, options: ConversionOptions) -> list[float]:
    """lambda_l of every spiking block: the chosen percentile of its ReLU activations on the
    calibration inputs, or the trained threshold of a QCFS activation."""
    scales, batches = [], list(calibration.split(options.calibration_batch))
    for block in blocks[:-1]:
        stack = nn.Sequential(*block.ops, block.activation)
        batches = [stack(inputs) for inputs in batches]
        if isinstance(block.activation, QCFS):
            scale = float(block.activation.threshold)
        else:
            scale = percentile_value(torch.cat(batches), options.percentile)
        if scale <= 0:
            raise ConversionError(f"{block.relu_name}: the layer is silent on the calibration data (scale 0)")
        scales.append(scale)
        if block.maxpool is not None:
            batches = [block.maxpool(outputs) for outputs in batches]
    return scales


def _rescaled(ops: list[nn.Module], scale_in: float, scale_out: float) -> nn.Sequential:
    """The block's ops computing (its ANN output) / scale_out from (its ANN input) / scale_in:
    the first affine op's weights times scale_in / scale_out, every bias / scale_out."""
    stack = nn.Sequential(*[copy.deepcopy(op) for op in ops])
    weight_factor = scale_in / scale_out
    with torch.no_grad():
        for op in stack:
            if isinstance(op, AFFINE):
                op.weight.mul_(weight_factor)
                weight_factor = 1.0
                if op.bias is not None:
                    op.bias.div_(scale_out)
    return stack


# --- the spiking network ------------------------------------------------------------------------

def single_linear(stack: nn.Sequential) -> nn.Linear | None:
    """The Linear of a stack that is only (Flatten and) one Linear, else None."""
    ops = [op for op in stack if not isinstance(op, nn.Flatten)]
    return ops[0] if len(ops) == 1 and isinstance(ops[0], nn.Linear) else None


LayerStep = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor, torch.Tensor]]


def gate_of(pool: nn.MaxPool2d | None) -> Pool | None:
    """The kernel and stride of a max-pool gate."""
    return None if pool is None else (_pair(pool.kernel_size), _pair(pool.stride))


def spiking_layer(stack: nn.Sequential, pool: nn.MaxPool2d | None) -> LayerStep:
    """IF neurons driven by ``stack`` and gated by ``pool``: a function of the input spikes
    ``[T, N, ...]``, the membrane and the spike counts so far that returns the passed spikes, the
    counts and the membrane (:func:`bridges.neurons.count_and_gate`). A stack that is one Linear,
    or one zero-padded, ungrouped, undilated Conv2d, reads its weights by presynaptic neuron
    (event-driven); any other stack is applied to the spikes of every step."""
    gate = gate_of(pool)
    conv = stack[0] if len(stack) == 1 else None
    if (isinstance(conv, nn.Conv2d) and conv.groups == 1 and conv.dilation == (1, 1)
            and conv.padding_mode == "zeros" and not isinstance(conv.padding, str)):
        return lambda spikes, membrane, counts: conv2d_integrate_and_fire(
            spikes, conv.weight, conv.bias, conv.stride, conv.padding, membrane, counts, gate)
    if (linear := single_linear(stack)) is not None:
        weight_t = linear.weight.t().contiguous()  # rows of the transposed matrix: one per presynaptic neuron

        def currents_of(spikes: torch.Tensor) -> torch.Tensor:
            return spike_driven_linear(spikes.flatten(2).flatten(0, 1), weight_t, linear.bias)
    else:
        def currents_of(spikes: torch.Tensor) -> torch.Tensor:
            return stack(spikes.flatten(0, 1))

    def step(spikes: torch.Tensor, membrane: torch.Tensor, counts: torch.Tensor
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        out_spikes, membrane = integrate_and_fire(membrane, currents_of(spikes).unflatten(0, spikes.shape[:2]))
        return *count_and_gate(out_spikes, counts, gate), membrane
    return step


class SpikingNetwork(nn.Module):
    """IF layers (``stacks[:-1]``, each gated by ``pools[l]`` when not None) and the integrating
    output (``stacks[-1]``). ``scales[l]`` is lambda_l: rate times lambda_l estimates the ANN's
    activation of layer l. ``analog_stacks`` (default: ``stacks``) compute the ANN the rates are
    compared with, where the simulated biases were corrected (:func:`correct_biases`)."""

    def __init__(self, stacks: list[nn.Sequential], activations: list[nn.Module], pools: list[nn.MaxPool2d | None],
                 scales: list[float], options: ConversionOptions, input_shape: tuple[int, ...],
                 analog_stacks: list[nn.Sequential] | None = None):
        super().__init__()
        self.stacks = nn.ModuleList(stacks)
        self.analog_stacks = nn.ModuleList(stacks if analog_stacks is None else analog_stacks)
        self.activations = nn.ModuleList(activations)  # the ANN's, in units of each layer's scale
        self.pools = pools
        self.scales = scales
        self.options = options
        self.input_shape = input_shape
        with torch.no_grad():
            activations = self.analog(torch.zeros(1, *input_shape))[0]
        self.layer_shapes = [tuple(activation.shape[1:]) for activation in activations]
        stack_inputs = [input_shape] + [tuple((pool(a) if pool is not None else a).shape[1:])
                                        for a, pool in zip(activations, pools, strict=True)]
        for layer, (stack, shape) in enumerate(zip(stacks, stack_inputs, strict=True)):  # to count synaptic events
            self.register_buffer(f"fan_out_{layer}", fan_out(stack, shape))
        widest = max(torch.Size(shape).numel() for shape in self.layer_shapes)
        # images simulated together: a layer's state for all of them stays cache-sized (measured: a
        # 1200-neuron layer runs 2.3x faster in groups of 250 images than of 500)
        self.micro_batch = max(8, MICRO_BATCH_NEURONS // widest)

    def forward(self, images: torch.Tensor, steps: int = 32) -> torch.Tensor:
        return self.run(images, steps).evidence

    def describe(self, steps: int) -> str:
        """The method and its settings in a few words, for tables."""
        return (f"IF conversion, T = {steps}, {self.options.percentile:g}th-percentile scales, "
                f"{self.options.input_coding} input")

    def equivalence(self, images: torch.Tensor, labels: torch.Tensor, steps_list: list[int], progress=None
                    ) -> EquivalenceReport:
        """The firing-rate equivalence on ``images`` at every T (:func:`bridges.equivalence.measure`)."""
        from bridges.equivalence import measure

        return measure(self, images, labels, steps_list, progress=progress)

    @torch.no_grad()
    def analog(self, images: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """The ANN itself, computed with the rescaled weights: each spiking layer's activation in
        units of its scale (what its spike rate should equal) and the logits."""
        activations, signal = [], images
        for stack, activation, pool in zip(self.analog_stacks[:-1], self.activations, self.pools, strict=True):
            signal = activation(stack(signal))
            activations.append(signal)
            signal = pool(signal) if pool is not None else signal
        return activations, self.analog_stacks[-1](signal)

    @torch.no_grad()
    def run(self, images: torch.Tensor, steps: int, time_chunk: int = 16, generator: torch.Generator | None = None
            ) -> SpikingRun:
        """Simulate ``steps`` time steps of a batch, ``micro_batch`` images and ``time_chunk`` steps
        at a time (layer by layer within a chunk: one call per layer and chunk)."""
        self._check_input(images, steps)
        layers = [spiking_layer(stack, pool) for stack, pool in zip(self.stacks[:-1], self.pools, strict=True)]
        groups = [self._simulate(group, steps, time_chunk, generator, layers)
                  for group in images.split(self.micro_batch)]
        poisson = self.options.input_coding == "poisson"
        return SpikingRun(
            evidence=torch.cat([evidence for evidence, _, _ in groups]),
            spike_counts=[torch.cat(layer) for layer in zip(*(counts for _, counts, _ in groups), strict=True)],
            steps=steps,
            synaptic_ops=torch.cat([ops for _, _, ops in groups]),
            # constant current: the first layer's multiply-accumulates, done once per image
            input_ops=0.0 if poisson else float(self.fan_outs[0].sum()),
        )

    def _simulate(self, images: torch.Tensor, steps: int, time_chunk: int, generator: torch.Generator | None,
                  layers: list[LayerStep]) -> tuple[torch.Tensor, list[torch.Tensor], torch.Tensor]:
        """Evidence, spike counts per layer and synaptic events of one group of images."""
        batch, poisson = images.shape[0], self.options.input_coding == "poisson"
        first_current = None if poisson else _kernel_layout(self.stacks[0](images))  # constant input: computed once
        v_init = self.options.v_init
        membranes = [_kernel_layout(images.new_full((batch, *shape), v_init)) for shape in self.layer_shapes]
        counts = [_kernel_layout(images.new_zeros((batch, *shape))) for shape in self.layer_shapes]
        passed = [None] * len(layers)  # spikes that passed each layer's max-pool gate
        input_spikes = torch.zeros_like(images)
        for start in range(0, steps, time_chunk):
            chunk = min(time_chunk, steps - start)
            if poisson:
                spikes = poisson_spikes(images, chunk, generator)
                input_spikes += spikes.sum(0)
            for layer, spiking in enumerate(layers):
                if layer == 0 and not poisson:  # constant current: spikes in closed form
                    spikes = integrate_and_fire_constant(first_current, self.options.v_init, start, chunk)
                    spikes, counts[0] = count_and_gate(spikes, counts[0], gate_of(self.pools[0]))
                else:
                    spikes, counts[layer], membranes[layer] = spiking(spikes, membranes[layer], counts[layer])
                if self.pools[layer] is None:
                    passed[layer] = counts[layer]
                else:
                    passed_now = sum_over_steps(spikes)
                    passed[layer] = passed_now if passed[layer] is None else passed[layer] + passed_now
        # the output only integrates: the mean of its input currents is its (linear) stack applied to the mean spikes
        evidence = self.stacks[-1](passed[-1] / steps)
        synaptic_ops = sum(synaptic_events(fan, spikes) for fan, spikes in zip(self.fan_outs[1:], passed, strict=True))
        if poisson:
            synaptic_ops = synaptic_ops + synaptic_events(self.fan_outs[0], input_spikes)
        return evidence, counts, synaptic_ops

    def _check_input(self, images: torch.Tensor, steps: int) -> None:
        if steps < 1:
            raise ConversionError(f"steps must be >= 1, got {steps}")
        if tuple(images.shape[1:]) != self.input_shape:
            raise ConversionError(f"input shape {tuple(images.shape[1:])} does not fit the network; "
                                  f"expected [batch, {', '.join(map(str, self.input_shape))}]")
        if not torch.isfinite(images).all():
            raise ConversionError("the input contains NaN or infinite values")
        if self.options.input_coding == "poisson" and (images.min() < 0 or images.max() > 1):
            raise ConversionError("Poisson input needs pixel values in [0, 1] (they are spike probabilities per step)")

    @property
    def fan_outs(self) -> list[torch.Tensor]:
        """Per stack: the fan-out of each of its input neurons (:func:`fan_out`)."""
        return [getattr(self, f"fan_out_{layer}") for layer in range(len(self.stacks))]

    def ann_macs(self) -> float:
        """Multiply-accumulates of the ANN per image: every connection of every affine layer."""
        return sum(float(fan.sum()) for fan in self.fan_outs)


def _kernel_layout(tensor: torch.Tensor) -> torch.Tensor:
    """A convolutional layer's ``[N, C, H, W]`` tensor in channels-last memory, the layout the
    compiled kernels read and write (other tensors as they are)."""
    return tensor.contiguous(memory_format=torch.channels_last) if tensor.dim() == 4 else tensor


@torch.no_grad()
def correct_biases(snn: SpikingNetwork, calibration: torch.Tensor, steps: int) -> SpikingNetwork:
    """A copy of ``snn`` whose spiking layers' biases are corrected for ``steps``-step simulations.

    Bias correction of Li et al. (2021, "A free lunch from ANN: towards efficient, accurate spiking
    neural networks calibration"), layer by layer from the first: b_l <- b_l + E[min(a_l, 1) - r_l],
    with a_l the ANN's activation in units of the layer's scale and r_l the spike rate after
    ``steps`` steps, the mean taken over the calibration inputs (and the positions of a channel),
    and r_l measured with the layers below already corrected. The ANN (``analog``) stays as it was.
    """
    targets = [activation.clamp(max=1.0) for activation in snn.analog(calibration)[0]]
    corrected = SpikingNetwork([copy.deepcopy(stack) for stack in snn.stacks], list(snn.activations), snn.pools,
                               snn.scales, snn.options, snn.input_shape, analog_stacks=list(snn.analog_stacks))
    for layer, target in enumerate(targets):
        rate = corrected.run(calibration, steps).spike_counts[layer] / steps
        error = (target - rate).mean((0, *range(2, target.dim())))  # over images and a channel's positions
        affine = [op for op in corrected.stacks[layer] if isinstance(op, AFFINE)][-1]
        affine.bias = nn.Parameter(error if affine.bias is None else affine.bias + error)
    return corrected


def convert(ann: nn.Module, calibration_inputs: torch.Tensor, **options) -> nn.Module:
    """A spiking network computing what the ReLU network ``ann`` computes, in spike counts.

    ``calibration_inputs`` (a few hundred training images) set each layer's scale; ``options``
    are the fields of :class:`ConversionOptions`. A log network (Thériault & François 2021) converts to
    Weber-Fechner coding instead, with the options of :class:`bridges.log_coding.LogCodingOptions`.
    """
    if not isinstance(calibration_inputs, torch.Tensor) or calibration_inputs.dim() < 2:
        raise ConversionError("calibration_inputs must be a tensor [batch, ...] of example inputs")
    if isinstance(ann, LogNetwork):
        from bridges.log_coding import LogCodingOptions, convert_log_network

        check_option_names(LogCodingOptions, options)
        return convert_log_network(ann, calibration_inputs, **options)
    check_option_names(ConversionOptions, options)
    settings = ConversionOptions(**options)
    ann = copy.deepcopy(ann).eval().float()
    blocks = group_blocks(trace(ann))
    calibration = calibration_inputs.float()
    try:
        with torch.no_grad():
            ann(calibration[:1])
    except RuntimeError as exc:
        raise ConversionError(f"calibration inputs of shape {tuple(calibration.shape[1:])} do not fit the network "
                              f"({str(exc).splitlines()[0]})") from None
    scales = layer_scales(blocks, calibration, settings)
    scales_in = [1.0] + scales
    scales_out = scales + [1.0]  # the output layer keeps the logits' scale
    stacks = [_rescaled(block.ops, scale_in, scale_out)
              for block, scale_in, scale_out in zip(blocks, scales_in, scales_out, strict=True)]
    activations = [_normalised(block.activation) for block in blocks[:-1]]
    pools = [block.maxpool for block in blocks[:-1]]
    snn = SpikingNetwork(stacks, activations, pools, scales, settings, tuple(calibration.shape[1:]))
    if settings.bias_correction_steps is not None:
        snn = correct_biases(snn, calibration, settings.bias_correction_steps)
    return snn


def conversion_options(ann: nn.Module, options: ConversionOptions) -> dict:
    """The fields of ``options`` that :func:`convert` takes for ``ann``: all of them for a ReLU
    network; the input coding alone for a log network (its coding parameters keep the defaults
    of :class:`bridges.log_coding.LogCodingOptions`)."""
    if isinstance(ann, LogNetwork):
        return {"input_coding": options.input_coding}
    return asdict(options)


def _normalised(activation: nn.Module) -> nn.Module:
    """The activation in units of its layer's scale (QCFS with threshold 1; ReLU is scale-free)."""
    return QCFS(activation.levels, threshold=1.0) if isinstance(activation, QCFS) else nn.ReLU()
