"""The package's shape: no import cycle among its modules (counting imports inside functions), the ONNX backend a
leaf that no model imports, modules of a readable size, and the scripts at the top thin shells over `sts_models.cli`."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from .conftest import REPO_ROOT

PACKAGE = REPO_ROOT / "sts_models"
MAX_MODULE_LINES = 450
SHIMS = ("run_sts.py", "predict.py", "export_onnx.py")


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """module -> the package's modules it imports anywhere in its code (relative or absolute, `import x` or
    `from x import y` where y is a module)."""
    files = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        imported = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                base = package[: len(package) - node.level + 1] if node.level else []
                target = ".".join(base + ([node.module] if node.module else []))
                imported.update([target, *(f"{target}.{alias.name}" for alias in node.names)])
            elif isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
        graph[name] = {target for target in imported if target in files and target != name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return stack[stack.index(target) :] + [target]
            if not state.get(target) and (cycle := visit(target)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if not state.get(node) and (cycle := visit(node)):
            return cycle
    return None


def test_no_import_cycle():
    graph = import_graph()
    assert "sts_models.inference" in graph and "sts_models.cli.train" in graph
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_the_onnx_backend_is_a_leaf():
    """Only the commands import it (where it is asked for); the models and the inference loops never do."""
    importers = {name for name, targets in import_graph().items() if "sts_models.backends.onnx" in targets}
    assert importers <= {"sts_models.cli.export", "sts_models.cli.predict"}, importers


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda path: str(path.relative_to(PACKAGE)))
def test_modules_stay_readable(path):
    assert len(path.read_text(encoding="utf-8").splitlines()) <= MAX_MODULE_LINES


@pytest.mark.parametrize("name", SHIMS)
def test_the_scripts_are_shims_over_the_cli(name):
    text = (REPO_ROOT / name).read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 40
    # the command's modules imported by `script_cli` when it runs, where Ctrl-C while they load ends it in one line
    assert "from sts_models.cli import script_cli\n" in text and f'cli = script_cli("{name}")' in text
