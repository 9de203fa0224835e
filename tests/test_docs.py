"""The docs' tables against the results records they are built from (benchmarks/report.py)."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
from pathlib import Path

import pytest

from spikebridge.records import PROVENANCE_FIELDS, RecordError, make_record, provenance, read_record, write_record

ROOT = Path(__file__).resolve().parents[1]


def load_report():
    spec = importlib.util.spec_from_file_location("report", ROOT / "benchmarks" / "report.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


report = load_report()


def test_every_docs_table_matches_its_records():
    assert report.check() == []


def test_every_generated_table_is_used_in_the_docs():
    used = {name for document in report.documents() for name in report.BLOCK.findall(document.read_text())
            for name in [name[1]]}
    assert used == set(report.TABLES)


def copy_of_the_docs(root: Path) -> Path:
    """The checked documents and what they link to (figures, the Brian 1 README) under ``root``."""
    shutil.copytree(ROOT / "docs", root / "docs")
    for name in ("README.md", "benchmarks/README.md", "benchmarks/brian1/README.md"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, root / name)
    return root


def test_a_figure_changed_by_hand_fails_the_check(tmp_path):
    root = copy_of_the_docs(tmp_path)
    page = root / "docs" / "diehl-cook-2015.md"
    text = page.read_text()
    block = report.BLOCK.search(text)
    body = block["body"]
    first_percent = re.search(r"\d+\.\d\d %", body)
    changed = body[:first_percent.start()] + "99.99 %" + body[first_percent.end():]
    page.write_text(text[:block.start("body")] + changed + text[block.end("body"):])
    problems = report.check(root)
    assert problems == [f"docs/diehl-cook-2015.md: table {block['name']!r} differs from its records; "
                        "run `python benchmarks/report.py`"]


def test_a_results_file_named_in_the_docs_must_exist(tmp_path):
    root = copy_of_the_docs(tmp_path)
    (root / "README.md").write_text((root / "README.md").read_text() + "\nSee benchmarks/results/gone.json.\n")
    assert report.check(root) == ["README.md names benchmarks/results/gone.json, which does not exist"]


def test_a_link_to_a_missing_figure_fails_the_check(tmp_path):
    root = copy_of_the_docs(tmp_path)
    (root / "docs" / "figures" / "weber_fechner_law.png").unlink()
    assert report.check(root) == ["docs/theriault-francois-2021.md links to figures/weber_fechner_law.png, "
                                  "which does not exist"]


def test_a_link_to_a_missing_heading_fails_the_check(tmp_path):
    root = copy_of_the_docs(tmp_path)
    readme = root / "README.md"
    heading = sorted(report.anchors(root / "benchmarks" / "README.md"))[0]
    readme.write_text(readme.read_text() + f"\n[here](benchmarks/README.md#{heading}) and "
                      "[gone](benchmarks/README.md#no-such-heading)\n")
    assert report.check(root) == ["README.md links to benchmarks/README.md#no-such-heading, a heading "
                                  "benchmarks/README.md does not have"]


def test_an_unknown_table_is_refused(tmp_path):
    root = copy_of_the_docs(tmp_path)
    (root / "README.md").write_text((root / "README.md").read_text() + "\n<!-- report: no-such-table -->\n"
                                    "<!-- /report -->\n")
    (problem,) = report.check(root)
    assert problem.startswith("README.md: unknown table 'no-such-table'")


def test_every_results_file_has_its_provenance():
    for path in sorted((ROOT / "benchmarks" / "results").glob("*.json")):
        saved = read_record(path)
        assert set(PROVENANCE_FIELDS) <= set(saved["provenance"]), path.name
        assert saved["provenance"]["command"].split()[0] in ("python", "spikebridge"), path.name


def test_a_record_without_provenance_is_refused(tmp_path):
    path = tmp_path / "bare.json"
    path.write_text(json.dumps({"rows": []}))
    with pytest.raises(RecordError, match="lacks provenance fields"):
        read_record(path)
    record = make_record({"rows": [1]}, provenance(seeds={"training": 3}))
    written = read_record(write_record(tmp_path / "record.json", record))
    assert written["rows"] == [1] and written["provenance"]["seeds"] == {"training": 3}
    assert {"started", "finished"} <= set(written["provenance"]["date"])
    assert not list(tmp_path.glob(".*partial*"))


def test_recorded_commands_carry_no_machine_specific_paths(monkeypatch, tmp_path):
    from spikebridge.records import command_line

    monkeypatch.chdir(tmp_path)
    typed = command_line(["spikebridge", "evaluate", "/elsewhere/runs/mlp-1",
                          f"--record={ROOT / 'benchmarks' / 'results' / 'a.json'}", "--set", "widths=[784,10]"])
    assert typed == "spikebridge evaluate .../runs/mlp-1 --record=benchmarks/results/a.json --set 'widths=[784,10]'"
    assert command_line(["spikebridge", "train", "mlp", "--runs-dir", "/scratch/runs"]).endswith("--runs-dir .../runs")
