"""Headless Chromium for the browser tests: Debian's /usr/bin/chromium driven by Playwright.

``make test`` installs the browser (``make browser``: apt-get when it is missing). A missing
browser fails these tests loudly; they never skip. Playwright's own browser downloads are never
used (``executable_path``), and the async API runs in the test's event loop, next to the
pytest-aiohttp servers it talks to.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, async_playwright

CHROMIUM = Path(os.environ.get("GAVEL_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ROOT = Path(__file__).resolve().parents[2]
#: Screenshots of every run (git-ignored).
ARTIFACTS = ROOT / "tests" / "artifacts"


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: the browser tests need Debian's chromium "
            "(`make browser` installs it; `make test` does so first)"
        )
    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield chromium
        finally:
            await chromium.close()
