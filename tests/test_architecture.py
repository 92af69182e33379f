"""The layering of the packages (docs/architecture.md), checked on the source: who may import whom, and no cycles.

Read from the AST, so nothing is imported: an import inside a function counts for the layering rules; module-level
imports (and `if TYPE_CHECKING:` ones) count for cycles.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("backend", "core", "pipelines", "speech", "telephony", "voice_server", "voicectl")
RUNTIME = ("backend", "core", "pipelines", "speech", "telephony", "voice_server")

# package -> packages it must never import
FORBIDDEN: dict[str, tuple[str, ...]] = {
    **{package: ("voicectl",) for package in RUNTIME},
    "backend": ("voicectl", "voice_server"),
    "telephony": ("voicectl", "voice_server", "backend", "pipelines", "speech"),
    "core": ("voicectl", "voice_server", "backend", "pipelines", "speech", "telephony"),
    "pipelines": ("voicectl", "voice_server", "backend"),
}


def _modules() -> Iterator[tuple[str, Path]]:
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            yield ".".join(parts), path


def _imports(path: Path, module: str, top_level_only: bool) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes: list[ast.stmt | ast.AST] = list(tree.body) if top_level_only else list(ast.walk(tree))
    if top_level_only:  # type-only imports count too: they are how cycles hide
        nodes += [n for s in tree.body if isinstance(s, ast.If) and "TYPE_CHECKING" in ast.unparse(s.test)
                  for n in s.body]
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = module.split(".")[: -node.level] if not path.name == "__init__.py" else module.split(".")
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module or ""
            found.add(name)
            found.update(f"{name}.{alias.name}" for alias in node.names)
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_layering(package: str) -> None:
    offences = []
    for module, path in _modules():
        if module.split(".")[0] != package:
            continue
        for name in _imports(path, module, top_level_only=False):
            if name.split(".")[0] in FORBIDDEN[package]:
                offences.append(f"{module} imports {name}")
    assert not offences, "\n".join(sorted(set(offences)))


def test_no_import_cycles() -> None:
    modules = dict(_modules())
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        targets = set()
        for name in _imports(path, module, top_level_only=True):
            # `from a.b import c` is a.b.c when that is a module, else a.b.
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name and name != module:
                targets.add(name)
        graph[module] = targets
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    cycles: list[str] = []

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join([*trail[trail.index(nxt):], nxt]))
            elif nxt not in state:
                visit(nxt, [*trail, nxt])
        state[node] = 2

    for start in sorted(graph):
        if start not in state:
            visit(start, [start])
    assert not cycles, "\n".join(cycles)
