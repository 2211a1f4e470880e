"""core/ has no import circle: its module-level import graph (read with ast, imports under a
module-level `if TYPE_CHECKING:` or `try:` included) is acyclic. Data flows one way."""
from __future__ import annotations

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parent.parent / "core"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(CORE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def module_level_imports(tree: ast.Module) -> set[str]:
    """Names imported by statements that run when the module is imported (not inside functions)."""
    found: set[str] = set()
    pending: list[ast.stmt] = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}  # `from core.work import probe`
        elif isinstance(node, (ast.If, ast.Try, ast.With)):
            for field in ("body", "orelse", "finalbody", "handlers"):
                for child in getattr(node, field, []) or []:
                    pending += child.body if isinstance(child, ast.ExceptHandler) else [child]
    return found


def import_graph() -> dict[str, set[str]]:
    paths = {module_name(p): p for p in CORE.rglob("*.py")}
    return {name: {m for m in module_level_imports(ast.parse(p.read_text(encoding="utf-8"))) if m in paths} - {name}
            for name, p in paths.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
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


def test_the_graph_is_read_from_every_core_module():
    graph = import_graph()
    assert {"core.supervisor", "core.work.jobs", "core.runtime", "core.report"} <= set(graph)
    assert "core.supervisor" in graph["core.runtime"] and "core.work.jobs" in graph["core.supervisor"]


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_core_has_no_import_circle():
    assert find_cycle(import_graph()) is None
