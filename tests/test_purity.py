"""chatproto is sans-IO: no module of it imports anything that does I/O or concurrency."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import chatproto

PACKAGE = Path(chatproto.__file__).resolve().parent
SOURCES = sorted(PACKAGE.glob("*.py"))

FORBIDDEN = frozenset(
    {
        "socket",
        "threading",
        "_thread",
        "select",
        "selectors",
        "asyncio",
        "ssl",
        "socketserver",
        "subprocess",
        "multiprocessing",
        "concurrent",
        "os",
        "io",
        "shutil",
        "pathlib",
        "http",
        "urllib",
        "importlib",
    }
)


def imported_modules(source: str) -> set[str]:
    """The top-level names of every absolute module that `source` imports."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "__import__"
        ):
            found.add("__import__")
    return found


def test_every_module_is_checked() -> None:
    names = {p.name for p in SOURCES}
    expected = {"codec.py", "connection.py", "errors.py", "framing.py", "messages.py"}
    assert expected | {"__init__.py", "schema.py", "__main__.py"} <= names


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_no_io_imports(path: Path) -> None:
    imports = imported_modules(path.read_text(encoding="utf-8"))
    assert "__import__" not in imports
    assert not imports & FORBIDDEN, f"{path.name} imports {sorted(imports & FORBIDDEN)}"


def test_the_expected_imports_are_seen() -> None:
    # The checker must see real imports, or the test above proves nothing.
    seen = set().union(*(imported_modules(p.read_text(encoding="utf-8")) for p in SOURCES))
    assert {"json", "pydantic", "chatproto", "enum", "__future__"} <= seen


@pytest.mark.parametrize(
    "source",
    [
        "import socket",
        "import os.path",
        "from os import path",
        "from threading import Lock",
        "import asyncio as aio",
        "import json, selectors",
        "def f():\n    import ssl\n",
        "try:\n    import subprocess\nexcept ImportError:\n    pass\n",
        "m = __import__('socketserver')",
    ],
)
def test_the_checker_catches_io_imports(source: str) -> None:
    imports = imported_modules(source)
    assert imports & FORBIDDEN or "__import__" in imports


@pytest.mark.parametrize(
    "source",
    [
        "import json",
        "from __future__ import annotations",
        "from dataclasses import dataclass",
        "from typing import Any",
        "from pydantic import BaseModel",
        "from . import codec",
        "from chatproto.codec import encode",
    ],
)
def test_the_checker_allows_pure_imports(source: str) -> None:
    imports = imported_modules(source)
    assert not imports & FORBIDDEN
    assert "__import__" not in imports
