"""The import graph of a rendered project's package, read with `ast` (nothing is imported or executed).

Every `import` and `from ... import` counts, at module level or inside a function (a lazy import is still a
dependency of the code that runs it), except those under `if TYPE_CHECKING:`.
"""

from __future__ import annotations

import ast
from pathlib import Path


def module_files(src: Path, package: str) -> dict[str, Path]:
    """module name -> file, for every module of `package` under `src` (packages map to their __init__.py)."""
    modules = {}
    for path in sorted((src / package).rglob("*.py")):
        parts = list(path.relative_to(src).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    found: list[ast.Import | ast.ImportFrom] = []
    pending = [tree]
    while pending:
        node = pending.pop()
        if isinstance(node, ast.If) and _is_type_checking(node):
            pending.extend(node.orelse)
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        pending.extend(ast.iter_child_nodes(node))
    return found


def imported_modules(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package's own modules that module `name` imports directly."""
    is_package = path.name == "__init__.py"
    here = name.split(".") if is_package else name.split(".")[:-1]
    result: set[str] = set()
    for node in _imports(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            base = here[: len(here) - node.level + 1] if node.level else []
            origin = ".".join([*base, *(node.module.split(".") if node.module else [])])
            targets = [origin] + [f"{origin}.{alias.name}" for alias in node.names]
        for target in targets:
            # importing a.b.c also runs a/__init__ and a/b/__init__
            parts = target.split(".")
            for end in range(1, len(parts) + 1):
                candidate = ".".join(parts[:end])
                if candidate in modules and candidate != name:
                    result.add(candidate)
    return result


def import_graph(src: Path, package: str) -> dict[str, set[str]]:
    modules = module_files(src, package)
    return {name: imported_modules(name, path, modules) for name, path in modules.items()}


def closure(graph: dict[str, set[str]], start: str) -> set[str]:
    """`start` and every module it imports, transitively, with the packages whose __init__ they run."""
    seen, pending = {start}, [start]
    while pending:
        module = pending.pop()
        parts = module.split(".")
        parents = {".".join(parts[:end]) for end in range(1, len(parts))} & set(graph)
        for imported in graph[module] | parents:
            if imported not in seen:
                seen.add(imported)
                pending.append(imported)
    return seen


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Import cycles between modules (a package importing its own submodules is not one)."""
    found, state, stack = [], {}, []

    def visit(module: str) -> None:
        state[module] = "open"
        stack.append(module)
        for imported in sorted(graph[module]):
            if module.startswith(imported + "."):  # a submodule runs its parent's __init__: not a cycle
                continue
            if state.get(imported) == "open":
                found.append([*stack[stack.index(imported) :], imported])
            elif imported not in state:
                visit(imported)
        stack.pop()
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module)
    return found
