"""Checks of DESIGN.md's import rules, shared by the layering tests of each package."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def imported_roots(path: Path) -> set[str]:
    """The top-level packages a module imports (absolute imports only)."""
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            roots.add(node.module.split(".")[0])
    return roots


def offenders(package: str, banned: set[str]) -> list[str]:
    """The modules of ``package`` that import one of ``banned``, with what they import."""
    out = []
    for path in sorted((ROOT / package).rglob("*.py")):
        bad = imported_roots(path) & banned
        if bad:
            out.append(f"{path.relative_to(ROOT)}: {', '.join(sorted(bad))}")
    return out


def assert_load_without_io(modules: list[str]) -> None:
    """Importing ``modules`` in a fresh interpreter pulls in neither asyncio nor aiohttp."""
    code = (
        f"import sys; import {', '.join(modules)}; "
        "bad = sorted({'asyncio', 'aiohttp'} & set(sys.modules)); "
        "sys.exit(', '.join(bad) or None)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
