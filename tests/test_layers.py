"""The project's dependency rules, read from the source: data -> models -> bridges -> application,
and library code that leaves the user's matplotlib alone."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = [("idx_datasets",), ("rate_models", "spiking"), ("bridges",), ("spikebridge",)]  # lowest first
PACKAGES = [package for layer in LAYERS for package in layer]


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(package: str) -> dict[str, set[str]]:
    """Every module a package's files import (module-level and inside functions), by file."""
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        names = found.setdefault(str(path.relative_to(ROOT)), set())
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for alias in node.names:  # `from a import b`: the module a.b if there is one, else a
                    submodule = f"{node.module}.{alias.name}"
                    if node.module.split(".")[0] not in PACKAGES:  # another project's: both, to be safe
                        names.update((node.module, submodule))
                    elif (ROOT / submodule.replace(".", "/")).with_suffix(".py").is_file():
                        names.add(submodule)
                    else:
                        names.add(node.module)
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


def test_no_module_imports_itself_through_others():
    """The project's modules form no import cycle, lazy imports included (so the ReLU conversion,
    the log coding and the measurement share their vocabulary through bridges.common)."""
    modules = {module_name(path): path for package in PACKAGES for path in (ROOT / package).rglob("*.py")}
    graph = {}
    for package in PACKAGES:
        for path, imported in imported_modules(package).items():
            name = module_name(ROOT / path)
            graph[name] = {module for module in imported if module in modules and module != name}
    finished: set[str] = set()

    def visit(module: str, chain: list[str]) -> None:
        for target in sorted(graph[module]):
            assert target not in chain, f"import cycle: {' -> '.join(chain[chain.index(target):] + [target])}"
            if target not in finished:
                visit(target, [*chain, target])
        finished.add(module)

    for module in sorted(graph):
        visit(module, [module])
