"""The folders show the architecture: no import cycles between the project's modules, and
the apps never import the project (``config``), which wires them together."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: The project's own packages.
PACKAGES = ("config", "apps")


def project_modules(root: Path, packages=PACKAGES) -> dict[str, Path]:
    """Every module of the project, by dotted name (a package by its ``__init__.py``)."""
    modules = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join(parts)] = path
    return modules


def imported_modules(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The project modules that module ``name`` imports, anywhere in its code."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            # ``from package import module`` imports the module; ``from module import
            # name`` the module itself.
            candidates = [
                "%s.%s" % (base, alias.name) if "%s.%s" % (base, alias.name) in modules else base
                for alias in node.names
            ]
        else:
            continue
        found.update(candidate for candidate in candidates if candidate in modules)
    found.discard(name)
    return found


def import_graph(root: Path = ROOT, packages=PACKAGES) -> dict[str, set[str]]:
    modules = project_modules(root, packages)
    return {name: imported_modules(name, path, modules) for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The groups of modules that import each other, directly or round a loop (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(graph.get(node, ())):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_module_of_the_project_takes_part_in_an_import_cycle():
    assert cycles(import_graph()) == []


def test_no_app_imports_the_project_configuration():
    graph = import_graph()
    wrong = sorted(
        "%s -> %s" % (module, imported)
        for module, imports in graph.items()
        if module.startswith("apps.")
        for imported in imports
        if imported == "config" or imported.startswith("config.")
    )
    assert wrong == []


def test_the_process_tools_import_nothing_from_django():
    """The supervisor, health checks and development brokers start in milliseconds: none
    of them, nor any project module they import, imports Django."""
    graph, modules = import_graph(), project_modules(ROOT)
    reached = [name for name in graph if name.startswith("apps.delivery.processes")]
    assert reached
    for name in reached:
        reached += sorted(graph[name] - set(reached))
    assert [name for name in reached if "django" in third_party_imports(modules[name])] == []


def third_party_imports(path: Path) -> set[str]:
    """The top-level names of the packages a module imports."""
    tree = ast.parse(path.read_text())
    names = {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    names |= {
        node.module
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and not node.level
    }
    return {name.split(".")[0] for name in names if name}


def test_a_cycle_is_found_however_it_is_imported(tmp_path):
    # given: a package whose modules import each other three ways
    package = tmp_path / "apps" / "shop"
    package.mkdir(parents=True)
    (tmp_path / "apps" / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    (package / "services.py").write_text("from . import tasks\n")
    (package / "tasks.py").write_text("def run():\n    from apps.shop.services import charge\n")
    (package / "models.py").write_text("import apps.shop.views\n")
    (package / "views.py").write_text("from .models import Order\n")
    (package / "selectors.py").write_text("from .models import Order\n")
    # when
    found = cycles(import_graph(tmp_path, packages=("apps",)))
    # then
    assert sorted(found) == [
        ["apps.shop.models", "apps.shop.views"],
        ["apps.shop.services", "apps.shop.tasks"],
    ]
