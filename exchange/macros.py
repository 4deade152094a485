"""OpenRTB macro substitution for notice URLs and markup (``${AUCTION_PRICE}`` and friends)."""

from __future__ import annotations

import re
from collections.abc import Mapping

NAMES = (
    "AUCTION_ID",
    "AUCTION_BID_ID",
    "AUCTION_IMP_ID",
    "AUCTION_SEAT_ID",
    "AUCTION_AD_ID",
    "AUCTION_PRICE",
    "AUCTION_CURRENCY",
    "AUCTION_LOSS",
    "AUCTION_MIN_TO_WIN",
)


_MACRO = re.compile(r"(?:\$\{|%24%7[Bb])(AUCTION_[A-Z_]+)(?:\}|%7[Dd])")
_KNOWN = frozenset(NAMES)


def substitute(text: str, values: Mapping[str, str]) -> str:
    """Replace every ``${NAME}`` (also URL-encoded as ``%24%7BNAME%7D``) with ``values[NAME]``.

    One pass: a substituted value is never expanded again, so a bidder cannot smuggle a macro in
    through its own ids. Known macros without a value become empty strings, as OpenRTB asks; unknown
    ones are left alone. Text without macros is returned as is, which keeps the common case cheap.
    """
    if "${" not in text and "%24" not in text:
        return text

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        return values.get(name, "") if name in _KNOWN else match.group(0)

    return _MACRO.sub(replace, text)


def format_price(micros: int) -> str:
    """A CPM in micro-units as the decimal string a notice carries (no float rounding noise)."""
    sign = "-" if micros < 0 else ""
    whole, frac = divmod(abs(micros), 1_000_000)
    return f"{sign}{whole}.{frac:06d}".rstrip("0").rstrip(".") if frac else f"{sign}{whole}"
