"""The ``spikebridge`` command, run as a user runs it: in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from spikebridge.compare import COMPARISONS


def spikebridge(*args: str, env: dict[str, str] | None = None, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "spikebridge", *args], capture_output=True, text=True,
        env={**os.environ, **(env or {})}, cwd=cwd, timeout=600,
    )


def test_help_lists_every_subcommand():
    done = spikebridge("--help")
    assert done.returncode == 0
    for command in ("data", "train", "evaluate", "compare"):
        assert command in done.stdout


@pytest.mark.parametrize("command", [["data"], ["data", "fetch"], ["train"], ["evaluate"], ["compare"]])
def test_every_subcommand_has_help_with_defaults(command):
    done = spikebridge(*command, "--help")
    assert done.returncode == 0
    if command != ["data"]:
        assert "(default:" in done.stdout


def test_data_fetch_reports_the_source(mnist_folder):
    done = spikebridge("data", "fetch", "mnist")
    assert done.returncode == 0, done.stderr
    assert "MNIST: ready (served by cache" in done.stdout


def test_corrupt_data_gives_one_line_error_and_status_2(private_mnist_copy, tmp_path):
    labels = private_mnist_copy / "train-labels-idx1-ubyte"
    labels.write_bytes(labels.read_bytes()[:-1] + b"\x0b")
    done = spikebridge("train", "mlp", "--epochs", "1", "--train-images", "100", "--runs-dir", str(tmp_path),
                       env={"SPIKEBRIDGE_DATA": str(private_mnist_copy.parent)})
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert str(labels) in line and "checksum" in line


def test_missing_run_folder_gives_one_line_error(tmp_path):
    done = spikebridge("evaluate", str(tmp_path / "nothing-here"))
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_train_then_evaluate_a_run(tmp_path, mnist_folder):
    done = spikebridge("train", "mlp", "--set", "widths=[784,64,10]", "--epochs", "3", "--batch-size", "32",
                       "--lr", "3e-3", "--train-images", "3000", "--test-images", "1000", "--runs-dir", str(tmp_path))
    assert done.returncode == 0, done.stderr
    (run,) = tmp_path.iterdir()
    assert run.name.startswith("mlp-") and f"run folder: {run}" in done.stdout
    evaluated = spikebridge("evaluate", str(run), "--test-images", "1000")
    assert evaluated.returncode == 0, evaluated.stderr
    report = json.loads((run / "evaluation.json").read_text())
    assert report["test_images"] == 1000 and report["test_accuracy"] > 0.85
    assert sum(map(sum, report["confusion_matrix"])) == 1000
    assert [set(entry) for entry in report["trained_at"]] == [{"commit"}]  # trained in one go
    assert (run / "confusion_matrix.png").stat().st_size > 0

    verified = spikebridge("bridge", "verify", str(run), "--steps", "2", "16", "--test-images", "300",
                           "--v-init", "0", "--bias-correction-steps", "2")
    assert verified.returncode == 0, verified.stderr
    (folder,) = run.glob("bridge-*")
    config = json.loads((folder / "config.json").read_text())
    assert config["options"]["bias_correction_steps"] == 2 and config["options"]["v_init"] == 0
    equivalence = json.loads((folder / "equivalence.json").read_text())
    assert equivalence["ann_accuracy"] > 0.85 and (folder / "equivalence.png").stat().st_size > 0
    assert "| 16 |" in verified.stdout and "spiking − ANN (points)" in verified.stdout


@pytest.mark.slow
def test_compare_prints_and_saves_one_row_per_model(tmp_path, mnist_folder):
    done = spikebridge("compare", "--train-images", "1000", "--test-images", "300", "--epochs", "1",
                       "--stdp-images", "200", "--runs-dir", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "| model | rate accuracy | spiking accuracy | spiking version | wall time |" in done.stdout
    (folder,) = tmp_path.glob("compare-*")
    table = json.loads((folder / "comparison.json").read_text())
    assert [row["model"] for row in table["rows"]] == [entry.name for entry in COMPARISONS if entry.by_default]
    assert table["settings"]["train_images"] == 1000 and table["settings"]["stdp_train_images"] == 200
    rows = {row["model"]: row for row in table["rows"]}
    for name in ("mlp", "cnn"):  # the converted network keeps (almost) all of the rate model's accuracy
        row = rows[name]
        assert 0.5 < row["rate_accuracy"] <= 1.0 and abs(row["spiking_accuracy"] - row["rate_accuracy"]) < 0.05
        assert "IF conversion" in row["spiking_method"]
    surrogate_row = rows["snn-mlp"]  # trained directly as a spiking network: well above chance
    assert surrogate_row["rate_accuracy"] is None and 0.3 < surrogate_row["spiking_accuracy"] <= 1.0
    assert "surrogate gradients" in surrogate_row["spiking_method"] and "T = 8" in surrogate_row["spiking_method"]
    gru_row, log_row, stdp_row = rows["gru"], rows["lognet"], rows["diehl-cook-100"]
    assert 0.1 < gru_row["rate_accuracy"] <= 1.0 and gru_row["spiking_accuracy"] is None
    reader = rows["snn-gru"]
    assert 0.1 < reader["spiking_accuracy"] <= 1.0 and "T = 28 (1 per row)" in reader["spiking_method"]
    assert 0.1 < log_row["rate_accuracy"] and abs(log_row["spiking_accuracy"] - log_row["rate_accuracy"]) < 0.05
    assert "Weber-Fechner" in log_row["spiking_method"]
    assert stdp_row["rate_accuracy"] is None and 0.1 < stdp_row["spiking_accuracy"] <= 1.0
    assert "STDP" in stdp_row["spiking_method"]
    assert (folder / "comparison.md").read_text().count("\n") == 2 + len(table["rows"])


def test_missing_compiler_names_the_fix_and_offers_runtime(tmp_path, mnist_folder):
    done = spikebridge("diehl-cook", "train", "--neurons", "5", "--images", "10", "--runs-dir", str(tmp_path),
                       env={"PATH": str(tmp_path / "no-compilers-here")})
    assert done.returncode == 2 and "Traceback" not in done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert "C++ compiler" in line and "--device runtime" in line


def test_compare_refuses_a_missing_compiler_before_training_anything(tmp_path, mnist_folder):
    done = spikebridge("compare", "--models", "mlp", "diehl-cook-100", "--runs-dir", str(tmp_path),
                       env={"PATH": str(tmp_path / "no-compilers-here")})
    assert done.returncode == 2 and "Traceback" not in done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert "C++ compiler" in line and "--device runtime" in line
    assert not any(tmp_path.iterdir())  # nothing trained, no run folder


@pytest.mark.slow
def test_compare_runs_diehl_cook_in_runtime_mode_without_a_compiler(tmp_path, mnist_folder):
    record = tmp_path / "record.json"
    done = spikebridge("compare", "--models", "diehl-cook-100", "--device", "runtime", "--stdp-images", "10",
                       "--test-images", "10", "--runs-dir", str(tmp_path / "runs"), "--record", str(record),
                       env={"PATH": str(tmp_path / "no-compilers-here")})
    assert done.returncode == 0, done.stderr
    saved = json.loads(record.read_text())
    assert saved["settings"]["stdp_device"] == "runtime"
    (row,) = saved["rows"]
    assert "Brian2 runtime" in row["spiking_method"] and 0.0 <= row["spiking_accuracy"] <= 1.0
    assert saved["provenance"]["command"].startswith("spikebridge compare --models diehl-cook-100")
    assert saved["provenance"]["seeds"] == {"training": 0}


def test_cuda_device_without_brian2cuda_is_refused_in_one_line(tmp_path, mnist_folder):
    done = spikebridge("diehl-cook", "train", "--neurons", "5", "--images", "10", "--device", "cuda_standalone",
                       "--runs-dir", str(tmp_path))
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert "brian2cuda" in line and "cpp_standalone" in line


def test_an_unknown_or_mistyped_diehl_cook_constant_is_refused_in_one_line(tmp_path):
    for setting, words in (("theta_plus=0.1", "no constant 'theta_plus'"),
                           ("min_spikes=4.5", "min_spikes must be of type int")):
        done = spikebridge("diehl-cook", "train", "--neurons", "5", "--images", "10", "--set", setting,
                           "--runs-dir", str(tmp_path))
        assert done.returncode == 2
        (line,) = done.stderr.strip().splitlines()
        assert words in line
    assert not any(tmp_path.iterdir())  # refused before a run folder was made
