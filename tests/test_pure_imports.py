"""The pure core reads no clock, draws no unseeded randomness and does no I/O: its files
import none of time, datetime, random, secrets, trio, anyio, httpx or sqlite3.

The files are found by glob, so modules added later are checked without editing this test.
Imports under ``if TYPE_CHECKING:`` are allowed (they never run).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

PURE_GLOBS = (
    "engine/events.py",
    "engine/commands.py",
    "engine/model.py",
    "engine/codec.py",
    "engine/errors.py",
    "engine/projections/**/*.py",
    "adapters/mexc/signing.py",
    "adapters/mexc/errors.py",
    "adapters/mexc/codecs*.py",
    "adapters/mexc/codecs/**/*.py",
    "adapters/mexc/endpoints.py",
    "adapters/mexc/interpret.py",
    "adapters/mexc/reconcile.py",
    "adapters/mexc/bodies.py",
    "adapters/mexc/ws_messages.py",
    "adapters/mexc/sim/book.py",
    "adapters/mexc/sim/wire.py",
    "adapters/mexc/sim/gate.py",
    "adapters/mexc/sim/rest_api.py",
    "adapters/mexc/sim/rest_market.py",
    "adapters/mexc/sim/rest_handlers.py",
    "adapters/mexc/sim/ws_api.py",
    "adapters/mexc/sim/contracts.py",
    "adapters/mexc/sim/exchange.py",
    "adapters/mexc/sim/facts.py",
    "adapters/mexc/sim/klines.py",
    "adapters/mexc/sim/ledger.py",
    "adapters/mexc/sim/queries.py",
    "adapters/mexc/sim/state.py",
    "adapters/mexc/sim/virtual_venue.py",
    "engine/core.py",
    "engine/risk.py",
    "strategies/**/*.py",
)
FORBIDDEN = frozenset(
    {"time", "datetime", "random", "secrets", "trio", "anyio", "httpx", "sqlite3"}
)
CLOCK_CALLS = frozenset({"now", "utcnow", "today"})


def pure_files() -> list[Path]:
    found: set[Path] = set()
    for pattern in PURE_GLOBS:
        found.update(p for p in REPO.glob(pattern) if p.is_file())
    return sorted(found)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node that can run, skipping the bodies of ``if TYPE_CHECKING:``."""
    out: list[ast.AST] = []
    stack = [tree]
    for _ in range(1_000_000):
        if not stack:
            return out
        node = stack.pop()
        out.append(node)
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend([node.test, *node.orelse])
        else:
            stack.extend(ast.iter_child_nodes(node))
    raise AssertionError("syntax tree too large")


def violations(source: str, filename: str = "<src>") -> list[str]:
    """What in ``source`` breaks purity, as ``line: reason`` strings."""
    found = []
    for node in _runtime_nodes(ast.parse(source, filename)):
        line = getattr(node, "lineno", 0)
        modules: list[str] = []
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules = [node.module]
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            if name in ("__import__", "import_module") and node.args:
                arg = node.args[0]
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    modules = [arg.value]
            if (isinstance(func, ast.Attribute) and func.attr in CLOCK_CALLS
                    and isinstance(func.value, ast.Name | ast.Attribute)):
                owner = func.value.id if isinstance(func.value, ast.Name) else func.value.attr
                if owner in ("datetime", "date"):
                    found.append(f"{line}: calls {owner}.{func.attr}()")
        for module in modules:
            if module.split(".")[0] in FORBIDDEN:
                found.append(f"{line}: imports {module}")
    return sorted(set(found))


def test_the_file_list_is_real() -> None:
    files = pure_files()
    rel = {p.relative_to(REPO).as_posix() for p in files}
    assert files
    assert {"engine/events.py", "engine/commands.py", "engine/codec.py"} <= rel
    assert "engine/journal.py" not in rel and "engine/cli.py" not in rel


@pytest.mark.parametrize("path", pure_files(), ids=lambda p: p.relative_to(REPO).as_posix())
def test_pure_module_imports_nothing_impure(path: Path) -> None:
    assert violations(path.read_text(), str(path)) == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import time", ["1: imports time"]),
        ("import os, random as r", ["1: imports random"]),
        ("from datetime import datetime", ["1: imports datetime"]),
        ("from trio.lowlevel import current_clock", ["1: imports trio.lowlevel"]),
        ("def f():\n    import httpx", ["2: imports httpx"]),
        ("x = __import__('sqlite3')", ["1: imports sqlite3"]),
        ("import importlib\nm = importlib.import_module('anyio')", ["2: imports anyio"]),
        ("from x import datetime as datetime\nt = datetime.now()", ["2: calls datetime.now()"]),
        ("import secrets", ["1: imports secrets"]),
        ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import trio\n", []),
        ("import hashlib, decimal\nfrom engine.events import Event\nfrom . import time", []),
        ("timeout = 3\nrandom_walk = 1", []),
    ],
)
def test_the_checker_itself(source: str, expected: list[str]) -> None:
    assert violations(source) == expected
