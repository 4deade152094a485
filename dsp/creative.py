"""Creatives of the built-in bidders: small self-contained HTML banners."""

from __future__ import annotations

import html
import zlib
from functools import lru_cache

DEFAULT_SIZE = (300, 250)
_PALETTE = ("#1f6feb", "#8250df", "#bf3989", "#cf222e", "#bc4c00", "#1a7f37", "#0969da", "#57606a")


@lru_cache(maxsize=256)
def banner_html(advertiser: str, w: int, h: int) -> str:
    """An HTML banner of ``w`` x ``h`` pixels showing the advertiser's name.

    Self-contained (inline style, no external resources), so that a demo page renders it as is.
    The colour is derived from the name, so that different advertisers are told apart at a glance.
    """
    colour = _PALETTE[zlib.crc32(advertiser.encode()) % len(_PALETTE)]
    font = max(10, min(h // 3, w // max(6, len(advertiser)), 32))
    name = html.escape(advertiser)
    return (
        f'<div style="width:{w}px;height:{h}px;box-sizing:border-box;overflow:hidden;'
        f"display:flex;align-items:center;justify-content:center;text-align:center;"
        f"background:{colour};color:#fff;font:bold {font}px/1.1 sans-serif;"
        f'border:1px solid rgba(0,0,0,.25)" title="{name}">{name}</div>'
    )
