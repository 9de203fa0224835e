"""Training step time of Shader's ``PositionalLinear`` against ``nn.Linear`` of the same size, in one run.

For every layer of the network [784, 112, 56, 50, 50, 50, 10] (and the whole network, positional
against its plain twin), forward and backward on a batch of ``--batch-size`` plus an Adam step,
one way after the other, ``--repeats`` times; medians of the mean over ``--calls`` calls. The
positional layer recomputes its squared distances and effective weights b(d²)·w in every call,
with trainable target positions (the hidden layers'). The share of the positional step spent on
the distances and the falloff is measured apart, so one sees whether they are the bottleneck.
Target: at most 1.5 times ``nn.Linear`` on 2 cores.

    python benchmarks/positional.py [--output benchmarks/results/positional_speed.json]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
from torch import nn

from rate_models.positional import FALLOFFS, PositionalConfig, PositionalLinear, PositionalNetwork, VanillaConfig
from rate_models.positions import squared_distances
from spikebridge.records import make_record, provenance, write_record

RESULTS = Path(__file__).parent / "results" / "positional_speed.json"


def seconds_per_call(call, calls: int) -> float:
    started = time.perf_counter()
    for _ in range(calls):
        call()
    return (time.perf_counter() - started) / calls


def training_step(module: nn.Module, inputs: torch.Tensor, forward) -> callable:
    optimiser = torch.optim.Adam(module.parameters(), lr=1e-3)

    def step():
        loss = forward(inputs).square().mean()
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()

    step()  # warm-up
    return step


def layer_ways(fan_in: int, fan_out: int, batch: int) -> dict[str, callable]:
    torch.manual_seed(0)
    inputs = torch.randn(batch, fan_in)
    sources = torch.randn(fan_in, 2)  # fixed (a buffer's role)
    targets = nn.Parameter(torch.randn(fan_out, 2))
    positional = PositionalLinear(fan_in, fan_out)
    positional.register_parameter("targets", targets)
    linear = nn.Linear(fan_in, fan_out)
    distances_only = nn.ParameterList([targets])

    def distances_and_falloff(_):
        return FALLOFFS["inverse_square"](squared_distances(distances_only[0], sources))

    return {
        "nn.Linear": training_step(linear, inputs, linear),
        "PositionalLinear": training_step(positional, inputs,
                                          lambda x: positional(x, squared_distances(targets, sources))),
        "distances and falloff alone": training_step(distances_only, inputs, distances_and_falloff),
    }


def network_ways(batch: int) -> dict[str, callable]:
    torch.manual_seed(0)
    images = torch.rand(batch, 1, 28, 28)
    vanilla, positional = PositionalNetwork(VanillaConfig()), PositionalNetwork(PositionalConfig(regulariser="none"))
    return {"nn.Linear": training_step(vanilla, images, vanilla),
            "PositionalLinear": training_step(positional, images, positional)}


def measure(ways: dict[str, callable], calls: int, repeats: int) -> dict[str, float]:
    timings = {name: [] for name in ways}
    for _ in range(repeats):  # alternating, so that drift hits every way alike
        for name, step in ways.items():
            timings[name].append(seconds_per_call(step, calls))
    return {name: 1e3 * statistics.median(values) for name, values in timings.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--output", type=Path, default=RESULTS, help="the results record")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started = provenance(seeds={"weights": 0}, threads={"torch": args.threads})
    widths = PositionalConfig.widths
    rows = []
    print("| layer | nn.Linear (ms) | PositionalLinear (ms) | ratio | distances and falloff alone (ms) |")
    print("|---|---:|---:|---:|---:|")
    cases = [(f"{fan_in} → {fan_out}", lambda fan_in=fan_in, fan_out=fan_out: layer_ways(fan_in, fan_out,
                                                                                         args.batch_size))
             for fan_in, fan_out in dict.fromkeys(zip(widths[:-1], widths[1:], strict=True))]
    cases.append(("whole network, one training step", lambda: network_ways(args.batch_size)))
    for name, ways in cases:
        times = measure(ways(), args.calls, args.repeats)
        row = {"layer": name, "ms": times, "ratio": times["PositionalLinear"] / times["nn.Linear"]}
        rows.append(row)
        alone = times.get("distances and falloff alone")
        print(f"| {name} | {times['nn.Linear']:.3f} | {times['PositionalLinear']:.3f} | {row['ratio']:.2f} | "
              f"{'—' if alone is None else f'{alone:.3f}'} |")
    settings = {name: getattr(args, name) for name in ("threads", "batch_size", "calls", "repeats")}
    print(f"wrote {write_record(args.output, make_record({'settings': settings, 'rows': rows}, started))}")


if __name__ == "__main__":
    main()
