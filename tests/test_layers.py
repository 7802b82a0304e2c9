"""The layering of ``../shared/DESIGN.md`` section 1: no import cycles in ``src/diffad`` (imports inside
functions included), the library never imports the command line or the benchmark harness, and the
networks never import the diffusion machinery."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "src" / "diffad"


def _modules() -> dict[str, Path]:
    out = {}
    for p in ROOT.rglob("*.py"):
        parts = p.relative_to(ROOT.parent).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = p
    return out


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for m, p in mods.items():
        package = m.split(".") if p.name == "__init__.py" else m.split(".")[:-1]
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = (
                    ".".join(
                        package[: len(package) - node.level + 1] + ([node.module] if node.module else [])
                    )
                    if node.level
                    else node.module or ""
                )
                for target in (base, *(f"{base}.{a.name}" for a in node.names)):
                    if target in mods and target != m:
                        graph[m].add(target)
            elif isinstance(node, ast.Import):
                graph[m].update(a.name for a in node.names if a.name in mods and a.name != m)
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle, or None (depth-first search with colours)."""
    colour: dict[str, int] = {}
    path: list[str] = []

    def visit(v: str) -> list[str] | None:
        colour[v] = 1
        path.append(v)
        for w in sorted(graph[v]):
            if colour.get(w) == 1:
                return path[path.index(w) :] + [w]
            if w not in colour and (found := visit(w)):
                return found
        colour[v] = 2
        path.pop()
        return None

    for v in sorted(graph):
        if v not in colour and (found := visit(v)):
            return found
    return None


def test_no_import_cycles():
    assert _cycle(_graph()) is None


def test_the_library_never_imports_the_cli_or_the_harness_and_nn_never_imports_diffusion():
    graph = _graph()
    for m, targets in graph.items():
        if not m.startswith(("diffad.cli", "diffad.bench", "diffad.__main__")):
            assert not {t for t in targets if t.startswith(("diffad.cli", "diffad.bench"))}, m
        if m.startswith("diffad.nn"):
            assert not {t for t in targets if t.startswith("diffad.diffusion")}, m
