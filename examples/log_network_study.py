"""Reproduce the findings of Thériault & François (2021), the log network, on full MNIST.

    python examples/log_network_study.py                      # about 15 minutes on 2 CPU cores
    python examples/log_network_study.py --epochs 2 --attack-images 200   # a quick look

Writes ``runs/log-study-<time>/`` with the results record ``results.json`` (every figure, with
the configuration and provenance; ``--record PATH`` writes it there too), ``results.md`` (the
tables) and the figures:

- ``prototypes.png``: rows of w1 as 28x28 images, joint training and control network (Figs 2, 5).
- ``w2_schedules.png``: w2 of the control network, constant learning rate against a decaying one
  with weak regularisation (Figs 6-8), and the share of prototypes whose largest w2 is their class.
- ``hidden_pairs.png``: x2 of two prototypes for images of their two classes, fitted parallel
  lines and residuals (Figs 10-11).
- ``perturbations.png``: output change against random perturbation size, numerical and
  first-order, for the log net (log space, Fig 13) and a ReLU net (Fig 12).
- ``attacks.png``: accuracy against eps under FGSM and PGD, log net against a ReLU MLP.
The rate models land in the study folder's ``models/`` as ordinary run folders.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from idx_datasets import load
from idx_datasets.atomic import write_bytes_atomic
from rate_models.log_network import LogNetwork, class_image_sets, first_order_change, fit_prototypes
from rate_models.probes import (
    agreement_limit,
    attack_sweep,
    fgsm,
    linearise,
    perturbation_response,
    pgd,
    relu_first_order,
)
from spikebridge.records import environment, make_record, portable_path, provenance, write_record
from spikebridge.runs import figure_with_axes, new_run_dir, save_figure, write_json
from spikebridge.training import TrainConfig, accuracy, as_tensors, train

EPSILONS = [0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3]
PERTURBATION_SIZES = torch.logspace(-7, 1, 33)
PAIRS = [(3, 5), (4, 9)]  # class pairs whose control prototypes are plotted against each other


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10, help="epochs of every rate model")
    parser.add_argument("--hidden", type=int, default=100, help="prototypes of the log networks")
    parser.add_argument("--set-size", type=int, default=100, help="images per prototype in the control's first stage")
    parser.add_argument("--prototype-steps", type=int, default=100, help="gradient steps of the first stage")
    parser.add_argument("--prototype-lr", type=float, default=1.0, help="learning rate of the first stage")
    parser.add_argument("--control-lr", type=float, default=1e-2, help="Adam learning rate of the control's w2")
    parser.add_argument("--weight-decay", type=float, default=1e-4, help="weak regularisation of the decaying run")
    parser.add_argument("--matched-relu-images", type=int, default=5_000,
                        help="training images of the ReLU MLP whose accuracy is matched to the log net's")
    parser.add_argument("--attack-images", type=int, default=1_000, help="test images attacked")
    parser.add_argument("--perturbation-images", type=int, default=100, help="test images perturbed")
    parser.add_argument("--runs-dir", default="runs", help="where the study folder is created")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--record", metavar="PATH", help="also write the results record to PATH")
    return parser.parse_args()


def control_first_stage(images, labels, hidden, set_size, steps, learning_rate):
    """``prepare`` for :func:`train`: fit every prototype on its single-class set (w1 stays frozen)."""
    sets = class_image_sets(images, labels, hidden, set_size)

    def prepare(model: LogNetwork) -> None:
        model.w1.data = fit_prototypes(model.w1.data, sets, steps, learning_rate)

    return prepare


def sawtooth_share(w2: torch.Tensor) -> float:
    """Share of prototypes j whose largest w2[:, j] is at their own class j % 10 (1 = perfect sawtooth)."""
    return float((w2.argmax(0) == torch.arange(w2.shape[1]) % w2.shape[0]).float().mean())


def train_models(args, folder: Path, train_x, train_y):
    root = folder / "models"

    def config(**changes) -> TrainConfig:
        return TrainConfig(**{"epochs": args.epochs, "seed": args.seed, **changes})

    lognet = {"hidden": args.hidden}
    control = {"hidden": args.hidden, "train_first_layer": False}
    prepare = control_first_stage(train_x, train_y, args.hidden, args.set_size, args.prototype_steps,
                                  args.prototype_lr)
    runs = {
        "log joint, cross-entropy": train("lognet", lognet, config(), root),
        "log joint, -x3[y]": train("lognet", lognet, config(loss="target_score"), root),
        "log control, cross-entropy, decaying lr + weak L2": train(
            "lognet", control, config(learning_rate=args.control_lr, weight_decay=args.weight_decay), root,
            prepare=prepare),
        "log control, cross-entropy, constant lr": train(
            "lognet", control, config(learning_rate=args.control_lr, schedule="constant"), root, prepare=prepare),
        "log control, -x3[y]": train(
            "lognet", control, config(learning_rate=args.control_lr, loss="target_score"), root, prepare=prepare),
        "relu 784-100-10": train("mlp", {"widths": [784, 100, 10], "dropout": 0.0}, config(), root),
        "relu 784-100-10, matched accuracy": train(
            "mlp", {"widths": [784, 100, 10], "dropout": 0.0}, config(train_images=args.matched_relu_images), root),
    }
    return runs


def linearisation_table(runs, test_x, test_y) -> list[dict]:
    rows = []
    for name, run in runs.items():
        rows.append({"model": name, "accuracy": accuracy(run.model, test_x, test_y),
                     "linearised": accuracy(linearise(run.model), test_x, test_y)})
    return rows


def plot_prototypes(joint: LogNetwork, control: LogNetwork, path: Path) -> None:
    figure, axes = figure_with_axes(4, 10, figsize=(10, 4.4))
    for row, (network, title) in enumerate([(joint, "joint"), (control, "control")]):
        for column in range(20):
            axis = axes[2 * row + column // 10, column % 10]
            axis.imshow(network.w1[column].detach().view(28, 28), cmap="gray", vmin=0, vmax=1)
            axis.set_axis_off()
        axes[2 * row, 0].set_title(f"{title}: w1 rows 0-19", loc="left", fontsize=9)
    save_figure(figure, path)


def plot_w2(constant: LogNetwork, decaying: LogNetwork, path: Path) -> dict:
    shares = {}
    figure, axes = figure_with_axes(1, 2, figsize=(12, 3))
    for axis, (network, title) in zip(axes, [(constant, "constant lr, no regularisation"),
                                             (decaying, "decaying lr, weak L2")], strict=True):
        w2 = network.w2.detach()
        shares[title] = sawtooth_share(w2)
        image = axis.imshow(w2[:, :40], aspect="auto", cmap="viridis")
        axis.set(title=f"{title}: own-class share {100 * shares[title]:.0f} %", xlabel="prototype j (class j mod 10)",
                 ylabel="class i")
        figure.colorbar(image, ax=axis)
    save_figure(figure, path)
    return shares


def hidden_pairs(control: LogNetwork, images, labels, path: Path) -> list[dict]:
    """For each class pair (m, n): x2 of prototype m against prototype n on images of m and n; a
    line fitted to each cluster; the nearer line classifies."""
    figure, axes = figure_with_axes(2, len(PAIRS), figsize=(5 * len(PAIRS), 7.5), squeeze=False)
    results = []
    with torch.no_grad():
        hidden = control.hidden(images).numpy()
    for column, (m, n) in enumerate(PAIRS):
        chosen = (labels == m) | (labels == n)
        x, y, classes = hidden[chosen, m], hidden[chosen, n], labels[chosen].numpy()
        fits, distances = {}, []
        for label in (m, n):
            slope, intercept = np.polyfit(x[classes == label], y[classes == label], 1)
            fits[label] = (slope, intercept)
            distances.append(np.abs(y - slope * x - intercept))
            axes[0, column].scatter(x[classes == label], y[classes == label], s=2, alpha=0.4, label=f"digit {label}")
            grid = np.linspace(x.min(), x.max(), 10)
            axes[0, column].plot(grid, slope * grid + intercept, "k-", lw=1)
            axes[1, column].scatter(x[classes == label], (y - slope * x - intercept)[classes == label], s=2, alpha=0.4)
        nearer = np.where(distances[0] <= distances[1], m, n)
        separation = float((nearer == classes).mean())
        results.append({"classes": [m, n], "slopes": [fits[m][0], fits[n][0]],
                        "intercepts": [fits[m][1], fits[n][1]], "nearer_line_accuracy": separation})
        axes[0, column].set(title=f"x2 of prototypes {m} and {n}: slopes {fits[m][0]:.2f}, {fits[n][0]:.2f}",
                            xlabel=f"x2[{m}]", ylabel=f"x2[{n}]")
        axes[0, column].legend(markerscale=4)
        axes[1, column].axhline(0, color="k", lw=0.5)
        axes[1, column].set(title=f"residuals (nearer line classifies {100 * separation:.1f} %)", xlabel=f"x2[{m}]",
                            ylabel="residual")
    figure.tight_layout()
    save_figure(figure, path)
    return results


def perturbations(lognet: LogNetwork, relu, images, seed: int, path: Path) -> dict:
    """Random directions scaled so that size 1 equals the image's brightest pixel (as in Thériault & François);
    in float64, so that the smallest changes are not rounding noise."""
    import copy

    lognet, relu, images = copy.deepcopy(lognet).double(), copy.deepcopy(relu).double(), images.double()
    generator = torch.Generator().manual_seed(seed)
    limits = {"log": [], "relu": []}
    curves = {}
    for index, image in enumerate(images):
        direction = torch.randn(image.shape, generator=generator, dtype=image.dtype)
        direction = direction / direction.abs().max() * image.max()

        def log_prediction(delta, image=image):
            return torch.log1p(first_order_change(image[None], delta[None], lognet.w1, lognet.w2))

        for name, model, predict in [("log", lognet, log_prediction), ("relu", relu, relu_first_order(relu, image))]:
            numerical, predicted = perturbation_response(model, image, direction, PERTURBATION_SIZES, predict)
            limits[name].append(agreement_limit(numerical, predicted, PERTURBATION_SIZES))
            if index == 0:
                curves[name] = (numerical, predicted)
    figure, axes = figure_with_axes(1, 2, figsize=(12, 4))
    panels = [(axes[0], "relu", "ReLU net (Fig. 12)"), (axes[1], "log", "log net, log space (Fig. 13)")]
    for axis, name, title in panels:
        numerical, predicted = curves[name]
        for cls in range(3):
            axis.plot(PERTURBATION_SIZES, numerical[:, cls], "o", ms=3, color=f"C{cls}", label=f"class {cls} numerical")
            axis.plot(PERTURBATION_SIZES, predicted[:, cls], "-", color=f"C{cls}", label=f"class {cls} first order")
        axis.set(xscale="log", yscale="symlog", xlabel="perturbation size (1 = brightest pixel)",
                 ylabel="change of the output", title=title)
        axis.legend(fontsize=7)
    save_figure(figure, path)
    return {name: {"median_agreement_limit": float(np.median(values)), "limits": values}
            for name, values in limits.items()}


def seeded_pgd(seed: int):
    """PGD-20 whose random starts are the same for every model and eps."""

    def attack(model, images, labels, epsilon):
        return pgd(model, images, labels, epsilon, generator=torch.Generator().manual_seed(seed))

    return attack


def attacks(models: dict, images, labels, seed: int, path: Path) -> dict:
    results = {}
    figure, axes = figure_with_axes(1, 2, figsize=(11, 4))
    for axis, (attack_name, attack) in zip(axes, [("FGSM", fgsm), ("PGD-20", seeded_pgd(seed))], strict=True):
        for name, model in models.items():
            sweep = attack_sweep(model, images, labels, EPSILONS, attack)
            results[f"{name}, {attack_name}"] = {
                "accuracy": sweep.accuracy, "mean_smallest_epsilon": sweep.mean_smallest_epsilon(),
                "never_flipped": sweep.never_flipped()}
            axis.plot(EPSILONS, [100 * a for a in sweep.accuracy], "o-", label=name)
        axis.set(title=attack_name, xlabel="eps (L-infinity, pixels in [0, 1])", ylabel="accuracy (%)")
        axis.legend(fontsize=8)
    save_figure(figure, path)
    return results


def markdown(results: dict) -> str:
    lines = ["| model | test accuracy | linearised |", "| --- | ---: | ---: |"]
    lines += [f"| {r['model']} | {100 * r['accuracy']:.2f} % | {100 * r['linearised']:.2f} % |"
              for r in results["linearisation"]]
    lines += ["", "| w2 of the control network | own-class share |", "| --- | ---: |"]
    lines += [f"| {k} | {100 * v:.0f} % |" for k, v in results["sawtooth"].items()]
    lines += ["", "| classes | slopes | nearer-line accuracy |", "| --- | --- | ---: |"]
    lines += [f"| {p['classes']} | {p['slopes'][0]:.3f}, {p['slopes'][1]:.3f} "
              f"| {100 * p['nearer_line_accuracy']:.1f} % |" for p in results["hidden_pairs"]]
    lines += ["", "| model | median size where first order stays within 10 % |", "| --- | ---: |"]
    lines += [f"| {k} | {v['median_agreement_limit']:.2g} |" for k, v in results["perturbations"].items()]
    epsilon_columns = " | ".join(f"eps {e:g}" for e in EPSILONS)
    lines += ["", f"| model, attack | {epsilon_columns} | mean smallest eps | never flipped |",
              "| --- | " + "---: | " * (len(EPSILONS) + 2)]
    lines += [f"| {k} | " + " | ".join(f"{100 * a:.1f}" for a in v["accuracy"])
              + f" | {v['mean_smallest_epsilon']:.4f} | {100 * v['never_flipped']:.1f} % |"
              for k, v in results["attacks"].items()]
    return "\n".join(lines) + "\n"


def main() -> None:
    args = parse_args()
    started = provenance(seeds={"training": args.seed, "perturbations": args.seed, "pgd_starts": args.seed})
    torch.manual_seed(args.seed)
    folder = new_run_dir(Path(args.runs_dir), "log-study")
    write_json(folder, "config.json", {"kind": "log-study", "args": vars(args), "environment": environment()})
    train_x, train_y = as_tensors(load("mnist", "train"))
    test_x, test_y = as_tensors(load("mnist", "test"))
    runs = train_models(args, folder, train_x, train_y)
    joint = runs["log joint, cross-entropy"].model
    control = runs["log control, cross-entropy, decaying lr + weak L2"].model
    relu, matched = runs["relu 784-100-10"].model, runs["relu 784-100-10, matched accuracy"].model
    results = {"args": vars(args), "epsilons": EPSILONS,
               "training": {name: asdict(run.train_config) | {"run": portable_path(run.directory)}
                            for name, run in runs.items()}}
    results["linearisation"] = linearisation_table(runs, test_x, test_y)
    plot_prototypes(joint, control, folder / "prototypes.png")
    results["sawtooth"] = plot_w2(runs["log control, cross-entropy, constant lr"].model, control,
                                  folder / "w2_schedules.png")
    results["hidden_pairs"] = hidden_pairs(control, test_x, test_y, folder / "hidden_pairs.png")
    results["perturbations"] = perturbations(joint, relu, test_x[: args.perturbation_images], args.seed,
                                             folder / "perturbations.png")
    attacked = test_x[: args.attack_images], test_y[: args.attack_images]
    results["attacks"] = attacks({"log net": joint, "ReLU MLP, matched accuracy": matched, "ReLU MLP": relu},
                                 *attacked, args.seed, folder / "attacks.png")
    record = make_record(results, started)
    write_record(folder / "results.json", record)
    table = markdown(results)
    write_bytes_atomic(folder / "results.md", table.encode())
    print(table)
    print(f"study folder: {folder}; results record: {folder / 'results.json'}")
    if args.record:
        print(f"results record written to {write_record(Path(args.record), record)}")


if __name__ == "__main__":
    main()
