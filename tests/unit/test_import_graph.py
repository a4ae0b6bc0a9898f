"""The client's import graph (docs/architecture.md): no cycles, and the client never imports the emulator.

Read from the source with ``ast``, so imports inside functions count as much as those at the top: a
function-level import that closes a circle still ties two modules into one."""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[2] / "drivesync"
PACKAGE = "drivesync"
EMULATOR = "drivesync.emulator"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _all_modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE_DIR.rglob("*.py"))}


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The drivesync modules ``name`` imports anywhere in its file (top level or inside functions)."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            # `from pkg import mod` imports the module pkg.mod; `from mod import name` imports mod.
            targets = [f"{source}.{a.name}" if f"{source}.{a.name}" in known else source for a in node.names]
        else:
            continue
        for target in targets:
            # `import drivesync.a.b` loads drivesync.a.b; count the deepest drivesync module named.
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target.startswith(PACKAGE) and target != name:
                found.add(target)
    return found


def _is_client(name: str) -> bool:
    return name != EMULATOR and not name.startswith(EMULATOR + ".")


def client_graph() -> dict[str, set[str]]:
    modules = _all_modules()
    known = set(modules)
    return {name: _imports(name, path, known) for name, path in modules.items() if _is_client(name)}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in graph:
                continue
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
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_graph_sees_relative_and_function_level_imports():
    graph = client_graph()
    assert "drivesync.pusher" in graph["drivesync.watcher"]          # inside Watcher._main
    assert "drivesync.completion" in graph["drivesync.pusher"]       # the rules, not the watcher
    assert "drivesync.login" in graph["drivesync.cli.login"]         # `from .. import login as flows`
    assert "drivesync.cli.common" in graph["drivesync.cli.push"]     # `from .common import ...`


def test_the_client_has_no_import_cycles():
    assert _cycles(client_graph()) == []


def test_the_client_never_imports_the_emulator():
    # demo.py starts it as a process (`python -m drivesync.emulator`); no client module imports its code.
    offenders = {name: sorted(t for t in targets if not _is_client(t))
                 for name, targets in client_graph().items()}
    assert {name: t for name, t in offenders.items() if t} == {}
