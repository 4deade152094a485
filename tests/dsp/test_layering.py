"""Imports go one way: dsp -> exchange; the pure parts of dsp use neither asyncio nor aiohttp."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

DSP = Path(__file__).resolve().parents[2] / "dsp"
PURE = [
    "dsp.bidder",
    "dsp.bidders.campaign",
    "dsp.bidders.campaign_report",
    "dsp.bidders.campaign_turn",
    "dsp.bidders.constant",
    "dsp.bidders.random_bid",
    "dsp.campaign",
    "dsp.clock",
    "dsp.config",
    "dsp.conformance",
    "dsp.creative",
    "dsp.ctr",
    "dsp.faults",
    "dsp.fixtures",
    "dsp.geo",
    "dsp.index",
    "dsp.memory_state",
    "dsp.notices",
    "dsp.pacing",
    "dsp.params",
    "dsp.pixel",
    "dsp.registry",
    "dsp.response",
    "dsp.state",
    "dsp.strategy",
    *(f"dsp.strategies.{p.stem}" for p in sorted((DSP / "strategies").glob("[!_]*.py"))),
    "dsp.targeting",
]


def imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            roots.add(node.module.split(".")[0])
    return roots


def test_dsp_never_imports_ssp_or_gavel() -> None:
    for path in DSP.rglob("*.py"):
        assert not imported_roots(path) & {"ssp", "gavel"}, path


def test_pure_modules_load_without_asyncio_or_aiohttp() -> None:
    code = (
        f"import sys; import {', '.join(PURE)}; "
        "bad = sorted({'asyncio', 'aiohttp'} & set(sys.modules)); "
        "sys.exit(', '.join(bad) or None)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
