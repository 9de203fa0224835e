"""The neural mesh of Papakipos & Beck, "Neural Mesh: Introducing a Notion of Space and
Conservation of Energy to Neural Nets".

The state s is an H×W grid per image that wraps around (a torus). An input layer F (784 → H·W)
puts the image's energy into it; each step, every neuron with positive energy fires to its four
neighbours with a learned weight per neuron and direction, W_u, W_d, W_l, W_r, |W| ≤ 1::

    f    = relu(s)                                      only positive energy fires (threshold 0)
    D(s) = Σ_dir |W_dir| · f / 4                        what each sender gives up (decrement)
    I(s) = Σ_dir M_dir (W_dir · f / 4)                  what the neighbours receive (increment);
                                                        M_dir shifts the grid one cell that way
    s   ← s − D(s) + I(s)

The paper writes D and I with the same formula; this is the reading its text gives (the sender
gives up what it sends, so with |W| ≤ 1 a neuron never sends more than it holds). Positive
weights move energy, negative ones spend the sender's energy to lower the receiver's
(inhibition), so Σ s is conserved by a step when every W ≥ 0 and never rises otherwise. The
paper's four options are settings: the image added every step or only at the first
(``input_every_step``), ReLU on the state before each step (``relu_each_step``), a bias on F
(``input_bias``), the state clipped to [−1, 1] after each step (``clip``). Its best: input once,
no ReLU, no bias, clip. After ``window`` steps a linear readout maps the state to 10 classes.

With every mesh weight 0 the mesh is the one-layer net x → readout(a(F x)), a = the clip or the
ReLU it applies (or none): :func:`build_one_layer` builds that net, the paper's baseline.

Deviations: the paper gives no initialisation; the direction weights start uniform in
[−``init_scale``, ``init_scale``] and are kept in [−1, 1] by clamping after every optimiser step
(``constrain_``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from rate_models.baselines import CLASSES, IMAGE_SIDE

DIRECTIONS = ("up", "down", "left", "right")
# torch.roll (shift, grid dimension) that carries a cell's value to its neighbour in each direction
NEIGHBOUR_SHIFTS = ((-1, -2), (1, -2), (-1, -1), (1, -1))
ONE_LAYER_ACTIVATIONS = ("clip", "relu", "none")


def grid_shape(neurons: int, width: int | None) -> tuple[int, int]:
    """(height, width) of a grid of ``neurons`` cells: square when ``width`` is None."""
    if width is None:
        side = math.isqrt(neurons)
        if side * side != neurons:
            raise ValueError(f"{neurons} neurons make no square grid; give the width")
        return side, side
    if width < 1 or neurons % width:
        raise ValueError(f"a grid of {neurons} neurons cannot be {width} wide")
    return neurons // width, width


def neighbour_sources(height: int, width: int) -> torch.Tensor:
    """For each direction k of :data:`DIRECTIONS` and cell n (row-major), the index k·N + m of
    what cell m sends to its neighbour n that way; then, as a fifth block, n·1 + 4N: the cell
    itself, whose decrement is its fifth coefficient. ``[5 N]``, for :func:`exchange`."""
    cells = torch.arange(height * width).view(height, width)
    blocks = [torch.roll(cells, shift, dim).flatten() for shift, dim in NEIGHBOUR_SHIFTS] + [cells.flatten()]
    return torch.cat([block + index * cells.numel() for index, block in enumerate(blocks)])


def transfer_coefficients(weights: torch.Tensor) -> torch.Tensor:
    """``[5, N]`` from the direction weights ``[4, H, W]``: W_dir / 4 (the increment each sender's
    unit of firing energy gives the neighbour that way) and −Σ_dir |W_dir| / 4 (its decrement)."""
    flat = weights.flatten(1) / 4
    return torch.cat([flat, -flat.abs().sum(0, keepdim=True)])


def exchange(firing: torch.Tensor, coefficients: torch.Tensor, sources: torch.Tensor) -> torch.Tensor:
    """I − D of the firing energies ``firing [B, N]`` (≥ 0): what every cell receives from its
    four neighbours less what it sends, ``[B, N]``. One gather of the five terms per cell (the
    same as rolling the grid four ways, and faster)."""
    terms = (firing.unsqueeze(1) * coefficients).flatten(1).index_select(1, sources)
    return terms.view(*firing.shape[:1], len(DIRECTIONS) + 1, -1).sum(1)


def mesh_step(state: torch.Tensor, coefficients: torch.Tensor, sources: torch.Tensor, relu_each_step: bool,
              clip: bool) -> torch.Tensor:
    """One step of the mesh on flat grids ``state [B, N]``: s ← s − D(s) + I(s), with the paper's
    ReLU before and clip after when chosen."""
    if relu_each_step:
        state = torch.relu(state)
    state = state + exchange(torch.relu(state), coefficients, sources)
    return state.clamp(-1, 1) if clip else state


def run_mesh(drive: torch.Tensor, weights: torch.Tensor, window: int, input_every_step: bool,
             relu_each_step: bool, clip: bool, sources: torch.Tensor | None = None) -> torch.Tensor:
    """The states ``[window, B, H, W]`` after each step, from rest, the input layer's output
    ``drive [B, H, W]`` added before the first step (and before every step if ``input_every_step``);
    ``sources``: :func:`neighbour_sources` of the grid, made here if not given."""
    coefficients = transfer_coefficients(weights)
    if sources is None:
        sources = neighbour_sources(*weights.shape[1:])
    drive = drive.flatten(1)
    state, states = torch.zeros_like(drive), []
    for step in range(window):
        if step == 0 or input_every_step:
            state = state + drive
        state = mesh_step(state, coefficients, sources, relu_each_step, clip)
        states.append(state)
    return torch.stack(states).unflatten(2, weights.shape[1:])


def direction_weights(grid: tuple[int, int], init_scale: float) -> nn.Parameter:
    """The learned weights ``[4, H, W]`` of every neuron and direction, uniform in [−init_scale, init_scale]."""
    return nn.Parameter(torch.empty(len(DIRECTIONS), *grid).uniform_(-init_scale, init_scale))


def energy(states: torch.Tensor) -> torch.Tensor:
    """Total energy Σ s of each grid: ``[..., H, W] -> [...]`` (inhibited neurons count negative)."""
    return states.sum((-2, -1))


def firing_energy(states: torch.Tensor) -> torch.Tensor:
    """The energy that can fire, Σ relu(s), of each grid (what the paper's Figs 8-9 show: black is
    0 or less): ``[..., H, W] -> [...]``."""
    return torch.relu(states).sum((-2, -1))


@dataclass(frozen=True)
class MeshConfig:
    """A neural mesh of ``neurons`` cells (a square grid, or ``width`` wide), run for ``window``
    steps per image, with the paper's four options (their best are the defaults)."""

    neurons: int = 100
    width: int | None = None
    window: int = 10
    input_every_step: bool = False
    relu_each_step: bool = False
    input_bias: bool = False
    clip: bool = True
    init_scale: float = 1.0

    def __post_init__(self):
        grid_shape(self.neurons, self.width)
        if self.window < 1 or not 0 <= self.init_scale <= 1:
            raise ValueError(f"window must be >= 1 and init_scale in [0, 1], got {self.window}, {self.init_scale}")


class NeuralMesh(nn.Module):
    """The neural mesh (see the module docstring): F, the direction weights and the readout."""

    def __init__(self, config: MeshConfig = MeshConfig()):
        super().__init__()
        self.config = config
        self.grid = grid_shape(config.neurons, config.width)
        self.input = nn.Linear(IMAGE_SIDE * IMAGE_SIDE, config.neurons, bias=config.input_bias)
        self.weights = direction_weights(self.grid, config.init_scale)
        self.readout = nn.Linear(config.neurons, CLASSES)
        self.register_buffer("sources", neighbour_sources(*self.grid), persistent=False)  # once, not per call

    def states(self, images: torch.Tensor) -> torch.Tensor:
        """The mesh's states ``[window, B, H, W]`` after each step."""
        config = self.config
        drive = self.input(images.flatten(1)).unflatten(1, self.grid)
        return run_mesh(drive, self.weights, config.window, config.input_every_step, config.relu_each_step,
                        config.clip, self.sources)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.readout(self.states(images)[-1].flatten(1))

    @torch.no_grad()
    def constrain_(self) -> None:
        """|W_dir| ≤ 1: no neuron sends more than it holds."""
        self.weights.clamp_(-1, 1)


@dataclass(frozen=True)
class OneLayerConfig:
    """One hidden layer of ``neurons`` with ``activation`` (clip: to [−1, 1]; relu; none), the
    net a neural mesh with zero weights computes."""

    neurons: int = MeshConfig.neurons
    activation: str = "clip"
    input_bias: bool = MeshConfig.input_bias

    def __post_init__(self):
        if self.activation not in ONE_LAYER_ACTIVATIONS:
            raise ValueError(f"activation must be one of {ONE_LAYER_ACTIVATIONS}, got {self.activation!r}")


def build_one_layer(config: OneLayerConfig = OneLayerConfig()) -> nn.Sequential:
    """Flatten, Linear 784 → neurons, the activation, Linear neurons → 10."""
    activation = {"clip": nn.Hardtanh(), "relu": nn.ReLU(), "none": nn.Identity()}[config.activation]
    return nn.Sequential(nn.Flatten(), nn.Linear(IMAGE_SIDE * IMAGE_SIDE, config.neurons, bias=config.input_bias),
                         activation, nn.Linear(config.neurons, CLASSES))
