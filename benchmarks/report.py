"""Rebuild the docs' tables from the results records, or check the docs against them.

    python benchmarks/report.py            # rewrite every generated table in place
    python benchmarks/report.py --check    # exit 1, naming each table that differs from its records

A generated table sits in ``README.md``, ``benchmarks/README.md`` or ``docs/*.md`` between
``<!-- report: NAME -->`` and ``<!-- /report -->``. NAME is an entry of :data:`TABLES`: a
function that reads records under ``benchmarks/results/`` (see :mod:`spikebridge.records`) and
returns the Markdown, ending with the records it read. The check also fails on a block whose NAME
is unknown, on a results file without its provenance, on a results file named in the docs that
does not exist and on a link to a file that does not exist, so a figure cannot drift from its
record or outlive it.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
BLOCK = re.compile(r"(?P<open><!-- report: (?P<name>[\w-]+) -->\n)(?P<body>.*?)(?P<close><!-- /report -->)", re.S)
RESULTS_NAMED = re.compile(r"benchmarks/results/([\w.-]+\.json)")
LOCAL_LINK = re.compile(r"\]\((?!https?:|#)([^)\s]+)\)")  # [text](path) and ![alt](path) to files here

# Published figures the tables set beside ours (test accuracy on MNIST).
DIEHL_COOK_2015 = {100: 0.829, 400: 0.870, 1600: 0.919, 6400: 0.950}  # Diehl & Cook (2015), Table 1
THERIAULT_FRANCOIS_2021 = {  # Thériault & François (2021)
    "log network": 0.9178, "log network, linearised": 0.0958, "ReLU net": 0.966, "ReLU net, linearised": 0.895,
}
PEERS = ["this project", "this project, bias-corrected", "SpikingJelly ann2snn", "sinabs from_model"]


def anchors(document: Path) -> set[str]:
    """The anchors GitHub gives the headings of a Markdown file: lower case, spaces as hyphens,
    punctuation other than hyphens and underscores dropped."""
    headings = re.findall(r"^#+ (.+)$", document.read_text(), re.M)
    return {re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-") for heading in headings}


def documents(root: Path = ROOT) -> list[Path]:
    """The Markdown files whose tables are generated: the two READMEs and every page under docs/."""
    return [root / "README.md", root / "benchmarks" / "README.md", *sorted((root / "docs").glob("*.md"))]


@cache
def record(name: str) -> dict:
    from spikebridge.records import read_record

    return read_record(RESULTS / name)


def percent(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{100 * value:.{digits}f} %"


def yes_no(flag: bool) -> str:
    return "yes" if flag else "no"


def p_value(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p {p:.2g}"


def markdown(header: list[str], rows: list[list[str]], align: str) -> str:
    """A Markdown table; ``align`` has one letter per column, ``l`` or ``r``."""
    rule = ["---" if a == "l" else "---:" for a in align]
    return "\n".join("| " + " | ".join(cells) + " |" for cells in [header, rule, *rows]) + "\n"


def sources(*names: str) -> str:
    """The closing line of a table: each record with its command, commit and date (only the
    records' names where there are more than four)."""
    if len(names) > 4:
        listed = ", ".join(f"`{name}`" for name in names)
        return f"\nRecords under `benchmarks/results/`, each with its commands, commit and date: {listed}.\n"
    parts = []
    for name in names:
        provenance = record(name)["provenance"]
        date = next(iter(provenance["date"].values()))[:10]
        parts.append(f"`benchmarks/results/{name}` (`{provenance['command']}`; commit {provenance['commit'][:7]}, "
                     f"{date})")
    return "\n" + ("Record: " if len(parts) == 1 else "Records: ") + "; ".join(parts) + ".\n"


# --- the comparison table of `make demo` -------------------------------------------------------------

def demo() -> str:
    from spikebridge.compare import ComparisonRow
    from spikebridge.compare import markdown_table as comparison_table

    saved = record("compare_demo.json")
    settings = saved["settings"]
    images = {key: "all" if settings[key] is None else f"the first {settings[key]:,}"
              for key in ("train_images", "test_images", "stdp_train_images")}
    caption = (f"\nThe rate models and the snn- networks (trained directly as spiking networks) trained on "
               f"{images['train_images']} training images for {settings['epochs']} "
               f"epoch{'s' if settings['epochs'] > 1 else ''}, the Diehl & Cook network on "
               f"{images['stdp_train_images']} (Brian2 {settings['stdp_device']}), all tested on "
               f"{images['test_images']} test images.\n")
    rows = [ComparisonRow(**row) for row in saved["rows"]]
    return comparison_table(rows) + caption + sources("compare_demo.json")


# --- Gupta & Naveed: rate baselines and the conversion ------------------------------------------------

def baselines() -> str:
    rows = [[row["model"], percent(row["test_accuracy"]), percent(row["paper"]), f"≥ {percent(row['target'], 1)}",
             str(row["epochs"]), f"{row['train_seconds'] / 60:.1f} min"] for row in record("baselines.json")["rows"]]
    table = markdown(["model", "measured", "Gupta & Naveed", "target", "epochs", "training time"], rows, "lrrrrr")
    return table + sources("baselines.json")


def equivalence_tables(name: str) -> str:
    """``bridge verify``'s own tables, rebuilt from its record."""
    from bridges.common import EquivalenceReport, StepsResult
    from bridges.equivalence import format_tables

    saved = {key: value for key, value in record(name).items() if key not in ("provenance", "config")}
    report = EquivalenceReport(**{**saved, "results": [StepsResult(**row) for row in saved["results"]]})
    return format_tables(report) + sources(name)


def mlp_equivalence() -> str:
    return equivalence_tables("bridge_verify_mlp.json")


def options_table(name: str) -> str:
    saved = record(name)
    steps = saved["settings"]["steps"]
    rows = [[row["network"], percent(row["ann_accuracy"]),
             *(percent(row["spiking_accuracy"][str(t)]) for t in steps)] for row in saved["rows"]]
    return markdown(["network, options", "ANN", *(f"T = {t}" for t in steps)], rows, "l" + "r" * (len(steps) + 1)) \
        + sources(name)


def conversion_options() -> str:
    return options_table("conversion_options.json")


def conversion_options_earlier() -> str:
    return options_table("conversion_options_earlier_mlp.json")


def _threads(name: str) -> int:
    settings = record(name).get("settings", {})
    return settings.get("threads", 1) if isinstance(settings, dict) else 1


def peer_table(names: list[str]) -> str:
    """Converters side by side, one row per T. Each cell comes from the first record in ``names``
    that ran that converter at that T; the time ratio from the first that ran this project and a
    peer at that T in one process. In brackets: test images only ours / only the peer gets right,
    McNemar's exact p."""
    runs: dict[tuple[int, str], tuple[dict, str]] = {}
    ratios: dict[int, tuple[float, str]] = {}
    for name in names:
        by_converter: dict[int, dict[str, dict]] = {}
        for row in record(name)["rows"]:
            runs.setdefault((row["steps"], row["converter"]), (row, name))
            by_converter.setdefault(row["steps"], {})[row["converter"]] = row
        for steps, rows in by_converter.items():
            peers = [row["seconds"] for converter, row in rows.items() if not converter.startswith("this project")]
            if "this project" in rows and peers and steps not in ratios:
                ratios[steps] = (rows["this project"]["seconds"] / min(peers), name)
    converters = [c for c in PEERS if any(converter == c for _, converter in runs)]
    rows = []
    for steps in sorted({steps for steps, _ in runs}):
        cells, used = [], []
        for converter in converters:
            if (steps, converter) not in runs:
                cells.append("—")
                continue
            row, name = runs[steps, converter]
            cell = f"{percent(row['accuracy'])} ({100 * (row['accuracy'] - row['ann_accuracy']):+.2f}), " \
                   f"{row['seconds']:.1f} s"
            if _threads(name) != 1:
                cell += f" ({_threads(name)} threads)"
            if versus := row.get("versus_this_project"):
                cell += f" [{versus['only_ours_right']} / {versus['only_peer_right']}, {p_value(versus['mcnemar_p'])}]"
            cells.append(cell)
            used.append(name)
        ratio = f"{ratios[steps][0]:.2f}" if steps in ratios else "—"
        files = ", ".join(f"`{n.removesuffix('.json').removeprefix('conversion_')}`" for n in dict.fromkeys(used))
        rows.append([str(steps), *cells, ratio, files])
    table = markdown(["T", *converters, "time / fastest peer", "records"], rows, "r" + "r" * len(converters) + "rl")
    return table + sources(*dict.fromkeys(name for _, name in runs.values()))


def peers_mlp_retrained() -> str:
    return peer_table(["conversion_mlp_retrained.json"])


def peers_mlp_earlier() -> str:
    return peer_table(["conversion_mlp.json"])


def peers_cnn_retrained() -> str:
    return peer_table([f"conversion_cnn_retrained_{part}.json" for part in (
        "t8_again", "t8", "t16_t32", "t64_spikingjelly", "t64_sinabs", "t128", "t256", "t256_sinabs")])


def peers_cnn_earlier() -> str:
    return peer_table([f"conversion_cnn_full_{part}.json" for part in (
        "t8_t64_quiet", "t8_t16_sinabs", "t32", "t128_quiet", "t256_2threads")])


# --- Diehl & Cook (2015) ----------------------------------------------------------------------------

DIEHL_COOK_REPRODUCTIONS = [f"diehl_cook_{name}.json"
                            for name in ("100_1pass", "100_3passes", "400_3passes", "1600_7passes")]
DIEHL_COOK_SWEEP = "diehl_cook_theta_plus_sweep.json"  # `spikebridge sweep report` of the example sweep
DIEHL_COOK_RUNS = [f"diehl_cook_{name}.json" for name in (
    "100_1pass", "100_1pass_seed1", "100_1pass_seed2", "100_1pass_theta_plus_0025_seed0",
    "100_1pass_theta_plus_0025_seed1", "100_1pass_theta_plus_0025_seed2", "100_3passes", "400_3passes", "1600_7passes")]


def _model(saved: dict) -> str:
    changed = saved["parameters_changed"]
    return ", ".join(f"{name} = {value}" for name, value in changed.items()) or "the paper's table"


def _passes(saved: dict) -> str:
    passes = saved["run"]["passes"]
    return f"{passes} pass{'es' if passes > 1 else ''}"


def diehl_cook_runs_table(names: list[str]) -> str:
    rows = []
    for name in names:
        saved = record(name)
        rows.append([str(saved["neurons"]), _passes(saved), _model(saved), str(saved["run"]["seed"]),
                     percent(saved["test_accuracy"]), percent(DIEHL_COOK_2015[saved["neurons"]], 1),
                     f"{saved['training']['presentations_per_image']:.2f}",
                     " ".join(map(str, saved["neurons_per_class"])), f"{saved['theta_mV']['mean']:.1f}"])
    header = ["neurons", "training", "model", "seed", "measured", "paper", "presentations per image",
              "neurons per class 0–9", "mean θ (mV)"]
    commands = dict.fromkeys(record(name)["run"]["command"] for name in names)
    return (markdown(header, rows, "rllrrrrlr") + "\nTrained with " + "; ".join(f"`{c}`" for c in commands) + ".\n"
            + sources(*names))


def diehl_cook_accuracy() -> str:
    return diehl_cook_runs_table(DIEHL_COOK_RUNS)


def diehl_cook_exponential_check() -> str:
    return diehl_cook_runs_table(["diehl_cook_100_1pass.json", "diehl_cook_100_1pass_exponential.json"])


def diehl_cook_seeds() -> str:
    """The example sweep's report: test accuracy over its seeds for each θ₊."""
    saved = record(DIEHL_COOK_SWEEP)
    paper = percent(DIEHL_COOK_2015[saved["spec"]["settings"]["neurons"]], 1)
    rows = []
    for row in saved["rows"]:
        accuracy, presentations = row["metrics"]["test_accuracy"], row["metrics"]["presentations_per_image"]
        spread = f"{percent(accuracy['mean'])} ± {percent(accuracy['std'])}"
        rows.append([str(row["axes"]["params.theta_plus_mV"]), spread, str(accuracy["n"]),
                     f"{presentations['mean']:.2f}", paper])
    header = ["θ₊ (mV)", "test accuracy, mean ± std over seeds", "seeds", "presentations per image", "paper"]
    return markdown(header, rows, "rrrrr") + sources(DIEHL_COOK_SWEEP)


def _speed_against(row: dict, peer: str) -> list[str]:
    """A peer's images/s and the compiled blocks' speed over it, or dashes where it was not timed."""
    if not row.get(peer):
        return ["—", "—"]
    ratio = row["compiled"]["images_per_second"] / row[peer]["images_per_second"]
    return [f"{row[peer]['images_per_second']:.2f}", f"{ratio:.1f}×"]


def speed_table(name: str) -> str:
    saved = record(name)
    with_bindsnet = any(row.get("bindsnet") for row in saved["rows"])
    with_subnormals = "membrane_update" in saved  # since subnormals are flushed (records before kept them)
    with_queues = len({row["compiled"].get("spike_queue", "patched") for row in saved["rows"]}) > 1
    rows = []
    for row in saved["rows"]:
        compiled = row["compiled"]
        peers = _speed_against(row, "runtime_loop") + (_speed_against(row, "bindsnet") if with_bindsnet else [])
        subnormals = [compiled.get("subnormals", "flushed")] if with_subnormals else []
        queue = [compiled["spike_queue"]] if with_queues else []
        rows.append([str(row["neurons"]), str(compiled["threads"]), *subnormals, *queue,
                     f"{compiled['images_per_second']:.1f}",
                     *peers,
                     f"{compiled['compile_seconds']:.1f}", f"{compiled['spikes_per_image']:.1f}",
                     percent(compiled["re_presentation_fraction"], 1)])
    header = ["neurons", "OpenMP threads", *(["subnormal floats"] if with_subnormals else []),
              *(["spike queue"] if with_queues else []), "compiled (img/s)",
              "runtime loop (img/s)", "ratio",
              *(["BindsNET (img/s)", "ratio"] if with_bindsnet else []), "compile (s)", "spikes/image", "re-presented"]
    caption = f"\nMembrane update: {saved['membrane_update']}.\n" if "membrane_update" in saved else ""
    return markdown(header, rows, "r" * len(header)) + caption + sources(name)


def diehl_cook_speed() -> str:
    return speed_table("diehl_cook_speed.json")


def diehl_cook_speed_current() -> str:
    return speed_table("diehl_cook_speed_current.json")


def diehl_cook_speed_bindsnet() -> str:
    return speed_table("diehl_cook_speed_bindsnet.json")


def diehl_cook_speed_bindsnet_exponential() -> str:
    return speed_table("diehl_cook_speed_bindsnet_exponential.json")


def diehl_cook_speed_6400() -> str:
    return speed_table("diehl_cook_speed_6400.json")


def diehl_cook_spike_queue() -> str:
    return speed_table("diehl_cook_spike_queue.json")


def diehl_cook_bindsnet_accuracy() -> str:
    saved = record("diehl_cook_bindsnet_accuracy.json")
    paired = saved["paired"]
    names = {"ours": ("this toolkit (the paper's model)", paired["only_ours_right"]),
             "bindsnet": ("BindsNET 0.3.4", paired["only_peer_right"])}
    rows = [[names[key][0], percent(row["accuracy"]), str(names[key][1]), f"{row['seconds']:.0f}"]
            for key, row in saved["rows"].items()]
    header = ["network", "test accuracy", "test images only it gets right",
              "seconds (train, label, test; ours compiles)"]
    caption = (f"\n{saved['neurons']} neurons, {saved['train_images']:,} training images, labels from "
               f"{saved['labelling_images']:,} training images, {saved['test_images']:,} test images; McNemar's "
               f"exact test on the same test images: p = {paired['mcnemar_p']:.2g}.\n")
    return markdown(header, rows, "lrrr") + caption + sources("diehl_cook_bindsnet_accuracy.json")


# what each of Brian2's code objects in a Diehl & Cook block does
CODE_OBJECTS = {
    "input_to_excitatory_pre": "input spikes arriving: ge += w, STDP depression",
    "input_to_excitatory_pre_push_spikes": "input spikes queued by synaptic delay",
    "excitatory_membrane": "excitatory membranes and conductances",
    "inhibitory_membrane": "inhibitory membranes and conductances",
    "input_to_excitatory_post": "excitatory spikes: STDP potentiation",
    "normalise": "weight normalisation (once a presentation)",
    "input_to_excitatory_summed_variable_w_total_post": "weight sums (once a presentation)",
}


def diehl_cook_profile() -> str:
    saved = record("diehl_cook_profile.json")
    rows = []
    for row in saved["rows"]:
        profile = row["compiled"]["profile_seconds_last_block"]
        total = sum(profile.values())
        shares = {name.split("_codeobject")[0]: seconds / total for name, seconds in profile.items()}
        listed = [percent(shares.get(name, 0.0), 0) for name in CODE_OBJECTS]
        rows.append([str(row["neurons"]), *listed, percent(1 - sum(shares.get(name, 0.0) for name in CODE_OBJECTS), 0)])
    header = ["neurons", *CODE_OBJECTS.values(), "everything else (thresholds, traces, input, controller)"]
    return markdown(header, rows, "r" * len(header)) + sources("diehl_cook_profile.json")


def sweeps_speed() -> str:
    saved = record("sweeps_speed.json")
    rows = [[name, str(row["workers"]), f"{row['wall_seconds']:.1f}",
             ", ".join(f"{trial['wall_seconds']:.1f}" for trial in saved["trials"][name]), f"{row['speed_up']:.2f}×",
             f"{row['overhead_per_cell_seconds']:.2f}"] for name, row in saved["rows"].items()]
    table = markdown(["way", "workers", f"wall time (s), median of {saved['repeats']}", "trials in order (s)",
                      "speed-up over 1 worker", "overhead per cell (s)"], rows, "lrrrrr")
    caption = (f"\nRay over the 2-worker pool: {saved['ray_over_pool']:.2f} of its wall time; Ray's start-up took "
               f"{saved['ray_start_seconds']:.1f} s (not in the table); the same metrics in every cell all three "
               f"ways: {yes_no(saved['same_metrics'])}.\n")
    return table + caption + sources("sweeps_speed.json")


# --- the neuron step and the surrogate-trained networks ----------------------------------------------

def neuron_step() -> str:
    saved = record("neuron_step.json")
    rows = [[way, f"{row['network_seconds']:.2f}", f"{1000 * row['layer_seconds']:.1f}"]
            for way, row in saved["rows"].items()]
    table = markdown(["way", f"converted MLP, T = {saved['steps']}, {saved['test_images']:,} images (s)",
                      "IF recurrence alone, one layer (ms)"], rows, "lrr")
    ratios = saved["ratios"]
    caption = (f"\nMedians of {saved['repeats']} alternating trials. Neuron step over the former loop: "
               f"{ratios['network']:.3f} of the network's time, {ratios['layer']:.2f} of the recurrence's; "
               f"the same class evidence: {yes_no(saved['same_evidence'])}.\n")
    return table + caption + sources("neuron_step.json")


def surrogate_speed() -> str:
    saved = record("surrogate_speed.json")
    settings = saved["settings"]
    parts = []
    for model, result in sorted(saved["models"].items(), key=lambda item: item[0] != "mlp"):  # the MLP first
        shares = list(next(iter(result["rows"].values()))["time_shares"])
        rows = [[way, f"{row['images_per_second']:.1f}", f"{row['over_plain_snntorch']:.2f}×",
                 percent(row["test_accuracy"]), f"{row['training_seconds']:.0f}",
                 *(percent(row["time_shares"][share], 0) for share in shares)] for way, row in result["rows"].items()]
        table = markdown([f"{model}: way", f"training images/s, median of {settings['repeats']}",
                          "over the plain snntorch loop", f"test accuracy after {settings['epochs']} epoch(s)",
                          "their training (s)", *(f"time: {share}" for share in shares)], rows,
                         "lrrrr" + "r" * len(shares))
        parts.append(table + f"\n{model.upper()}: {result['batches']} timed batches per trial; accuracy on the first "
                     f"2,000 test images after training on the first {result['train_images']:,} training images.\n")
    caption = (f"\nT = {settings['steps']}, batch {settings['batch_size']}, {settings['threads']} torch thread(s), "
               f"LIF decay {saved['beta']}, constant-current input, snntorch's ce_rate loss, Adam.\n")
    return "\n".join(parts) + caption + sources("surrogate_speed.json")


def surrogate_accuracy() -> str:
    """The surrogate-trained networks on the full MNIST test set, beside the issue's targets and
    the published anchors."""
    def at_eight(name: str) -> dict:
        return next(row for row in record(name)["rows"] if row["steps"] == 8)["surrogate"]

    reader = record("surrogate_gru.json")
    rows = [
        ["snn-mlp 784-1200-1200-10, count readout", "8",
         percent(at_eight("conversion_vs_surrogate_mlp.json")["accuracy"]), "≥ 98.30 %", "—"],
        ["snn-mlp 784-1200-1200-10, membrane readout", "8",
         percent(at_eight("conversion_vs_surrogate_mlp_membrane.json")["accuracy"]), "≥ 98.30 %", "—"],
        ["snn-cnn (Gupta & Naveed CNN)", "≤ 8", "not measured (needs a GPU)", "≥ 99.30 %",
         "STBP 99.42 %, PLIF 99.72 % (larger networks)"],
        ["snn-gru (recurrent LIF, 128)", f"{28 * reader['model_config']['steps']} (one row per step)",
         percent(reader["test_accuracy"]), "≥ 98.00 %", "the rate GRU here: 98.60 %"],
    ]
    table = markdown(["network", "T", "measured (10,000 test images)", "target", "anchor"], rows, "lrrrl")
    return table + sources("conversion_vs_surrogate_mlp.json", "conversion_vs_surrogate_mlp_membrane.json",
                           "surrogate_gru.json")


def conversion_vs_surrogate(name: str) -> str:
    saved = record(name)
    rate_minutes = saved["rate_training"]["training_seconds"] / 60
    rows = []
    for row in saved["rows"]:
        converted, trained = row["converted"], row["surrogate"]
        rows.append([str(row["steps"]), percent(converted["accuracy"]), f"{converted['synaptic_ops']:,.0f}",
                     f"{rate_minutes:.1f} min + {saved['conversion_seconds']:.1f} s", percent(trained["accuracy"]),
                     f"{trained['synaptic_ops']:,.0f}", f"{row['surrogate_run']['training_seconds'] / 60:.1f}"])
    table = markdown(["T", "converted: accuracy", "synaptic ops / image", "rate training + conversion",
                      "trained with surrogate gradients: accuracy", "synaptic ops / image", "training (min)"],
                     rows, "rrrrrrr")
    training = saved["rate_training"]["training"]
    images = "all" if training["train_images"] is None else f"the first {training['train_images']:,}"
    surrogate_training = saved["rows"][0]["surrogate_run"]["training"]
    caption = (f"\n{saved['model'].upper()}: rate network {percent(saved['rate_accuracy'])}, "
               f"{saved['ann_macs']:,.0f} multiply-accumulates per image; trained on {images} training images, "
               f"{training['epochs']} epochs (the spiking networks {surrogate_training['epochs']}), tested on "
               f"{saved['test_images']:,} test images. Synaptic operations count spikes times fan-out plus the first "
               "layer's multiply-accumulates, computed once under constant current, for both.\n")
    return table + caption + sources(name)


def conversion_vs_surrogate_mlp() -> str:
    return conversion_vs_surrogate("conversion_vs_surrogate_mlp.json")


def conversion_vs_surrogate_cnn() -> str:
    return conversion_vs_surrogate("conversion_vs_surrogate_cnn.json")


def conversion_vs_surrogate_mlp_membrane() -> str:
    return conversion_vs_surrogate("conversion_vs_surrogate_mlp_membrane.json")


def held_out(name: str) -> str:
    import json

    saved = record(name)
    rows = [[f"`{json.dumps(row['variant'])}`", str(row["training"]["epochs"]), percent(row["held_out_accuracy"])]
            for row in saved["rows"]]
    table = markdown(["variant (settings, training)", "epochs", f"accuracy on {saved['held_out_images']:,} held-out "
                      "training images"], rows, "lrr")
    return (table + f"\n{saved['model']}, trained on the first {saved['train_images']:,} training images.\n"
            + sources(name))


def held_out_snn_mlp() -> str:
    return held_out("held_out_snn_mlp.json")


def held_out_snn_gru() -> str:
    return held_out("held_out_snn_gru.json")


# --- Thériault & François (2021): the log network -----------------------------------------------------

def log_findings() -> str:
    study = record("log_network_study.json")
    models = {row["model"]: row for row in study["linearisation"]}
    attacks = study["attacks"]
    paper = THERIAULT_FRANCOIS_2021
    epsilon = 0.1
    index = study["epsilons"].index(epsilon)
    joint, relu = models["log joint, cross-entropy"], models["relu 784-100-10"]
    rows = [
        ["accuracy, joint training, cross-entropy", percent(joint["accuracy"]), percent(paper["log network"])],
        ["accuracy, joint training, −x3[y]", percent(models["log joint, -x3[y]"]["accuracy"]),
         percent(paper["log network"])],
        ["accuracy, control network, cross-entropy, decaying lr + L2 1e-4 / constant lr",
         f"{percent(models['log control, cross-entropy, decaying lr + weak L2']['accuracy'])} / "
         f"{percent(models['log control, cross-entropy, constant lr']['accuracy'])}", "—"],
        ["accuracy, control network, −x3[y]", percent(models["log control, -x3[y]"]["accuracy"]), "—"],
        ["ReLU 784-100-10 → linearised", f"{percent(relu['accuracy'])} → {percent(relu['linearised'])}",
         f"{percent(paper['ReLU net'], 1)} → {percent(paper['ReLU net, linearised'], 1)}"],
        ["ReLU 784-100-10 trained on 5,000 images (matched accuracy) → linearised",
         " → ".join(percent(models["relu 784-100-10, matched accuracy"][key]) for key in ("accuracy", "linearised")),
         "—"],
        ["log network → linearised", f"{percent(joint['accuracy'])} → {percent(joint['linearised'])}",
         f"{percent(paper['log network'])} → {percent(paper['log network, linearised'])}"],
        ["w2 peaks at the prototype's class (share of prototypes), constant lr / decaying lr + L2",
         " / ".join(percent(share, 0) for share in study["sawtooth"].values()), "decaying lr only"],
        *[[f"x2 of prototypes {a} and {b}: slopes of the two clusters; nearer line classifies",
           f"{pair['slopes'][0]:.2f} / {pair['slopes'][1]:.2f}; {percent(pair['nearer_line_accuracy'], 1)}",
           "parallel lines"] for pair in study["hidden_pairs"] for a, b in [pair["classes"]]],
        ["perturbation size where the first-order prediction stays within 10 % (median), log / ReLU",
         " / ".join(f"{study['perturbations'][m]['median_agreement_limit']:.2g}" for m in ("log", "relu")),
         "small for both"],
        *[[f"{attack}: mean smallest flipping ε, log net / ReLU of matched accuracy / ReLU 784-100-10",
           " / ".join(f"{attacks[f'{model}, {attack}']['mean_smallest_epsilon']:.3f}"
                      for model in ("log net", "ReLU MLP, matched accuracy", "ReLU MLP")), "log net larger"]
          for attack in ("FGSM", "PGD-20")],
        [f"PGD-20: accuracy at ε = {epsilon:g}, log net / ReLU of matched accuracy / ReLU 784-100-10",
         " / ".join(percent(attacks[f"{model}, PGD-20"]["accuracy"][index], 1)
                    for model in ("log net", "ReLU MLP, matched accuracy", "ReLU MLP")), "log net higher"],
    ]
    return markdown(["finding", "measured", "paper"], rows, "lrr") + sources("log_network_study.json")


def log_spiking() -> str:
    current, poisson = record("bridge_verify_lognet_current.json"), record("bridge_verify_lognet_poisson.json")
    steps = [row["steps"] for row in current["results"]]
    ann_macs = current["ann_macs"]

    def line(title: str, saved: dict, cell: Callable[[dict], str]) -> list[str]:
        return [title, *(cell(row) for row in saved["results"])]

    rows = [
        line("spiking accuracy, constant current", current, lambda r: percent(r["accuracy"])),
        line("spiking accuracy, Poisson input", poisson, lambda r: percent(r["accuracy"])),
        line("correlation of decoded x2 with x2 (current)", current, lambda r: f"{r['correlation'][0]:.4f}"),
        line("mean absolute error of x2 (current)", current, lambda r: f"{r['mean_abs_error'][0]:.3f}"),
        line("hidden counts within one spike of the log law, current", current,
             lambda r: percent(r["first_layer_within_one_spike"])),
        line("the same, Poisson input", poisson, lambda r: percent(r["first_layer_within_one_spike"])),
        line("synaptic ops / rate-model MACs (current)", current,
             lambda r: f"{(r['synaptic_ops'] + current['input_ops']) / ann_macs:.2f}"),
    ]
    caption = f"Rate network: {percent(current['ann_accuracy'])} on the same {current['config']['test_images']:,} " \
              "test images.\n\n"
    table = markdown(["T", *map(str, steps)], rows, "l" + "r" * len(steps))
    return caption + table + sources("bridge_verify_lognet_current.json", "bridge_verify_lognet_poisson.json")


def weber_fechner() -> str:
    saved = record("weber_fechner_neuron.json")
    args, fit = saved["args"], saved["fit"]
    drives = f"{len(fit['drives'])}, {min(fit['drives']):g} to {max(fit['drives']):g}"
    rows = [[f"{args['growth']}", f"{args['theta0']:g}", str(args["steps"]), drives, f"{fit['slope']:.2f}",
             f"{saved['predicted_slope']:.2f}", f"{fit['max_residual']:.2f}",
             "identical" if saved["brian2_equal_torch"] else "differ"]]
    header = ["r", "θ₀", "T", "drives", "spikes per e-fold (fit)", "1 / ln r", "largest residual (spikes)",
              "Brian2 against torch"]
    return markdown(header, rows, "rrrlrrrl") + sources("weber_fechner_neuron.json")


# --- Papakipos & Beck: the neural mesh ---------------------------------------------------------------

MESH_NEURONS, MESH_WINDOW, MESH_GRID = "mesh_neurons_sweep.json", "mesh_window_sweep.json", "mesh_grid_shape_sweep.json"
MESH_NEURONS_NOCLIP = "mesh_neurons_noclip_sweep.json"


def spread(statistics: dict) -> str:
    """mean ± std (over seeds) of an accuracy, in percent."""
    return f"{percent(statistics['mean'])} ± {percent(statistics['std'] or 0.0)}"


def welch_p(first: dict, second: dict) -> float:
    """Welch's t-test of two means over seeds, from their statistics (two-sided p)."""
    from scipy.stats import ttest_ind_from_stats

    return ttest_ind_from_stats(first["mean"], first["std"], first["n"], second["mean"], second["std"], second["n"],
                                equal_var=False).pvalue


def sweep_keys(name: str) -> dict[tuple, dict]:
    """Each row of a sweep record by its axis values in the spec's order (tables by their label);
    the record's keys are sorted, the spec keeps the axes' order."""
    saved = record(name)
    axes = [axis for axis in saved["spec"]["axis_order"] if axis != "seed"]

    def key(value):
        return value["label"] if isinstance(value, dict) else value

    return {tuple(key(row["axes"][axis]) for axis in axes): row["metrics"] for row in saved["rows"]}


def sweep_accuracy(name: str) -> dict[tuple, dict]:
    """The test accuracy of each row of a sweep record, keyed as by :func:`sweep_keys`."""
    return {key: metrics["test_accuracy"] for key, metrics in sweep_keys(name).items()}


def mesh_neurons() -> str:
    accuracy, without_clip = sweep_accuracy(MESH_NEURONS), sweep_accuracy(MESH_NEURONS_NOCLIP)
    rows = []
    for neurons in record(MESH_NEURONS)["spec"]["axes"]["model.neurons"]:
        mesh, snn, noclip = accuracy[(neurons, "mesh")], accuracy[(neurons, "snn-mesh")], without_clip[(neurons,)]
        clip, relu = accuracy[(neurons, "one-layer-clip")], accuracy[(neurons, "one-layer-relu")]
        best = max(clip, relu, key=lambda s: s["mean"])
        cells = [f"{100 * (m['mean'] - best['mean']):+.2f} ({p_value(welch_p(m, best))})" for m in (mesh, noclip)]
        rows.append([str(neurons), spread(mesh), spread(noclip), spread(clip), spread(relu), *cells, spread(snn),
                     f"{100 * (snn['mean'] - mesh['mean']):+.2f}"])
    header = ["neurons", "mesh (clip: the paper's best)", "mesh, no clip", "one-layer net, clip", "one-layer net, ReLU",
              "mesh − better one-layer net (points; Welch)", "mesh without clip − better one-layer net",
              "spiking mesh", "spiking − rate mesh (points)"]
    seeds = record(MESH_NEURONS)["spec"]["axes"]["seed"]
    return (markdown(header, rows, "r" * len(header)) + f"\nTest accuracy on all 10,000 MNIST test images, mean ± std "
            f"over {len(seeds)} seeds.\n" + sources(MESH_NEURONS, MESH_NEURONS_NOCLIP))


def mesh_window() -> str:
    accuracy = sweep_accuracy(MESH_WINDOW)
    axes = record(MESH_WINDOW)["spec"]["axes"]
    rows = [[str(window), *(spread(accuracy[(window, clip)]) for clip in axes["model.clip"])]
            for window in axes["model.window"]]
    header = ["window (steps per image)", *(f"clip {yes_no(clip)}" for clip in axes["model.clip"])]
    return markdown(header, rows, "rrr") + sources(MESH_WINDOW)


def mesh_grid_shape() -> str:
    accuracy = sweep_accuracy(MESH_GRID)
    neurons = record(MESH_GRID)["spec"]["settings"]["model.neurons"]
    shapes = {width: f"{neurons // width} × {width}" for width in record(MESH_GRID)["spec"]["axes"]["model.width"]}
    rows = [[shape, spread(accuracy[(width,)])] for width, shape in shapes.items()]
    first, second = (accuracy[(width,)] for width in shapes)
    difference = 100 * (first["mean"] - second["mean"])
    caption = f"\nDifference {difference:+.2f} points ({p_value(welch_p(first, second))}, Welch).\n"
    return markdown(["grid", "test accuracy"], rows, "lr") + caption + sources(MESH_GRID)


def mesh_energy() -> str:
    saved = record("mesh_energy.json")
    rows = []
    for name, model in saved["models"].items():
        firing, signed = model["firing_energy_mean_per_step"], model["energy_mean_per_step"]
        trend = "falls" if firing[-1] < firing[0] else "rises"
        rows.append([name, percent(model["test_accuracy"]), f"{firing[0]:.1f}", f"{firing[-1]:.1f}", trend,
                     f"{signed[0]:.1f} → {signed[-1]:.1f}"])
    header = ["mesh, input", "test accuracy", "firing energy Σ relu(s), step 1", f"step {len(firing)}",
              "firing energy over the window", "signed energy Σ s"]
    args = saved["args"]
    caption = (f"\nMeans over the first {args['average_images']:,} test images; {args['neurons']} neurons, "
               f"{args['epochs']} epochs.\n")
    return markdown(header, rows, "lrrrll") + caption + sources("mesh_energy.json")


def mesh_speed() -> str:
    saved = record("mesh_speed.json")
    rows = [[str(row["neurons"]), f"{row['mesh_step_ms']:.3f}", f"{row['dense_layer_ms']:.3f}", f"{row['ratio']:.2f}",
             *(f"{row['epoch_seconds'][m]:.1f}" for m in ("mesh", "snn-mesh", "one-layer")),
             f"{row['spiking_over_rate_epoch']:.2f}"] for row in saved["rows"]]
    header = ["neurons", "mesh step (ms)", "dense layer N → N (ms)", "step ratio (target ≤ 3)", "mesh epoch (s)",
              "spiking mesh epoch (s)", "one-layer epoch (s)", "spiking / rate epoch (target ≤ 3)"]
    settings = saved["settings"]
    caption = (f"\nBatch {settings['batch_size']}, {settings['threads']} torch threads, window {saved['window']}; "
               f"step: forward and backward, median of {settings['repeats']}; epoch: 60,000 training images.\n")
    return markdown(header, rows, "rrrrrrrr") + caption + sources("mesh_speed.json")


def held_out_mesh() -> str:
    return held_out("held_out_mesh.json")


def held_out_snn_mesh() -> str:
    return held_out("held_out_snn_mesh.json")


# --- Shader: positional neuron layers -----------------------------------------------------------------

POSITIONAL_PRUNING, POSITIONAL_GENERALISATION = "positional_pruning_sweep.json", "positional_generalisation_sweep.json"


def positional_pruning() -> str:
    rows_by_variant = {key[0]: metrics for key, metrics in sweep_keys(POSITIONAL_PRUNING).items()}
    variants = list(rows_by_variant)
    levels = sorted(float(m.removeprefix("pruned_")) for m in rows_by_variant[variants[0]] if m.startswith("pruned_"))
    rows = []
    for level in [0.0, *levels]:
        metric = "test_accuracy" if level == 0 else f"pruned_{level:g}"
        cells = [spread(rows_by_variant[v][metric]) if metric in rows_by_variant[v] else "—" for v in variants]
        positional, vanilla = rows_by_variant["positional"][metric], rows_by_variant["vanilla"][metric]
        difference = f"{100 * (positional['mean'] - vanilla['mean']):+.1f} ({p_value(welch_p(positional, vanilla))})"
        rows.append([f"{level:g}", *cells, difference])
    header = ["pruned", *variants, "positional − vanilla (points; Welch)"]
    trials = record(POSITIONAL_PRUNING)["spec"]["axes"]["seed"]
    return (markdown(header, rows, "r" * len(header)) + f"\nTest accuracy (all 10,000 test images), mean ± std over "
            f"{len(trials)} trials; 0: unpruned.\n" + sources(POSITIONAL_PRUNING))


def positional_generalisation() -> str:
    saved = sweep_keys(POSITIONAL_GENERALISATION)
    counts = record(POSITIONAL_GENERALISATION)["spec"]["axes"]["train_images"]
    rows = []
    for count in counts:
        positional, vanilla = saved[(count, "positional")]["test_accuracy"], saved[(count, "vanilla")]["test_accuracy"]
        rows.append([f"{count / 60_000:.3f} ({count:,})", spread(positional), spread(vanilla),
                     f"{100 * (positional['mean'] - vanilla['mean']):+.2f} ({p_value(welch_p(positional, vanilla))})"])
    trials = record(POSITIONAL_GENERALISATION)["spec"]["axes"]["seed"]
    return (markdown(["proportion of the training set (images)", "positional", "vanilla",
                      "positional − vanilla (points; Welch)"], rows, "rrrr")
            + f"\nTest accuracy (all 10,000 test images), mean ± std over {len(trials)} trials.\n"
            + sources(POSITIONAL_GENERALISATION))


def positional_speed() -> str:
    saved = record("positional_speed.json")
    rows = [[row["layer"], f"{row['ms']['nn.Linear']:.3f}", f"{row['ms']['PositionalLinear']:.3f}",
             f"{row['ratio']:.2f}", "—" if "distances and falloff alone" not in row["ms"]
             else f"{row['ms']['distances and falloff alone']:.3f}"] for row in saved["rows"]]
    settings = saved["settings"]
    caption = (f"\nOne training step (forward, backward, Adam), batch {settings['batch_size']}, {settings['threads']} "
               f"torch threads; medians of {settings['repeats']} alternating timings of {settings['calls']} calls.\n")
    return (markdown(["layer", "nn.Linear (ms)", "PositionalLinear (ms)", "ratio (target ≤ 1.5)",
                      "distances and falloff alone (ms)"], rows, "lrrrr") + caption + sources("positional_speed.json"))


# --- Wołczyk et al.: spatial networks ----------------------------------------------------------------------

WOLCZYK_2019_TABLE1 = {  # (input, network) -> (full, split, drop): (mean, std)
    ("concatenated", "regular"): ((0.92, 0.04), (0.80, 0.13), (0.11, 0.15)),
    ("concatenated", "spatial"): ((0.92, 0.04), (0.92, 0.04), (0.00, 0.00)),
    ("mixed", "regular"): ((0.88, 0.04), (0.70, 0.17), (0.19, 0.20)),
    ("mixed", "spatial"): ((0.89, 0.04), (0.89, 0.03), (0.00, 0.00)),
    ("sequential", "regular"): ((0.92, 0.05), (0.33, 0.20), (0.60, 0.20)),
    ("sequential", "spatial"): ((0.92, 0.05), (0.84, 0.08), (0.07, 0.07)),
}


def _three_digits(statistics: dict) -> str:
    return f"{statistics['mean']:.3f} ± {statistics['std'] or 0.0:.3f}"


def split_table(name: str, with_paper: bool) -> str:
    saved = sweep_keys(name)
    rows = []
    for (representation, network), metrics in saved.items():
        cells = [representation, network]
        for index, measure in enumerate(("full", "split", "drop")):
            ours = metrics[measure]
            cell = _three_digits(ours)
            if with_paper:
                paper_mean, paper_std = WOLCZYK_2019_TABLE1[(representation, network)][index]
                within = abs(ours["mean"] - paper_mean) <= paper_std + 0.005  # the paper rounds to 2 digits
                cell += f" (paper {paper_mean:.2f} ± {paper_std:.2f}, {'within' if within else 'outside'})"
            cells.append(cell)
        cells.append(percent(metrics["cross_task_weight_share"]["mean"], 1))
        if "cross_task_spike_share" in metrics:
            cells.append(percent(metrics["cross_task_spike_share"]["mean"], 1))
        rows.append(cells)
    header = ["input", "network", "full network", "split network", "accuracy drop", "cross-task share of |w|"]
    if any(len(row) > len(header) for row in rows):
        header.append("cross-task share of spike traffic")
    runs = record(name)["spec"]["axes"]["seed"]
    return (markdown(header, rows, "ll" + "r" * (len(header) - 2)) + f"\nAccuracy averaged over the two tasks (all "
            f"10,000 test images of each), mean ± std over {len(runs)} runs.\n" + sources(name))


def spatial_table1() -> str:
    return split_table("spatial_table1_sweep.json", with_paper=True)


def spatial_spiking() -> str:
    return split_table("spatial_spiking_sweep.json", with_paper=False)


# --- the README's summary of the reproductions --------------------------------------------------------

def reproductions() -> str:
    base = {row["model"]: row for row in record("baselines.json")["rows"]}
    study = {row["model"]: row for row in record("log_network_study.json")["linearisation"]}
    options = {row["network"].split("), ")[-1]: row for row in record("conversion_options.json")["rows"]}
    default = options["99.9 %, v_init 0.5"]
    cnn = {row["converter"]: row for row in record("conversion_cnn_retrained_t8_again.json")["rows"]}["this project"]
    log_t64 = next(row for row in record("bridge_verify_lognet_current.json")["results"] if row["steps"] == 64)
    log_ann = record("bridge_verify_lognet_current.json")["ann_accuracy"]
    conversion = "[conversion](docs/gupta-naveed-conversion.md)"
    log_page = "[log network](docs/theriault-francois-2021.md)"
    dc_page = "[Diehl & Cook](docs/diehl-cook-2015.md)"
    rows = [
        ["Gupta & Naveed", "CNN, full test set", percent(base["cnn"]["test_accuracy"]), percent(base["cnn"]["paper"]),
         conversion],
        ["Gupta & Naveed", "GRU(128) over rows", percent(base["gru"]["test_accuracy"]), percent(base["gru"]["paper"]),
         conversion],
        ["Gupta & Naveed §3.5", "converted ReLU MLP at T = 4 (ANN in brackets)",
         f"{percent(default['spiking_accuracy']['4'])} ({percent(default['ann_accuracy'])})", "spikes carry the ReLU",
         conversion],
        ["Gupta & Naveed §3.5", "converted CNN at T = 8 (ANN in brackets)",
         f"{percent(cnn['accuracy'])} ({percent(cnn['ann_accuracy'])})", "spikes carry the ReLU", conversion],
    ]
    for name in DIEHL_COOK_REPRODUCTIONS:
        saved = record(name)
        changed = f", {_model(saved)}" if saved["parameters_changed"] else ""
        rows.append(["Diehl & Cook 2015", f"{saved['neurons']} neurons, {_passes(saved)}{changed}",
                     percent(saved["test_accuracy"]),
                     percent(DIEHL_COOK_2015[saved["neurons"]], 1), dc_page])
    joint = study["log joint, cross-entropy"]
    rows += [
        ["Thériault & François 2021", "log network", percent(joint["accuracy"]),
         percent(THERIAULT_FRANCOIS_2021["log network"]), log_page],
        ["Thériault & François 2021", "log network linearised", percent(joint["linearised"]),
         percent(THERIAULT_FRANCOIS_2021["log network, linearised"]), log_page],
        ["this project", "log network in Weber-Fechner spikes, T = 64 (rate network in brackets)",
         f"{percent(log_t64['accuracy'])} ({percent(log_ann)})", "—", log_page],
    ]
    mesh, mesh_page = sweep_accuracy(MESH_NEURONS), "[neural mesh](docs/papakipos-beck-neural-mesh.md)"
    without_clip = sweep_accuracy(MESH_NEURONS_NOCLIP)[(16,)]["mean"]
    rows.append(["Papakipos & Beck", "mesh with clip / without clip against the one-layer net (ReLU), 16 neurons",
                 f"{percent(mesh[(16, 'mesh')]['mean'])} / {percent(without_clip)} against "
                 f"{percent(mesh[(16, 'one-layer-relu')]['mean'])}", "the mesh wins", mesh_page])
    energy = record("mesh_energy.json")["models"]["rate mesh, input once"]["firing_energy_mean_per_step"]
    rows.append(["Papakipos & Beck", "firing energy over 10 steps, input shown once",
                 f"{energy[0]:.1f} → {energy[-1]:.1f}", "falls", mesh_page])
    pruning, positional_page = sweep_keys(POSITIONAL_PRUNING), "[positional layers](docs/shader-positional-layers.md)"
    at = {name: pruning[(name,)]["pruned_0.3"]["mean"] for name in ("positional", "vanilla", "vanilla-l2-x100")}
    rows.append(["Shader", "30 % of hidden neurons pruned: positional, plain, plain with L2 ×100",
                 " / ".join(percent(value) for value in at.values()), "positional wins most here",
                 positional_page])
    table1 = sweep_keys("spatial_table1_sweep.json")
    spatial_page = "[spatial networks](docs/wolczyk-spatial-networks.md)"
    for network in ("regular", "spatial"):
        drop = table1[("sequential", network)]["drop"]["mean"]
        rows.append(["Wołczyk et al. 2019", f"{network} net, sequential input: accuracy drop at the split",
                     f"{drop:.2f}", f"{WOLCZYK_2019_TABLE1[('sequential', network)][2][0]:.2f}", spatial_page])
    names = ["baselines.json", "conversion_options.json", "conversion_cnn_retrained_t8_again.json",
             *DIEHL_COOK_REPRODUCTIONS, "log_network_study.json", "bridge_verify_lognet_current.json",
             MESH_NEURONS, MESH_NEURONS_NOCLIP, "mesh_energy.json", POSITIONAL_PRUNING, "spatial_table1_sweep.json"]
    table = markdown(["paper", "figure", "measured here", "paper's", "details"], rows, "llrrl")
    return table + "\nRecords: " + ", ".join(f"`benchmarks/results/{n}`" for n in names) + ".\n"


TABLES: dict[str, Callable[[], str]] = {function.__name__.replace("_", "-"): function for function in (
    demo, reproductions, baselines, mlp_equivalence, conversion_options, conversion_options_earlier,
    peers_mlp_retrained, peers_mlp_earlier, peers_cnn_retrained, peers_cnn_earlier, diehl_cook_accuracy,
    diehl_cook_exponential_check,
    diehl_cook_seeds, diehl_cook_speed, diehl_cook_speed_current, diehl_cook_speed_bindsnet,
    diehl_cook_speed_bindsnet_exponential, diehl_cook_speed_6400, diehl_cook_spike_queue, diehl_cook_profile,
    diehl_cook_bindsnet_accuracy,
    sweeps_speed, neuron_step,
    surrogate_speed,
    surrogate_accuracy, conversion_vs_surrogate_mlp, conversion_vs_surrogate_cnn, conversion_vs_surrogate_mlp_membrane,
    held_out_snn_mlp, held_out_snn_gru, log_findings, log_spiking,
    weber_fechner, mesh_neurons, mesh_window, mesh_grid_shape, mesh_energy, mesh_speed, held_out_mesh,
    held_out_snn_mesh, positional_pruning, positional_generalisation, positional_speed, spatial_table1,
    spatial_spiking,
)}


def render(text: str) -> tuple[str, list[str]]:
    """``text`` with every generated table rebuilt, and the problems found (an unknown table, a
    missing or unreadable record); a table with a problem is left as it was."""
    from spikebridge.records import RecordError

    problems = []

    def rebuild(match: re.Match) -> str:
        name = match["name"]
        if name not in TABLES:
            problems.append(f"unknown table {name!r}; known: {', '.join(TABLES)}")
            return match[0]
        try:
            return match["open"] + TABLES[name]() + match["close"]
        except RecordError as exc:
            problems.append(f"table {name!r}: {exc}")
            return match[0]

    return BLOCK.sub(rebuild, text), problems


def _relative(message: str) -> str:
    return message.replace(f"{ROOT}/", "")


def check(root: Path = ROOT) -> list[str]:
    """Every way in which the docs under ``root`` disagree with the records; empty when they agree."""
    from spikebridge.records import RecordError, read_record

    problems: list[str] = []
    for path in sorted(RESULTS.glob("*.json")):
        try:
            read_record(path)
        except RecordError as exc:
            problems.append(str(exc))
    for document in documents(root):
        text = document.read_text()
        for target in sorted(set(LOCAL_LINK.findall(text))):
            path, _, anchor = target.partition("#")
            if not (document.parent / path).exists():
                problems.append(f"{document.relative_to(root)} links to {target}, which does not exist")
            elif anchor and anchor not in anchors(document.parent / path):
                problems.append(f"{document.relative_to(root)} links to {target}, a heading {path} does not have")
        handwritten = BLOCK.sub("", text)  # the commands inside generated tables come from the records
        for name in sorted(set(RESULTS_NAMED.findall(handwritten))):
            if not (RESULTS / name).is_file():
                problems.append(f"{document.relative_to(root)} names benchmarks/results/{name}, which does not exist")
        rebuilt, found = render(text)
        problems += [f"{document.relative_to(root)}: {problem}" for problem in found]
        for old, new in zip(BLOCK.finditer(text), BLOCK.finditer(rebuilt), strict=True):
            if old["body"] != new["body"] and not any(f"table {old['name']!r}" in p for p in found):
                problems.append(f"{document.relative_to(root)}: table {old['name']!r} differs from its records; "
                                "run `python benchmarks/report.py`")
    return [_relative(problem) for problem in problems]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a table differs")
    args = parser.parse_args()
    if args.check:
        problems = check()
        for problem in problems:
            print(problem)
        print("docs agree with their records" if not problems else f"{len(problems)} problem(s)")
        return 1 if problems else 0
    for document in documents():
        text = document.read_text()
        rebuilt, problems = render(text)
        for problem in problems:
            print(f"{document.relative_to(ROOT)}: {_relative(problem)}")
        if rebuilt != text:
            from idx_datasets.atomic import write_bytes_atomic

            write_bytes_atomic(document, rebuilt.encode())
            print(f"rewrote the tables of {document.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
