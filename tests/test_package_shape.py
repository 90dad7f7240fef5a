"""The package's shape: no import cycle inside seg2vid/, and inference never loads the training stack.

The import graph is read from the SOURCE (``ast``, nothing is imported), every ``import`` counted,
also those inside functions (a deferred import is still an edge), except under ``if TYPE_CHECKING``.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "seg2vid"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(path: Path, name: str, modules: dict[str, Path]) -> set[str]:
    """The seg2vid modules that the file ``path`` (module ``name``) imports."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for rest in child.orelse:
                    visit(rest)
                continue
            if isinstance(child, ast.Import):
                found.update(a.name for a in child.names if a.name in modules)
            elif isinstance(child, ast.ImportFrom):
                if child.level:  # relative import
                    base = package.split(".")[: len(package.split(".")) - child.level + 1]
                    target = ".".join(base + ([child.module] if child.module else []))
                else:
                    target = child.module or ""
                if target in modules:
                    found.add(target)
                # ``from seg2vid.x import y`` where y is a submodule
                found.update(f"{target}.{a.name}" for a in child.names if f"{target}.{a.name}" in modules)
            visit(child)

    visit(ast.parse(path.read_text(), filename=str(path)))
    found.discard(name)
    return found


def import_graph() -> dict[str, set[str]]:
    """``{module: the seg2vid modules it imports}`` for every module of the package."""
    modules = _modules()
    return {name: _imports(path, name, modules) for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a list of modules (first == last), or None."""
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    stack: list[str] = []

    def dfs(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := dfs(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := dfs(node)):
            return cycle
    return None


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_the_graph_sees_known_edges():
    graph = import_graph()
    assert "seg2vid.checkpoints" in graph["seg2vid.training.stage2"]
    assert "seg2vid.models.loading" in graph["seg2vid.generation.pipeline"]
    assert "seg2vid.cli" in graph["seg2vid.__main__"]


def test_no_import_cycle_inside_the_package():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_checkpoints_module_is_at_the_bottom():
    """seg2vid.checkpoints imports no other seg2vid module: everything may read a checkpoint."""
    assert import_graph()["seg2vid.checkpoints"] == set()


@pytest.mark.parametrize("layer", ["seg2vid.models", "seg2vid.generation", "seg2vid.data", "seg2vid.metrics"])
def test_inference_layers_import_no_training_module(layer):
    graph = import_graph()
    for name, imported in graph.items():
        if name == layer or name.startswith(layer + "."):
            bad = sorted(m for m in imported if m.startswith(("seg2vid.training", "seg2vid.evaluation")))
            assert not bad, f"{name} imports {bad}"


@pytest.mark.parametrize(
    ("layer", "forbidden"),
    [
        ("seg2vid.training", ("seg2vid.evaluation", "seg2vid.generation", "seg2vid.cli")),
        ("seg2vid.generation", ("seg2vid.training", "seg2vid.evaluation", "seg2vid.cli")),
        ("seg2vid.evaluation", ("seg2vid.cli",)),
    ],
)
def test_the_wings_do_not_import_each_other_upwards(layer, forbidden):
    """training and generation are side by side above models/data; evaluation may use both."""
    for name, imported in import_graph().items():
        if name == layer or name.startswith(layer + "."):
            bad = sorted(m for m in imported if m.startswith(forbidden))
            assert not bad, f"{name} imports {bad}"


def _loaded_after(statement: str) -> list[str]:
    """The modules in ``sys.modules`` after running ``statement`` in a fresh interpreter."""
    code = f"import json, sys\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=ROOT, timeout=120).stdout
    return json.loads(out.splitlines()[-1])


def test_the_pipeline_loads_no_training_module_and_no_torchvision():
    loaded = _loaded_after("import seg2vid.generation.pipeline")
    assert "seg2vid.generation.pipeline" in loaded
    bad = [m for m in loaded if m.startswith(("seg2vid.training", "torchvision", "nbformat"))]
    assert not bad, bad


def test_import_seg2vid_loads_neither_nbformat_nor_the_trainers():
    loaded = _loaded_after("import seg2vid")
    bad = [m for m in loaded if m.startswith(("nbformat", "seg2vid.training", "torch"))]
    assert not bad, bad


def test_reading_a_checkpoint_loads_no_training_module():
    loaded = _loaded_after("import seg2vid.checkpoints, seg2vid.models.loading")
    bad = [m for m in loaded if m.startswith(("seg2vid.training", "torchvision"))]
    assert not bad, bad
