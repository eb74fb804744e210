"""Layers import downward only: the rule, stated once (``LAYERS``), checked on every module's AST.

A package may import itself and the packages of strictly lower layers, never a
package of its own layer or of a higher one. Every import counts: at module
level, inside functions and under ``if TYPE_CHECKING:`` (a type-only import
is still a dependency, and the next edit turns it into a real one). Hidden
imports (``importlib.import_module``, ``__import__``, a module ``__getattr__``
that loads on first use) are refused outright: they are how a cycle hides.

The source is read, not imported, so a violation is found even in code no
test runs.
"""

from __future__ import annotations

import ast
import functools
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "icapdlp"

#: lowest first. A name is a package under icapdlp/; "icapdlp" alone is the ground floor, the
#: top-level modules every layer may use (verdict, report, http, errors, transaction, the version).
LAYERS: tuple[tuple[str, ...], ...] = (
    ("icapdlp",),  # ground floor
    ("icapdlp.icap", "icapdlp.dicom", "icapdlp.payload"),  # know nothing of each other
    ("icapdlp.pixels", "icapdlp.observability"),  # pixels reads DICOM; observability records transactions
    ("icapdlp.config",),  # assembles the options the packages below it own
    ("icapdlp.adaptation",),  # reads the settings; drives payloads and the pipeline
    ("icapdlp.server",),  # calls an adapter, reports to an observer
    ("icapdlp.app",),  # builds all of the above and wires them together
    ("icapdlp.cli",),
    ("icapdlp.__main__",),
)

LAYER_OF = {unit: level for level, units in enumerate(LAYERS) for unit in units}

#: functions that import a module named by a value instead of an import statement
HIDDEN_IMPORTERS = {"import_module", "__import__", "exec_module", "load_module"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def is_module(name: str) -> bool:
    """Whether a dotted name is a module or package of this source tree (not an attribute)."""
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def unit_of(module: str) -> str:
    """The layered unit a module belongs to: its package under icapdlp, or the ground floor."""
    parts = module.split(".")
    if module == "icapdlp.__main__":
        return module
    if len(parts) >= 2 and (PACKAGE / parts[1] / "__init__.py").is_file():
        return f"icapdlp.{parts[1]}"
    return "icapdlp"


def imported_modules(tree: ast.AST, module: str, is_package: bool):
    """(line, imported module) for every import statement anywhere in ``tree``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:
                candidate = f"{source}.{alias.name}"
                yield node.lineno, candidate if is_module(candidate) else source


def hidden_imports(tree: ast.Module):
    """(line, what) for every use of an import-by-value function, and a module-level ``__getattr__``.

    A use, not only a call: ``from importlib import import_module as load`` and
    ``f = importlib.import_module`` hide the same import under another name.
    """
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in HIDDEN_IMPORTERS:
            yield node.lineno, node.attr
        elif isinstance(node, ast.Name) and node.id in HIDDEN_IMPORTERS:
            yield node.lineno, node.id
        elif isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if alias.name in HIDDEN_IMPORTERS:
                    yield node.lineno, alias.name
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == "__getattr__":
            yield node.lineno, "module __getattr__"


@functools.cache
def sources() -> tuple[tuple[Path, str, ast.Module], ...]:
    """Every module of the package, parsed once per test run."""
    return tuple((path, module_name(path), ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
                 for path in sorted(PACKAGE.rglob("*.py")))


@functools.cache
def internal_imports() -> tuple[tuple[str, int, str], ...]:
    """(module, line, imported icapdlp module) for the whole package."""
    return tuple((module, line, target)
                 for path, module, tree in sources()
                 for line, target in imported_modules(tree, module, path.name == "__init__.py")
                 if target == "icapdlp" or target.startswith("icapdlp."))


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in graph.get(node, ()):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def test_every_package_has_a_layer():
    units = {unit_of(module) for _, module, _ in sources()}
    assert sorted(units - LAYER_OF.keys()) == [], "place the new package in LAYERS"
    assert sorted(LAYER_OF.keys() - units) == [], "LAYERS names a package that no longer exists"


def test_every_import_goes_to_a_lower_layer():
    wrong = []
    for module, line, target in sorted(set(internal_imports())):
        source, dest = unit_of(module), unit_of(target)
        if source != dest and LAYER_OF[dest] >= LAYER_OF[source]:
            wrong.append(f"{module}:{line} imports {target} ({source} layer {LAYER_OF[source]} -> "
                         f"{dest} layer {LAYER_OF[dest]})")
    assert not wrong, "imports that go up or sideways:\n" + "\n".join(wrong)


def test_the_protocol_package_knows_only_the_ground_floor():
    """The issue's acceptance line, spelled out: ICAP parsing needs nothing above HTTP heads."""
    above = {unit_of(target) for module, _, target in internal_imports()
             if unit_of(module) == "icapdlp.icap"} - {"icapdlp", "icapdlp.icap"}
    assert above == set()


def test_no_import_is_hidden_from_the_reader():
    hidden = [f"{module}:{line} {what}" for _, module, tree in sources() for line, what in hidden_imports(tree)]
    assert not hidden, "hidden imports:\n" + "\n".join(hidden)


def test_packages_import_each_other_without_cycles():
    graph: dict[str, set[str]] = defaultdict(set)
    for module, _, target in internal_imports():
        if unit_of(module) != unit_of(target):
            graph[unit_of(module)].add(unit_of(target))
    assert cycles(graph) == []


def test_modules_import_each_other_without_cycles():
    """Also inside a package: a cycle through a function-level import is still a cycle.

    An import of a package's own ``__init__`` from its submodules is not an
    edge: Python runs the ``__init__`` first either way.
    """
    graph: dict[str, set[str]] = defaultdict(set)
    for module, _, target in internal_imports():
        if target != module and not module.startswith(f"{target}."):
            graph[module].add(target)
    assert cycles(graph) == []


# --- the checker checks: each rule refuses the shape it exists for -------------------------------


def test_the_checker_sees_imports_inside_functions_and_type_checking_blocks():
    tree = ast.parse("from typing import TYPE_CHECKING\n"
                     "if TYPE_CHECKING:\n    from icapdlp.config import Settings\n"
                     "def f():\n    import icapdlp.server.listener as listener\n"
                     "    from .. import verdict\n")
    found = {target for _, target in imported_modules(tree, "icapdlp.pixels.cleaner", False)}
    assert {"icapdlp.config", "icapdlp.server.listener", "icapdlp.verdict"} <= found


def test_the_checker_sees_hidden_imports_under_any_name():
    tree = ast.parse("import importlib\nfrom importlib import import_module as load\n"
                     "def __getattr__(name):\n    return importlib.import_module('icapdlp.config')\n"
                     "x = __import__('icapdlp.server')\n"
                     "spec.loader.exec_module(module)\n")
    assert sorted((line, what) for line, what in hidden_imports(tree)) == [
        (2, "import_module"), (3, "module __getattr__"), (4, "import_module"), (5, "__import__"),
        (6, "exec_module")]


def test_the_checker_finds_a_cycle_and_only_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": {"c"}}) == []


def test_ground_floor_modules_and_the_entry_point_map_to_their_units():
    assert unit_of("icapdlp.verdict") == "icapdlp"
    assert unit_of("icapdlp") == "icapdlp"
    assert unit_of("icapdlp.server.listener") == "icapdlp.server"
    assert unit_of("icapdlp.__main__") == "icapdlp.__main__"
