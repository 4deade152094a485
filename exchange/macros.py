"""OpenRTB macro substitution for notice URLs and markup (``${AUCTION_PRICE}`` and friends)."""

from __future__ import annotations

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


def substitute(text: str, values: Mapping[str, str]) -> str:
    """Replace every ``${NAME}`` (also URL-encoded as ``%24%7BNAME%7D``) with ``values[NAME]``.

    Macros without a value become empty strings, as OpenRTB asks; text without macros is returned
    as is, which keeps the common case cheap.
    """
    if "${" in text:
        for name in NAMES:
            token = "${" + name + "}"
            if token in text:
                text = text.replace(token, values.get(name, ""))
    if "%7B" in text or "%7b" in text:
        for name in NAMES:
            for token in ("%24%7B" + name + "%7D", "%24%7b" + name + "%7d"):
                if token in text:
                    text = text.replace(token, values.get(name, ""))
    return text


def format_price(micros: int) -> str:
    """A CPM in micro-units as the decimal string a notice carries (no float rounding noise)."""
    sign = "-" if micros < 0 else ""
    whole, frac = divmod(abs(micros), 1_000_000)
    return f"{sign}{whole}.{frac:06d}".rstrip("0").rstrip(".") if frac else f"{sign}{whole}"
