"""``gavel run`` opens the dashboard in a browser only for a person at a terminal with a display."""

from __future__ import annotations

import sys
import webbrowser

import pytest

from gavel import run
from gavel.cli import build_parser


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The URLs handed to the web browser (none is started)."""
    urls: list[str] = []

    def fake_open(url: str, *args: object, **kwargs: object) -> bool:
        urls.append(url)
        return True

    monkeypatch.setattr(webbrowser, "open", fake_open)
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    return urls


URL = "http://127.0.0.1:8000/dashboard"


def test_opens_at_a_terminal_with_a_display(opened: list[str]) -> None:
    assert run.open_browser(URL) is True
    assert opened == [URL]


def test_never_in_ci(opened: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    assert run.open_browser(URL) is False
    assert opened == []


def test_never_when_the_output_is_not_a_terminal(
    opened: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys.stdout, "isatty", lambda: False)
    assert run.open_browser(URL) is False
    assert opened == []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the display rule is Linux's")
def test_never_without_a_display(opened: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert run.open_browser(URL) is False
    assert opened == []


def test_run_takes_no_browser_and_event_log() -> None:
    args = build_parser().parse_args(["run", "--no-browser", "--event-log", "e.jsonl"])
    assert (args.no_browser, args.event_log) == (True, "e.jsonl")
    assert build_parser().parse_args(["run"]).no_browser is False
