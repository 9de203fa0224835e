"""The project's dependency rules, read from the source: data -> models -> bridges -> application,
and library code that leaves the user's matplotlib alone."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = [("idx_datasets",), ("rate_models", "spiking"), ("bridges",), ("spikebridge",)]  # lowest first
PACKAGES = [package for layer in LAYERS for package in layer]


def imported_modules(package: str) -> dict[str, set[str]]:
    """Every module a package's files import (module-level and inside functions), by file."""
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        names = found.setdefault(str(path.relative_to(ROOT)), set())
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
                names.update(f"{node.module}.{alias.name}" for alias in node.names)
            elif isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
    return found


@pytest.mark.parametrize("package", PACKAGES)
def test_a_package_imports_only_its_own_layer_and_those_below(package):
    level = next(index for index, layer in enumerate(LAYERS) if package in layer)
    allowed = {name for layer in LAYERS[:level + 1] for name in layer}
    for path, modules in imported_modules(package).items():
        above = {module for module in modules if module.split(".")[0] in set(PACKAGES) - allowed}
        assert not above, f"{path} imports {sorted(above)} from a layer above {package}"


@pytest.mark.parametrize("package", PACKAGES)
def test_library_code_leaves_the_matplotlib_backend_alone(package):
    """Figures are ``matplotlib.figure.Figure`` objects: no backend switch, no pyplot state."""
    for path, modules in imported_modules(package).items():
        assert "matplotlib.pyplot" not in modules, f"{path} imports pyplot"
        source = (ROOT / path).read_text()
        assert "matplotlib.use(" not in source, f"{path} sets the matplotlib backend"
