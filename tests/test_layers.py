"""The import rules of the README's design section, checked against the code.

Every module of ``asyncsync`` belongs to a layer (its top-level package or module); a module may
import its own layer's modules and layers below it, never one above (:data:`LAYERS`, top first,
the same picture as the README's import diagram). Import circles between modules are allowed only
inside one transport package (``reference`` opens ``source``/``destination``, which name the
reference). Imports are read from the source (every ``import`` statement, also inside functions
and ``TYPE_CHECKING`` blocks), so a lazy import cannot hide an arrow.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "asyncsync"

#: Top first. A layer may import the layers after it; names on one line are side by side and
#: must not import each other.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("__main__",),
    ("cli",),
    ("mirror",),
    ("extensions",),
    ("harbor",),
    ("sync",),
    ("copy", "specs"),
    ("transports",),
    ("signature",),
    ("registry", "inspect"),
    ("http",),
    ("manifest", "reference", "gotemplate"),
    ("digest", "limits", "quota", "retry", "units", "jsondoc", "tempdirs", "state_files", "__init__"),
    ("errors",),
)
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(path: Path, module: str) -> Iterator[str]:
    """The ``asyncsync`` modules ``path`` imports (``from asyncsync.x import y`` names ``x.y``
    when that is a module, else ``x``)."""
    tree = ast.parse(path.read_text(), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names if alias.name.split(".")[0] == "asyncsync")
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            if base.split(".")[0] != "asyncsync":
                continue
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                yield candidate if candidate in MODULES else base


MODULES: dict[str, Path] = {_module_name(path): path for path in PACKAGE.rglob("*.py")}
GRAPH: dict[str, set[str]] = {
    module: {target for target in _imports(path, module) if target in MODULES and target != module}
    for module, path in MODULES.items()
}


def test_every_layer_is_placed() -> None:
    unplaced = sorted({_layer(module) for module in MODULES} - RANK.keys())
    assert not unplaced, (
        f"new top-level package(s) {unplaced}: place them in LAYERS here and in the README's import diagram"
    )


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_import_runs_up(module: str) -> None:
    layer = _layer(module)
    upward = sorted(
        target
        for target in GRAPH[module]
        if _layer(target) != layer and RANK.get(_layer(target), -1) <= RANK.get(layer, -1)
    )
    assert not upward, f"{module} imports {upward}, which are not below its layer {layer!r}"


def _circles() -> list[set[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []
    for start in sorted(GRAPH):
        if start in index:
            continue
        work = [(start, iter(sorted(GRAPH[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, targets = work[-1]
            for target in targets:
                if target not in index:
                    index[target] = low[target] = len(index)
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter(sorted(GRAPH[target]))))
                    break
                if target in on_stack:
                    low[node] = min(low[node], index[target])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.add(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(component)
    return found


def test_circles_only_inside_one_transport_package() -> None:
    def package(module: str) -> str:
        parts = module.split(".")
        return ".".join(parts[:3]) if parts[1] == "transports" and len(parts) > 3 else module

    bad = [
        sorted(component) for component in _circles() if len({package(module) for module in component}) != 1
    ]
    assert not bad, f"import circles outside one transport package: {bad}"


def test_the_checks_see_a_circle_and_an_upward_import() -> None:
    """The graph is read as intended: known arrows are present (so an empty answer means something)."""
    assert "asyncsync.sync.hooks" in GRAPH["asyncsync.harbor.hooks"]
    assert "asyncsync.transports.docker.source" in GRAPH["asyncsync.transports.docker.reference"]
    assert any("asyncsync.transports.docker.reference" in component for component in _circles())
