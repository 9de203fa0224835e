"""Training speed of the surrogate-gradient spiking MLP and CNN: this project against the plain
snntorch loop and SpikingJelly's multi-step mode.

The same networks, ``snn-mlp`` (784-1200-1200-10) and ``snn-cnn`` (the Gupta & Naveed CNN) with
LIF neurons in place of every ReLU and as outputs (decay 0.9 per step, threshold 1, reset by
subtraction, atan surrogate), T steps of constant-current input, trained on MNIST with Adam and
snntorch's ``ce_rate_loss`` at the same batch size and threads, three ways, each from the same
initial weights:

- this project: ``spikebridge.models.build``, multi-step (each layer's input for all T steps in
  one call, the first layer's once);
- the plain snntorch loop of its tutorials (:class:`spiking.snntorch_reference.PlainSnntorchLoop`):
  every layer and ``snn.Leaky`` called once per step;
- SpikingJelly 2.0 (``make install-peers``): the same layers in ``layer.SeqToANNContainer`` and
  ``neuron.LIFNode`` in multi-step mode (``step_mode="m"``; tau = 10 without input decay is the
  same decay 0.9, the reset detached as in snntorch).

Per model, each way trains ``--batches`` batches after ``--warm-up`` batches, alternating,
``--repeats`` times; the medians of images per second are reported, with the ratio to the plain
snntorch loop. Then each way trains ``--epochs`` epochs on the first training images from the
same seed and is tested on the first 2,000 test images (spike count readout), so that speeds are
compared at equal accuracy; the warm-up batches, profiled, say where a step's time goes (synaptic
layers, surrogate backward, the rest).

    python benchmarks/surrogate.py [--models mlp cnn] [--output benchmarks/results/surrogate_speed.json]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from snntorch import functional
from torch import nn

from idx_datasets import load
from spikebridge import models
from spikebridge.records import make_record, provenance, write_record
from spikebridge.training import as_tensors
from spiking.snntorch_reference import PlainSnntorchLoop
from spiking.surrogate_models import SpikingFeedForward

BETA = 0.9


class SpikingJellyNetwork(nn.Module):
    """SpikingJelly's multi-step mode over the layers of ``network``: each stack in a
    ``SeqToANNContainer`` (all T steps in one call), then ``LIFNode`` layers over all T steps."""

    def __init__(self, network: SpikingFeedForward):
        super().__init__()
        from spikingjelly.activation_based import layer, neuron
        from spikingjelly.activation_based import surrogate as sj_surrogate

        self.steps = network.config.steps
        parts = []
        for stack, gate in zip(network.stacks, [*network.pools, nn.Identity()], strict=True):
            parts += [layer.SeqToANNContainer(stack),
                      neuron.LIFNode(tau=1 / (1 - BETA), decay_input=False, v_reset=None, step_mode="m",
                                     surrogate_function=sj_surrogate.ATan(), detach_reset=True)]
            if not isinstance(gate, nn.Identity):
                parts.append(layer.SeqToANNContainer(gate))
        self.network = nn.Sequential(*parts)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        from spikingjelly.activation_based import functional as sj_functional

        sj_functional.reset_net(self.network)
        return self.network(images.unsqueeze(0).repeat(self.steps, *[1] * images.dim()))


def ways(model: str, steps: int) -> dict[str, Callable[[], nn.Module]]:
    """The ways of training ``snn-<model>``, each building its network afresh (same seed, same weights)."""

    def this_project() -> nn.Module:
        return models.build(f"snn-{model}", {"steps": steps, "beta": BETA})

    found = {"this project (multi-step)": this_project,
             "plain snntorch loop": lambda: PlainSnntorchLoop(this_project())}
    try:
        import spikingjelly  # noqa: F401

        found["SpikingJelly multi-step"] = lambda: SpikingJellyNetwork(this_project())
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
        synaptic = name.startswith("aten::") and (name.endswith("mm") or "convolution" in name)
        group = ("synaptic layers" if synaptic
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


def measure(model: str, args: argparse.Namespace, data: tuple[torch.Tensor, ...]) -> dict:
    """Speed, time shares and accuracy of every way of training ``snn-<model>``."""
    train_x, train_y, test_x, test_y = data
    batches, train_images = (args.cnn_batches, args.cnn_train_images) if model == "cnn" \
        else (args.batches, args.train_images)
    timed, warm = args.batch_size * batches, args.batch_size * args.warm_up
    builders = ways(model, args.steps)
    speeds: dict[str, list[float]] = {}
    for _ in range(args.repeats):
        for way, build in builders.items():
            torch.manual_seed(args.seed)
            network = build()
            train_batches(network, train_x[:warm], train_y[:warm], args.batch_size)
            clock = time.perf_counter()
            train_batches(network, train_x[warm:warm + timed], train_y[warm:warm + timed], args.batch_size)
            speeds.setdefault(way, []).append(timed / (time.perf_counter() - clock))
            print(f"{model}, {way}: {speeds[way][-1]:.1f} images/s", flush=True)
    rows = {way: {"images_per_second": statistics.median(found), "trials": found} for way, found in speeds.items()}
    plain = rows["plain snntorch loop"]["images_per_second"]
    for way, row in rows.items():
        row["over_plain_snntorch"] = row["images_per_second"] / plain
        torch.manual_seed(args.seed)
        row["time_shares"] = time_shares(builders[way](), train_x[:warm], train_y[:warm], args.batch_size)
        torch.manual_seed(args.seed)
        network = builders[way]()
        clock = time.perf_counter()
        for _ in range(args.epochs):
            train_batches(network, train_x[:train_images], train_y[:train_images], args.batch_size)
        row["training_seconds"] = time.perf_counter() - clock
        row["test_accuracy"] = test_accuracy(network, test_x, test_y)
    return {"batches": batches, "train_images": train_images, "rows": rows,
            "architecture": repr(models.make_config(f"snn-{model}", {"steps": args.steps, "beta": BETA}))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", choices=["mlp", "cnn"], default=["mlp", "cnn"])
    parser.add_argument("--steps", type=int, default=8, help="time steps T")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--batches", type=int, default=20, help="timed batches per trial (MLP)")
    parser.add_argument("--cnn-batches", type=int, default=4, help="timed batches per trial (CNN)")
    parser.add_argument("--warm-up", type=int, default=2, help="untimed batches before each trial")
    parser.add_argument("--repeats", type=int, default=3, help="trials of each way, alternating; medians reported")
    parser.add_argument("--epochs", type=int, default=1, help="epochs of the accuracy comparison")
    parser.add_argument("--train-images", type=int, default=10_000, help="training images of the MLP's accuracy")
    parser.add_argument("--cnn-train-images", type=int, default=2_000, help="training images of the CNN's accuracy")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch threads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default="benchmarks/results/surrogate_speed.json", help="the results record")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started = provenance(seeds={"weights": args.seed})
    train_x, train_y = as_tensors(load("mnist", "train").head(max(args.train_images, args.cnn_train_images)))
    test_x, test_y = as_tensors(load("mnist", "test").head(2_000))
    results = {model: measure(model, args, (train_x, train_y, test_x, test_y)) for model in args.models}

    for model, result in results.items():
        rows = result["rows"]
        print(f"\n{model}: | way | training images/s (median of {args.repeats}) | × plain snntorch | test accuracy | "
              "training s | " + " | ".join(next(iter(rows.values()))["time_shares"]) + " |")
        for way, row in rows.items():
            shares = " | ".join(f"{100 * share:.0f} %" for share in row["time_shares"].values())
            print(f"| {way} | {row['images_per_second']:.1f} | {row['over_plain_snntorch']:.2f} | "
                  f"{100 * row['test_accuracy']:.2f} % | {row['training_seconds']:.0f} | {shares} |")
    settings = {key: value for key, value in vars(args).items() if key != "output"}
    record = make_record({"settings": settings, "beta": BETA, "models": results}, started)
    print(f"wrote {write_record(args.output, record)}")


if __name__ == "__main__":
    main()
