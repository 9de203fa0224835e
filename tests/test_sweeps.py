"""Sweeps: cell expansion, refusals, the report's statistics, resuming, failures, and the Ray path."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from spikebridge.sweep_jobs import JOB_KINDS
from spikebridge.sweeps import (
    CELLS,
    SweepError,
    SweepSpec,
    metric_families,
    report_markdown,
    run_cell,
    run_sweep,
    sweep_report,
)

TINY = {  # four cells of a small MLP, a few seconds each
    "name": "tiny", "kind": "train", "threads": 1,
    "settings": {"model": "mlp", "epochs": 2, "train_images": 600, "test_images": 300, "batch_size": 64,
                 "model.dropout": 0.0},
    "axes": {"model.widths": [[784, 16, 10], [784, 32, 10]], "seed": [0, 1]},
}
DETERMINISTIC = ("test_accuracy", "train_accuracy", "train_loss")  # "seconds" is a wall time


def test_cells_expand_in_spec_order_with_readable_names():
    spec = SweepSpec.from_mapping({**TINY, "axes": {"learning_rate": [0.001, 0.01], "seed": [0, 1, 2]}})
    cells = spec.cells()
    assert [cell.name for cell in cells] == [
        f"learning_rate={rate}_seed={seed}" for rate in ("0.001", "0.01") for seed in (0, 1, 2)]
    assert cells[4].settings == {**TINY["settings"], "learning_rate": 0.01, "seed": 1}
    assert SweepSpec.from_mapping(TINY).cells()[1].name == "model.widths=784x16x10_seed=1"


def test_an_axis_of_tables_gives_each_cell_its_table_of_settings_named_by_its_label(tmp_path):
    narrow = {"label": "narrow", "model.widths": [784, 16, 10]}
    spec = SweepSpec.from_mapping({**TINY, "axes": {"variant": [narrow, {"learning_rate": 0.01}], "seed": [0]}})
    spec.check()
    cells = spec.cells()
    assert [cell.name for cell in cells] == ["variant=narrow_seed=0", "variant=learning_rate-0.01_seed=0"]
    assert cells[0].settings == {**TINY["settings"], "model.widths": [784, 16, 10], "seed": 0}
    assert cells[1].settings == {**TINY["settings"], "learning_rate": 0.01, "seed": 0}
    assert report_markdown(spec, [{"axes": {"variant": narrow}, "metrics": {}}]).splitlines()[2] == "| narrow |"


@pytest.mark.parametrize(("change", "words"), [
    ({"kind": "trian"}, f"unknown job kind 'trian'; choose one of {sorted(JOB_KINDS)}"),
    ({"axes": {"epoch": [1, 2]}}, "job kind 'train' has no setting 'epoch'; it has ["),
    ({"axes": {"model.widht": [1]}}, "model 'mlp' has no setting 'widht'"),
    ({"axes": {"seed": []}}, "axis 'seed' must be a non-empty list"),
    ({"colour": "red"}, "a sweep spec has no field 'colour'"),
    ({"axes": {"variant": [{"label": "a", "epochs": 3}]}},
     "'epochs' is both a fixed setting and set by axis 'variant'"),
    ({"axes": {"variant": [{"label": "a"}, 3]}}, "axis 'variant' mixes tables of settings with single values"),
])
def test_a_bad_spec_is_refused_before_anything_runs(tmp_path, change, words):
    with pytest.raises((SweepError, ValueError), match=words.replace("[", r"\[").replace("]", r"\]")):
        run_sweep({**TINY, **change}, runs_root=tmp_path, progress=False)
    assert not any(tmp_path.iterdir())


def test_a_changed_spec_on_an_existing_folder_is_refused_naming_the_setting(tmp_path):
    folder = tmp_path / "sweep"
    folder.mkdir()
    (folder / "spec.json").write_text(json.dumps(SweepSpec.from_mapping(TINY).to_json()))
    changed = {**TINY, "settings": {**TINY["settings"], "epochs": 3}}
    with pytest.raises(SweepError, match="settings.epochs is 2 there, 3 here"):
        run_sweep(changed, folder=folder, progress=False)
    assert not (folder / CELLS).exists()


def test_the_report_gives_mean_std_and_n_over_the_seeds(tmp_path):
    spec = SweepSpec.from_mapping({**TINY, "axes": {"learning_rate": [0.1, 0.2], "seed": [0, 1, 2]}})
    (tmp_path / "spec.json").write_text(json.dumps(spec.to_json()))
    # by hand: mean 0.7, sample std sqrt((0.04 + 0 + 0.04) / 2) = 0.2; mean 0.5, std sqrt(0.02 / 1) = 0.1414
    accuracies = {(0.1, 0): 0.5, (0.1, 1): 0.7, (0.1, 2): 0.9, (0.2, 0): 0.4, (0.2, 1): 0.6}  # (0.2, 2) failed
    for cell in spec.cells():
        key = (cell.axes["learning_rate"], cell.axes["seed"])
        status = {"status": "done", "metrics": {"test_accuracy": accuracies[key]}} if key in accuracies else \
            {"status": "failed", "error": "RuntimeError: boom"}
        (tmp_path / CELLS / cell.name).mkdir(parents=True)
        (tmp_path / CELLS / cell.name / "cell.json").write_text(json.dumps(status))
    record = sweep_report(tmp_path)
    first, second = (row["metrics"]["test_accuracy"] for row in record["rows"])
    assert [row["axes"] for row in record["rows"]] == [{"learning_rate": 0.1}, {"learning_rate": 0.2}]
    assert first["mean"] == pytest.approx(0.7) and first["std"] == pytest.approx(0.2) and first["n"] == 3
    assert second["mean"] == pytest.approx(0.5) and second["std"] == pytest.approx(0.1414213562) and second["n"] == 2
    assert record["failed"] == ["learning_rate=0.2_seed=2"]
    assert "| 0.1 | 0.7 ± 0.2 (n = 3) |" in (tmp_path / "report.md").read_text()
    assert (tmp_path / "report.png").stat().st_size > 0
    assert record["provenance"]["seeds"] == {"seed": [0, 1, 2]}
    assert not list(tmp_path.glob("report_*.png"))  # no family of metrics here


def test_the_spec_saved_in_the_folder_keeps_the_order_of_its_axes(tmp_path):
    """The axes' order names the cells; the folder's spec.json is written with sorted keys."""
    spec = SweepSpec.from_mapping({**TINY, "axes": {"variant": [{"label": "a"}], "seed": [0], "batch_size": [64]}})
    (tmp_path / "spec.json").write_text(json.dumps(spec.to_json(), sort_keys=True))
    reread = SweepSpec.from_mapping(json.loads((tmp_path / "spec.json").read_text()))
    assert [cell.name for cell in reread.cells()] == ["variant=a_seed=0_batch_size=64"]


def test_a_family_of_metrics_is_drawn_against_its_values():
    rows = [{"axes": {}, "metrics": {name: {"mean": 0.5, "std": None, "n": 1} for name in
                                     ("pruned_0.5", "pruned_0.05", "pruned_0.25", "accuracy_T8", "test_accuracy")}}]
    assert metric_families(rows) == {"pruned": [(0.05, "pruned_0.05"), (0.25, "pruned_0.25"), (0.5, "pruned_0.5")]}


def _deterministic_rows(folder: Path) -> list:
    rows = json.loads((folder / "report.json").read_text())["rows"]
    return [(row["axes"], {m: row["metrics"][m] for m in DETERMINISTIC}) for row in rows]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, mnist_folder) -> Path:
    return run_sweep(TINY, runs_root=tmp_path_factory.mktemp("pool"), workers=2, progress=False)


@pytest.mark.slow
def test_a_killed_sweep_resumes_and_reports_as_if_uninterrupted(tmp_path, uninterrupted):
    """kill -9 of the driver and its workers once a cell has finished; the same command on the folder
    skips the finished cells and ends with the report of the uninterrupted sweep."""
    spec_file = tmp_path / "tiny.toml"
    spec_file.write_text(_toml(TINY))
    folder = tmp_path / "sweep"
    command = [sys.executable, "-m", "spikebridge", "sweep", "run", str(spec_file), "--folder", str(folder),
               "--workers", "2"]
    driver = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 300
    while not _statuses(folder).count("done") and time.monotonic() < deadline:
        time.sleep(0.2)
    os.killpg(driver.pid, signal.SIGKILL)
    driver.wait()
    finished = {name: (folder / CELLS / name / "cell.json").stat().st_mtime_ns
                for name, status in zip(_names(folder), _statuses(folder), strict=True) if status == "done"}
    assert 1 <= len(finished) < 4
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert _statuses(folder) == ["done"] * 4
    assert all((folder / CELLS / name / "cell.json").stat().st_mtime_ns == mtime for name, mtime in finished.items())
    assert _deterministic_rows(folder) == _deterministic_rows(uninterrupted)


@pytest.mark.slow
def test_a_failing_cell_is_recorded_and_the_others_finish(tmp_path, uninterrupted):
    trained = str(uninterrupted / CELLS / "model.widths=784x16x10_seed=0")
    spec = {"name": "verify", "kind": "bridge-verify", "settings": {"steps": [8], "test_images": 200},
            "axes": {"run": [trained, str(tmp_path / "no-such-run")], "seed": [0]}}
    folder = run_sweep(spec, runs_root=tmp_path, workers=2, progress=False)
    good, bad = (json.loads((folder / CELLS / name / "cell.json").read_text()) for name in _names(folder))
    assert good["status"] == "done" and 0 < good["metrics"]["accuracy_T8"] <= 1
    assert bad["status"] == "failed" and "\n" not in bad["error"] and "no-such-run" in bad["error"]
    failed = json.loads((folder / "report.json").read_text())["failed"]
    assert failed == [_names(folder)[1]]
    rerun = run_sweep(spec, folder=folder, retry_failed=True, progress=False)
    assert _statuses(rerun) == ["done", "failed"]


def test_a_model_that_cannot_be_built_is_refused_before_anything_runs(tmp_path):
    spec = {**TINY, "axes": {"model.widths": [[784, 16, 10], [100, 16, 10]], "seed": [0]}}
    with pytest.raises(ValueError, match="MLP widths must start with 784"):
        run_sweep(spec, runs_root=tmp_path, progress=False)
    assert not any(tmp_path.iterdir())


@pytest.mark.slow
def test_every_job_kind_runs_a_cell(tmp_path, mnist_folder):
    trained = run_cell("train", {**TINY["settings"], "model.widths": [784, 32, 10], "seed": 0},
                       str(tmp_path / "train"), threads=1)
    assert trained["status"] == "done", trained.get("traceback")
    verified = run_cell("bridge-verify", {"run": str(tmp_path / "train"), "steps": [8], "test_images": 200},
                        str(tmp_path / "verify"), threads=1)
    assert verified["status"] == "done", verified.get("traceback")
    assert abs(verified["metrics"]["accuracy_T8"] - verified["metrics"]["ann_accuracy"]) < 0.05
    stdp = run_cell("diehl-cook", {"neurons": 10, "images": 20, "block_slots": 20, "labelling_images": 20,
                                   "test_images": 20, "seed": 0}, str(tmp_path / "stdp"), threads=1)
    assert stdp["status"] == "done", stdp.get("traceback")
    assert 0 <= stdp["metrics"]["test_accuracy"] <= 1 and stdp["metrics"]["presentations_per_image"] >= 1


@pytest.mark.slow
def test_the_ray_path_gives_the_results_of_the_process_pool(tmp_path, uninterrupted):
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        folder = run_sweep(TINY, runs_root=tmp_path, ray="local", progress=False)
    finally:
        ray.shutdown()
    assert _statuses(folder) == ["done"] * 4
    assert _deterministic_rows(folder) == _deterministic_rows(uninterrupted)
    assert (folder / CELLS / "model.widths=784x16x10_seed=0" / "checkpoint.pt").is_file()  # the folder came back


def _names(folder: Path) -> list[str]:
    return [cell.name for cell in SweepSpec.from_mapping(json.loads((folder / "spec.json").read_text())).cells()]


def _statuses(folder: Path) -> list[str | None]:
    if not (folder / "spec.json").exists():
        return []
    found = []
    for name in _names(folder):
        try:
            found.append(json.loads((folder / CELLS / name / "cell.json").read_text())["status"])
        except (OSError, ValueError):
            found.append(None)
    return found


def _toml(spec: dict) -> str:
    def value(item):
        return json.dumps(item)  # JSON numbers, strings and lists are TOML too

    lines = [f"{key} = {value(spec[key])}" for key in ("name", "kind", "threads")]
    for table in ("settings", "axes"):
        lines.append(f"[{table}]")
        lines += [f"{json.dumps(key)} = {value(item)}" for key, item in spec[table].items()]
    return "\n".join(lines) + "\n"


def test_the_example_specs_are_valid():
    examples = sorted((Path(__file__).parents[1] / "examples" / "sweeps").glob("*.toml"))
    assert examples
    for path in examples:
        spec = SweepSpec.load(path)
        spec.check()
        assert "seed" in spec.axes, path.name
