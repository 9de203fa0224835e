"""The double task's split (Wołczyk et al.): accuracy of each task before and after the network is
split into its two task groups, for a rate or spiking spatial network (or its regular twin)."""

from __future__ import annotations

import torch
from torch import nn

from rate_models.spatial import TASKS, cross_task_weight_share, split_tasks, task_masks
from spikebridge.training import accuracy


def split_report(network: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """Per task (its images only, its head only) the test accuracy of the full network and of its
    own group with the other task's neurons disabled; their means over the tasks (the paper's
    "averaged accuracy"), the drop, the cross-task share of |w|, and for a spiking network the
    cross-task spike traffic before the split."""
    network = network.eval()
    assignments = split_tasks(network)
    report: dict[str, float] = {}
    for task, name in enumerate(TASKS):
        own = labels.clone()
        own[:, 1 - task] = -1
        chosen = own[:, task] >= 0
        report[f"full_{name}"] = accuracy(network, images[chosen], own[chosen])
        report[f"split_{name}"] = accuracy(network, images[chosen], own[chosen], masks=task_masks(assignments, task))
        report[f"{name}_neurons_per_split_layer"] = [int((layer == task).sum()) for layer in assignments[:-1]]
    report["full"] = sum(report[f"full_{name}"] for name in TASKS) / len(TASKS)
    report["split"] = sum(report[f"split_{name}"] for name in TASKS) / len(TASKS)
    report["drop"] = report["full"] - report["split"]
    report["cross_task_weight_share"] = cross_task_weight_share(network, assignments)
    if hasattr(network, "simulate"):
        from spiking.spatial import cross_task_spike_traffic

        with torch.no_grad():
            counts = [torch.cat(parts) for parts in zip(*(network.simulate(batch, network.config.steps, measure=True)
                                                          .spike_counts for batch in images.split(1000)), strict=True)]
        report |= cross_task_spike_traffic(network, counts, assignments)
    return report
