"""Training speed of the surrogate-gradient spiking MLP: this project against the plain snntorch
loop and SpikingJelly's multi-step mode.

The same network, MLP 784-1200-1200-10 with LIF neurons after every layer (decay 0.9 per step,
threshold 1, reset by subtraction, atan surrogate), T steps of constant-current input, trained
on MNIST with Adam and snntorch's ``ce_rate_loss`` at the same batch size and threads, three ways:

- this project: ``spikebridge.models.build("snn-mlp")``, multi-step (each layer's input for all
  T steps in one call, the first layer's once);
- the plain snntorch loop of its tutorials: every Linear and ``snn.Leaky`` called once per step;
- SpikingJelly 2.0 (``make install-peers``): ``layer.Linear`` and ``neuron.LIFNode`` in multi-step
  mode (``step_mode="m"``; tau = 10 without input decay is the same decay 0.9, the reset detached
  as in snntorch).

Each way trains ``--batches`` batches after ``--warm-up`` batches, alternating, ``--repeats``
times; the medians of images per second are reported, with the ratio to the plain snntorch loop.
Then each way trains ``--epochs`` epochs on the first ``--train-images`` training images from
the same seed and is tested on the first 2,000 test images (spike count readout), so that speeds
are compared at equal accuracy; the warm-up batches, profiled, say where a step's time goes
(synaptic layers, surrogate backward, the rest).

    python benchmarks/surrogate.py [--output benchmarks/results/surrogate_speed.json]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import snntorch as snn
import torch
from snntorch import functional, surrogate
from torch import nn

from idx_datasets import load
from spikebridge import models
from spikebridge.records import make_record, provenance, write_record
from spikebridge.training import as_tensors
from spiking.surrogate_models import SpikingMLPConfig

WIDTHS = SpikingMLPConfig.widths
BETA = 0.9


class PlainSnntorchMLP(nn.Module):
    """The snntorch tutorials' loop: every layer called once per step."""

    def __init__(self, steps: int):
        super().__init__()
        self.steps = steps
        self.linears = nn.ModuleList(nn.Linear(n_in, n_out) for n_in, n_out in zip(WIDTHS, WIDTHS[1:], strict=False))
        self.neurons = nn.ModuleList(snn.Leaky(beta=BETA, spike_grad=surrogate.atan()) for _ in self.linears)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        pixels, membranes, outputs = images.flatten(1), [n.init_leaky() for n in self.neurons], []
        for _ in range(self.steps):
            signal = pixels
            for index, (linear, neurons) in enumerate(zip(self.linears, self.neurons, strict=True)):
                signal, membranes[index] = neurons(linear(signal), membranes[index])
            outputs.append(signal)
        return torch.stack(outputs)


class SpikingJellyMLP(nn.Module):
    """SpikingJelly's multi-step mode: Linear and LIFNode layers over all T steps at once."""

    def __init__(self, steps: int):
        super().__init__()
        from spikingjelly.activation_based import layer, neuron
        from spikingjelly.activation_based import surrogate as sj_surrogate

        self.steps = steps
        parts = []
        for n_in, n_out in zip(WIDTHS, WIDTHS[1:], strict=False):
            parts += [layer.Linear(n_in, n_out, step_mode="m"),
                      neuron.LIFNode(tau=1 / (1 - BETA), decay_input=False, v_reset=None, step_mode="m",
                                     surrogate_function=sj_surrogate.ATan(), detach_reset=True)]
        self.network = nn.Sequential(*parts)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        from spikingjelly.activation_based import functional as sj_functional

        sj_functional.reset_net(self.network)
        return self.network(images.flatten(1).unsqueeze(0).repeat(self.steps, 1, 1))


def this_project(steps: int) -> nn.Module:
    return models.build("snn-mlp", {"steps": steps, "beta": BETA})


def ways() -> dict[str, Callable[[int], nn.Module]]:
    found = {"this project (multi-step)": this_project, "plain snntorch loop": PlainSnntorchMLP}
    try:
        import spikingjelly  # noqa: F401

        found["SpikingJelly multi-step"] = SpikingJellyMLP
    except ImportError:
        print("SpikingJelly is not installed (make install-peers): its row is skipped")
    return found


def train_batches(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int) -> None:
    """Adam steps with ce_rate_loss over ``images`` in batches of ``batch_size``."""
    optimiser = torch.optim.Adam(model.parameters(), lr=5e-4)
    loss_function = functional.ce_rate_loss()
    model.train()
    for start in range(0, len(images), batch_size):
        loss = loss_function(model(images[start:start + batch_size]), labels[start:start + batch_size])
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()


def time_shares(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int) -> dict[str, float]:
    """Where a training step's time goes (``torch.profiler``, self CPU time of each operation): the
    synaptic layers' matrix products (forward and backward), the surrogate's backward, and the rest
    (the neuron recurrence, the loss, the optimiser)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as profiler:
        train_batches(model, images, labels, batch_size)
    totals = {"synaptic layers": 0.0, "surrogate backward": 0.0, "neuron recurrence, loss, optimiser": 0.0}
    for event in profiler.key_averages():
        name = event.key.lower()
        group = ("synaptic layers" if name.startswith("aten::") and name.endswith("mm")
                 else "surrogate backward" if "atan" in name and "backward" in name
                 else "neuron recurrence, loss, optimiser")
        totals[group] += event.self_cpu_time_total
    whole = sum(totals.values())
    return {group: time / whole for group, time in totals.items()}


@torch.no_grad()
def test_accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    model.eval()
    counts = torch.cat([model(images[start:start + 500]).sum(0) for start in range(0, len(images), 500)])
    return float((counts.argmax(1) == labels).float().mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=8, help="time steps T")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--batches", type=int, default=20, help="timed batches per trial")
    parser.add_argument("--warm-up", type=int, default=3, help="untimed batches before each trial")
    parser.add_argument("--repeats", type=int, default=3, help="trials of each way, alternating; medians reported")
    parser.add_argument("--epochs", type=int, default=1, help="epochs of the accuracy comparison")
    parser.add_argument("--train-images", type=int, default=10_000, help="training images of the accuracy comparison")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch threads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default="benchmarks/results/surrogate_speed.json", help="the results record")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started = provenance(seeds={"weights": args.seed})
    train_x, train_y = as_tensors(load("mnist", "train").head(args.train_images))
    test_x, test_y = as_tensors(load("mnist", "test").head(2_000))
    timed = args.batch_size * args.batches
    warm = args.batch_size * args.warm_up

    speeds: dict[str, list[float]] = {}
    for _ in range(args.repeats):
        for way, build in ways().items():
            torch.manual_seed(args.seed)
            model = build(args.steps)
            train_batches(model, train_x[:warm], train_y[:warm], args.batch_size)
            clock = time.perf_counter()
            train_batches(model, train_x[warm:warm + timed], train_y[warm:warm + timed], args.batch_size)
            speeds.setdefault(way, []).append(timed / (time.perf_counter() - clock))
    rows = {way: {"images_per_second": statistics.median(found), "trials": found} for way, found in speeds.items()}
    plain = rows["plain snntorch loop"]["images_per_second"]
    for way, row in rows.items():
        row["over_plain_snntorch"] = row["images_per_second"] / plain
        row["time_shares"] = time_shares(ways()[way](args.steps), train_x[:warm], train_y[:warm], args.batch_size)
        torch.manual_seed(args.seed)
        model = ways()[way](args.steps)
        clock = time.perf_counter()
        for _ in range(args.epochs):
            train_batches(model, train_x, train_y, args.batch_size)
        row["training_seconds"] = time.perf_counter() - clock
        row["test_accuracy"] = test_accuracy(model, test_x, test_y)

    print(f"| way | training images/s (median of {args.repeats}) | × plain snntorch | test accuracy | training s | "
          + " | ".join(next(iter(rows.values()))["time_shares"]) + " |")
    print("| --- |" + " ---: |" * 7)
    for way, row in rows.items():
        shares = " | ".join(f"{100 * share:.0f} %" for share in row["time_shares"].values())
        print(f"| {way} | {row['images_per_second']:.0f} | {row['over_plain_snntorch']:.2f} | "
              f"{100 * row['test_accuracy']:.2f} % | {row['training_seconds']:.0f} | {shares} |")
    settings = {key: value for key, value in vars(args).items() if key != "output"}
    record = make_record({"settings": settings, "widths": list(WIDTHS), "beta": BETA, "rows": rows}, started)
    print(f"wrote {write_record(args.output, record)}")


if __name__ == "__main__":
    main()
