"""The layout of the two packages, read from their source with ``ast`` (nothing is imported):

- ``offline`` has no import cycle, between modules or between its sub-packages (data and synth, training,
  explain, export, report: the pipeline's order);
- no package ``__init__`` imports anything (importing one submodule never loads its siblings), except
  ``edgeemo``'s own, whose public names (``EMOTIONS``, ``NEUTRAL``) come from one small module;
- ``edgeemo`` never imports ``offline`` at module level (only lazily, inside the commands that need it) and
  never imports TensorFlow or Keras at all. tests/test_runtime_imports.py checks the same by importing it.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules(package: str) -> dict[str, Path]:
    return {module_name(p): p for p in sorted((REPO / package).rglob("*.py"))}


def imports(path: Path, top_level_only: bool = False) -> list[tuple[str, int]]:
    """(imported module, line) for every import in the file; ``from a import b`` gives ``a.b`` too, as b may
    be a module. With ``top_level_only``, only what runs when the module is imported (not inside functions)."""
    tree = ast.parse(path.read_text(), str(path))
    found = []

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if top_level_only and isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                continue
            if isinstance(child, ast.Import):
                found.extend((a.name, child.lineno) for a in child.names)
            elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                found.append((child.module, child.lineno))
                found.extend((f"{child.module}.{a.name}", child.lineno) for a in child.names)
            visit(child)

    visit(tree)
    return found


def import_graph(package: str) -> dict[str, set[str]]:
    """Module -> the package's modules it imports, lazily or not (a lazy import still ties the two)."""
    known = modules(package)
    return {name: {m for m, _ in imports(path) if m in known and m != name} for name, path in known.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the directed graph as [a, b, ..., a], or None (depth-first search)."""
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def sub_package(module: str) -> str:
    return ".".join(module.split(".")[:2])


def test_find_cycle_finds_a_cycle_and_accepts_a_tree():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_offline_modules_import_each_other_without_a_cycle():
    cycle = find_cycle(import_graph("offline"))
    assert cycle is None, "import cycle in offline: " + " -> ".join(cycle)


def test_offline_sub_packages_depend_on_each_other_without_a_cycle():
    packages: dict[str, set[str]] = {}
    for module, targets in import_graph("offline").items():
        packages.setdefault(sub_package(module), set()).update(
            sub_package(t) for t in targets if sub_package(t) != sub_package(module))
    cycle = find_cycle(packages)
    assert cycle is None, "sub-packages of offline depend on each other in a cycle: " + " -> ".join(cycle)


def test_offline_has_sub_packages_not_flat_modules():
    flat = sorted(p.name for p in (REPO / "offline").glob("*.py") if p.name != "__init__.py")
    assert flat == [], f"modules directly in offline/ (put each in the sub-package of its step): {flat}"


def test_no_package_init_imports_anything():
    for package in ("offline", "edgeemo"):
        for init in sorted((REPO / package).rglob("__init__.py")):
            if init == REPO / "edgeemo" / "__init__.py":
                continue
            found = [(m, line) for m, line in imports(init) if m != "__future__" and not m.startswith("__future__.")]
            assert found == [], f"{init.relative_to(REPO)} imports {found}: keep package __init__ files to a docstring"


def test_edgeemo_imports_offline_only_lazily_and_tensorflow_never():
    for name, path in modules("edgeemo").items():
        where = path.relative_to(REPO)
        eager = [(m, line) for m, line in imports(path, top_level_only=True) if m.split(".")[0] == "offline"]
        assert eager == [], f"{where} imports offline when it is imported: {eager} (import it inside the function)"
        heavy = [(m, line) for m, line in imports(path) if m.split(".")[0] in {"tensorflow", "keras", "tf2onnx"}]
        assert heavy == [], f"{where} imports {heavy}: the runtime reaches TensorFlow only through offline"


def test_the_walk_sees_every_import_form(tmp_path):
    source = tmp_path / "probe.py"
    source.write_text("import a.b\nfrom c import d\n\ndef f():\n    from e import g\n")
    assert imports(source) == [("a.b", 1), ("c", 2), ("c.d", 2), ("e", 5), ("e.g", 5)]
    assert imports(source, top_level_only=True) == [("a.b", 1), ("c", 2), ("c.d", 2)]
