"""The package's shape: its layers, no import cycles between modules, and only four modules at the top."""

import ast
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[1] / "src" / "zerotune"

# Bottom to top, as docs/architecture.md lists them. A module imports its own package or a lower
# layer: never a higher one, nor another package of its own layer. "__init__" is the package root,
# zerotune/__init__.py (`__version__`; its public API is named by strings, imported on first use).
LAYERS = [
    ["errors", "terminal"],
    ["compute", "run"],
    ["__init__", "models"],
    ["config"],
    ["data"],
    ["lm"],
    ["tasks"],
    ["train"],
    ["distributed", "track"],
    ["doctor"],
    ["runload"],
    ["finetune", "distill"],
    ["modes"],
    ["pipeline"],
    ["tune", "export", "scratch"],
    ["serve"],
    ["cli"],
]


def _module_files() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package (a package is its __init__)."""
    modules = {}
    for path in PACKAGE_DIR.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _imported(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package's modules that `name` imports anywhere in its file, inside functions too."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            source = ".".join(base + ([node.module] if node.module else []))
            for alias in node.names:  # `from pkg import name` names the module pkg.name if there is one
                found.add(f"{source}.{alias.name}" if f"{source}.{alias.name}" in modules else source)
    return {m for m in found if m in modules and m != name}


def import_graph() -> dict[str, set[str]]:
    modules = _module_files()
    return {name: _imported(name, path, modules) for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as [a, b, ..., a], or None; a depth-first search for a back edge."""
    state: dict[str, str] = {}  # "open" while on the current path, "done" after
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_graph_sees_imports_inside_functions_and_from_package_imports():
    graph = import_graph()
    assert "zerotune.models.registry" in graph["zerotune.config"]  # imported inside a validator
    assert {"zerotune.models.cnn", "zerotune.models.registry"} <= graph["zerotune.models"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def package_of(module: str) -> str:
    """The package a module belongs to: ``zerotune.doctor.report`` -> ``doctor``, ``zerotune.config`` ->
    ``config``, ``zerotune`` -> ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def layer_violations(graph: dict[str, set[str]], layers: list[list[str]]) -> list[str]:
    """Every import of a module from a higher layer or from another package of its own layer;
    `__main__` modules (``python -m`` entry points, which call their command line) are exempt."""
    rank = {package: i for i, names in enumerate(layers) for package in names}
    found = []
    for module, imported in sorted(graph.items()):
        if module.split(".")[-1] == "__main__":
            continue
        mine = package_of(module)
        if mine not in rank:
            found.append(f"{module}: its package {mine!r} is in no layer")
            continue
        for other in sorted(imported):
            theirs = package_of(other)
            if theirs not in rank:
                found.append(f"{other}: its package {theirs!r} is in no layer")
            elif theirs != mine and rank[theirs] >= rank[mine]:
                found.append(f"{module} (layer {rank[mine] + 1}) imports {other} (layer {rank[theirs] + 1})")
    return found


def test_every_package_has_a_layer():
    packages = {package_of(m) for m in import_graph() if m.split(".")[-1] != "__main__"}
    listed = [p for names in LAYERS for p in names]
    assert len(listed) == len(set(listed)), "a package is listed twice"
    unlisted, gone = sorted(packages - set(listed)), sorted(set(listed) - packages)
    assert not unlisted and not gone, f"packages in no layer: {unlisted}; listed but gone: {gone}"


def test_layer_check_sees_upward_and_same_layer_imports():
    graph = {"zerotune.a.x": {"zerotune.b.y"}, "zerotune.b.y": {"zerotune.c"}, "zerotune.c": {"zerotune.a.x"},
             "zerotune.a.__main__": {"zerotune.c"}}
    assert layer_violations(graph, [["a", "b"], ["c"]]) == [
        "zerotune.a.x (layer 1) imports zerotune.b.y (layer 1)", "zerotune.b.y (layer 1) imports zerotune.c (layer 2)"]


def test_each_module_imports_its_own_package_or_a_lower_layer():
    found = layer_violations(import_graph(), LAYERS)
    assert not found, "imports against the layer order (see docs/architecture.md):\n" + "\n".join(found)


def test_no_import_cycles():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_at_most_four_top_level_modules():
    top = sorted(p.stem for p in PACKAGE_DIR.glob("*.py"))
    assert set(top) <= {"__init__", "__main__", "config", "errors"}, top
