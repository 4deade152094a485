"""Imports go one way: ssp -> exchange, never dsp or gavel; the world is pure (no asyncio, no
aiohttp), so the offline simulator and an oracle can use it without a server."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

SSP = Path(__file__).resolve().parents[3] / "ssp"
WORLD = sorted(f"ssp.world.{p.stem}" for p in (SSP / "world").glob("*.py") if p.stem != "__init__")


def imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            roots.add(node.module.split(".")[0])
    return roots


def test_ssp_never_imports_dsp_or_gavel() -> None:
    for path in SSP.rglob("*.py"):
        assert not imported_roots(path) & {"dsp", "gavel"}, path


def test_the_world_loads_without_asyncio_or_aiohttp() -> None:
    assert len(WORLD) >= 15
    code = (
        f"import sys; import {', '.join(WORLD)}; "
        "bad = sorted({'asyncio', 'aiohttp'} & set(sys.modules)); "
        "sys.exit(', '.join(bad) or None)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


def test_world_modules_stay_small() -> None:
    for path in (SSP / "world").glob("*.py"):
        assert len(path.read_text().splitlines()) <= 400, path
