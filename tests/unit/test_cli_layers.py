"""The CLI only parses and prints (docs/architecture.md): no module in drivesync/cli/ opens a Drive session,
speaks HTTP or walks a tree itself; each command calls the library (the public API, or login/daemon/demo)."""
from __future__ import annotations

import ast
import pathlib

import pytest

CLI = pathlib.Path(__file__).resolve().parents[2] / "drivesync" / "cli"

#: Modules below the public API: a command reaching for one is doing the library's work.
FORBIDDEN = {"drivesync.session", "drivesync.transport", "drivesync.drive", "drivesync.remote",
             "drivesync.download", "drivesync.upload", "drivesync.transfer", "drivesync.locator",
             "aiohttp", "httpx", "requests", "urllib.request", "http.client"}
FORBIDDEN_NAMES = {"open_drive", "Transport", "Drive", "walk", "resolve", "fetch_listing"}


def imports(path: pathlib.Path) -> list[tuple[str, list[str]]]:
    """(absolute module, names) for every import in the file, function-level ones included."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.extend((a.name, []) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = ["drivesync", "cli"][: 2 - (node.level - 1)]
                base = ".".join(parts + ([base] if base else []))
            out.append((base, [a.name for a in node.names]))
    return out


@pytest.mark.parametrize("path", sorted(CLI.glob("*.py")), ids=lambda p: p.name)
def test_cli_module_uses_no_session_http_or_tree_code(path):
    found = imports(path)
    assert found, "the parser found no imports at all: the check would prove nothing"
    bad = [(m, names) for m, names in found
           if m in FORBIDDEN or any(m.startswith(f + ".") for f in FORBIDDEN) or set(names) & FORBIDDEN_NAMES]
    assert not bad, f"{path.name} does the library's work: {bad}"


def test_the_check_sees_relative_and_function_level_imports(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("def f():\n    from ..session import open_drive\n    from .. import listing\n")
    assert imports(sample) == [("drivesync.session", ["open_drive"]), ("drivesync", ["listing"])]
