"""The layout's rules (ARCHITECTURE.md), read from the code's own imports.

The floors, from the bottom: the engine ``seqlab`` (standard library only);
``modelspec`` (the model request schemas) and ``jobs`` (the Redis jobs
domain); the API ``service`` and the ``worker``, peers that share ``jobs``
and never import each other; the command line ``seqlab_cli``, which counts
offline without the web stack. No package imports one above it, no module
is part of an import circle, and no module takes another's private names.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("seqlab", "modelspec", "jobs", "service", "worker", "seqlab_cli")

#: What each package may import from the project (besides itself).
ALLOWED = {
    "seqlab": set(),
    "modelspec": {"seqlab"},
    "jobs": set(),
    "service": {"seqlab", "modelspec", "jobs"},
    "worker": {"seqlab", "jobs"},
    "seqlab_cli": {"seqlab", "modelspec"},
}
#: Third-party packages a package must never import (the engine takes none).
FORBIDDEN = {
    "modelspec": {"flask", "werkzeug", "celery", "redis", "keras", "tensorflow"},
    "jobs": {"flask", "werkzeug", "marshmallow", "keras", "tensorflow"},
    "service": {"keras", "tensorflow", "jax"},
    "seqlab_cli": {"flask", "werkzeug", "celery", "redis", "keras", "tensorflow"},
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def source_files() -> dict[str, Path]:
    return {
        module_name(path): path
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
    }


def imports(name: str, path: Path) -> Iterator[tuple[str, tuple[str, ...]]]:
    """Each ``(module, names)`` that ``name`` imports, anywhere in the file
    (a function-level import still runs), relative ones made absolute."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, ()
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            yield base, tuple(alias.name for alias in node.names)


def graph() -> dict[str, set[str]]:
    """Module -> the project modules its imports execute: the module named,
    a submodule named in ``from package import module``, and the packages
    between (whose ``__init__`` runs first) that do not hold the importer."""
    files = source_files()
    edges: dict[str, set[str]] = {name: set() for name in files}
    for name, path in files.items():
        for module, names in imports(name, path):
            targets = [module] + [f"{module}.{n}" for n in names if f"{module}.{n}" in files]
            for target in targets:
                parts = target.split(".")
                for i in range(1, len(parts) + 1):
                    step = ".".join(parts[:i])
                    holds_importer = name == step or name.startswith(step + ".")
                    if step in files and step != name and not holds_importer:
                        edges[name].add(step)
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_the_checker_finds_a_circle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_circles():
    assert cycles(graph()) == []


@pytest.mark.parametrize("package", PACKAGES)
def test_each_package_imports_only_the_floors_below(package):
    files = source_files()
    wrong = set()
    for name, path in files.items():
        if name.split(".")[0] != package:
            continue
        for module, _ in imports(name, path):
            top = module.split(".")[0]
            if top in PACKAGES and top != package and top not in ALLOWED[package]:
                wrong.add(f"{name} imports {module}")
            if top in FORBIDDEN.get(package, ()):
                wrong.add(f"{name} imports {module}")
    assert not wrong


def test_the_engine_imports_the_standard_library_only():
    stdlib = sys.stdlib_module_names | {"__future__"}
    for name, path in source_files().items():
        if name.split(".")[0] == "seqlab":
            for module, _ in imports(name, path):
                top = module.split(".")[0]
                assert top in stdlib or top == "seqlab", f"{name} imports {module}"


def test_no_module_imports_another_modules_private_names():
    taken = [
        f"{name} takes {module}.{n}"
        for name, path in source_files().items()
        for module, names in imports(name, path)
        for n in names
        if n.startswith("_") and not n.startswith("__")
    ]
    assert not taken


def test_seqlab_params_counts_without_the_web_stack():
    # The offline command as a user runs it: afterwards neither Flask nor
    # Werkzeug nor the API, the worker or the jobs layer was imported.
    code = (
        "import sys\n"
        "from seqlab_cli.main import cli\n"
        "try:\n"
        "    cli(['params', '--example', 'many_to_one', '--json'])\n"
        "except SystemExit as e:\n"
        "    assert not e.code, e.code\n"
        "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})), file=sys.stderr)\n"
    )
    rv = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert '"total_params": 170' in rv.stdout
    loaded = set(rv.stderr.split())
    assert not loaded & {"flask", "werkzeug", "service", "worker", "jobs", "celery", "redis"}
