"""Measure the firing-rate equivalence of Gupta & Naveed, section 3.5, on a converted network.

For each number of steps T and each spiking layer l: the correlation and the mean absolute
error between rate_l x lambda_l (spikes per step times the layer's scale) and the ANN's ReLU
activation a_l, over all neurons of all images; the first layer's largest deviation in units of
the threshold, which under constant input cannot exceed one spike (1/T; 0.5/T with v_init 0.5)
for activations below the threshold; test accuracy beside the ANN's; and synaptic operations
per image beside the ANN's multiply-accumulates.
"""

from __future__ import annotations

import time

import torch

from bridges.common import EquivalenceReport, Moments, RateCodedNetwork, StepsResult


def measure(snn: RateCodedNetwork, images: torch.Tensor, labels: torch.Tensor, steps_list: list[int],
            batch_size: int = 500, progress=None) -> EquivalenceReport:
    """Simulate the test images at every T in ``steps_list`` and compare with the ANN."""
    batches = list(zip(images.split(batch_size), labels.split(batch_size), strict=True))
    analog = [snn.analog(batch) for batch, _ in batches]
    ann_correct = sum(int((logits.argmax(1) == y).sum()) for (_, logits), (_, y) in zip(analog, batches, strict=True))
    report = EquivalenceReport(
        ann_accuracy=ann_correct / len(labels), ann_macs=snn.ann_macs(), input_ops=0.0,
        layer_names=[f"layer {i + 1}" for i in range(len(snn.scales))], scales=list(snn.scales),
    )
    for steps in steps_list:
        started = time.perf_counter()
        moments = [Moments() for _ in snn.scales]
        correct, synaptic, bound_max, bound_hits, bound_total = 0, 0.0, 0.0, 0, 0
        for (batch, y), (activations, _) in zip(batches, analog, strict=True):
            run = snn.run(batch, steps)
            correct += int((run.evidence.argmax(1) == y).sum())
            synaptic += float(run.synaptic_ops.sum())
            report.input_ops = run.input_ops  # the same for every batch
            rates = run.rates()
            for layer, (rate, activation) in enumerate(zip(rates, activations, strict=True)):
                scale = snn.scales[layer]
                moments[layer].add(rate * scale, activation * scale)
            below = (activations[0] >= 0) & (activations[0] <= 1)
            error = (rates[0] - activations[0]).abs()[below]
            bound_max = max(bound_max, float(error.max()) if error.numel() else 0.0)
            bound_hits += int((error <= 1.0 / steps + 1e-6).sum())
            bound_total += int(below.sum())
            if progress is not None:
                progress.update(len(batch))
        report.results.append(StepsResult(
            steps=steps,
            accuracy=correct / len(labels),
            correlation=[m.correlation() for m in moments],
            mean_abs_error=[m.mean_abs_error() for m in moments],
            first_layer_max_error=bound_max,
            first_layer_within_one_spike=bound_hits / max(bound_total, 1),
            synaptic_ops=synaptic / len(labels),
            seconds=time.perf_counter() - started,
        ))
    return report


def format_tables(report: EquivalenceReport) -> str:
    """Markdown tables: accuracy and operations against T, then per-layer agreement."""
    lines = [f"ANN test accuracy {100 * report.ann_accuracy:.2f} %, {report.ann_macs:,.0f} MACs per image",
             "", "| T | spiking accuracy | spiking − ANN (points) | synaptic ops / image | ops / ANN MACs | seconds |",
             "| ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in report.results:
        ops = r.synaptic_ops + report.input_ops
        lines.append(f"| {r.steps} | {100 * r.accuracy:.2f} % | {100 * (r.accuracy - report.ann_accuracy):+.2f} "
                     f"| {ops:,.0f} | {ops / report.ann_macs:.2f} | {r.seconds:.1f} |")
    header = " | ".join(f"{name} corr / MAE" for name in report.layer_names)
    lines += ["", f"{report.quantity}:", "",
              f"| T | {header} | layer 1 max error (spikes) | layer 1 within one spike |",
              "| ---: | " + "---: | " * len(report.layer_names) + "---: | ---: |"]
    for r in report.results:
        cells = " | ".join(f"{c:.4f} / {e:.4f}" for c, e in zip(r.correlation, r.mean_abs_error, strict=True))
        lines.append(f"| {r.steps} | {cells} | {r.first_layer_max_error * r.steps:.2f} "
                     f"| {100 * r.first_layer_within_one_spike:.2f} % |")
    return "\n".join(lines) + "\n"


def report_figure(report: EquivalenceReport):
    """Three panels against T: per-layer correlation, per-layer MAE, accuracy beside the ANN's; a
    matplotlib ``Figure`` made without pyplot (the caller saves or shows it)."""
    from matplotlib.figure import Figure

    steps = [r.steps for r in report.results]
    figure = Figure(figsize=(15, 4.2))
    axes = figure.subplots(1, 3)
    for layer, name in enumerate(report.layer_names):
        axes[0].plot(steps, [r.correlation[layer] for r in report.results], "o-", label=name)
        axes[1].plot(steps, [r.mean_abs_error[layer] for r in report.results], "o-", label=name)
    axes[0].set(title=report.quantity, ylabel="Pearson correlation")
    axes[1].set(title="mean absolute error (activation units)", ylabel="MAE", yscale="log")
    axes[2].plot(steps, [100 * r.accuracy for r in report.results], "o-", label="spiking")
    axes[2].axhline(100 * report.ann_accuracy, color="k", ls="--", label="ANN")
    axes[2].set(title="test accuracy", ylabel="%")
    for axis in axes:
        axis.set(xscale="log", xlabel="time steps T")
        axis.set_xticks(steps, [str(s) for s in steps])
        axis.legend()
    return figure
