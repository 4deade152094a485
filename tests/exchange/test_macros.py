"""OpenRTB macro substitution and exact price formatting."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exchange.macros import NAMES, format_price, substitute

# The macros DESIGN.md names, written out independently of the module.
MACROS = (
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
VALUES = {name: f"v-{name.lower()}" for name in MACROS}


def test_every_design_macro_is_known() -> None:
    assert set(MACROS) <= set(NAMES)


@pytest.mark.parametrize("name", MACROS)
def test_each_macro_is_substituted(name: str) -> None:
    text = f"https://dsp.example/n?x=${{{name}}}&y=1"
    assert substitute(text, VALUES) == f"https://dsp.example/n?x={VALUES[name]}&y=1"


@pytest.mark.parametrize("name", MACROS)
@pytest.mark.parametrize("form", ["%24%7B{}%7D", "%24%7b{}%7d"])
def test_each_url_encoded_macro_is_substituted(name: str, form: str) -> None:
    text = "https://dsp.example/n?x=" + form.format(name)
    assert substitute(text, VALUES) == f"https://dsp.example/n?x={VALUES[name]}"


@pytest.mark.parametrize("form", ["%24%7bAUCTION_PRICE%7D", "%24%7BAUCTION_PRICE%7d"])
def test_mixed_case_percent_encoding_is_substituted(form: str) -> None:
    """Percent-encoding hex digits are case-insensitive (RFC 3986 2.1): %7b and %7B are one byte."""
    assert substitute("p=" + form, {"AUCTION_PRICE": "1.5"}) == "p=1.5"


def test_all_macros_in_one_text() -> None:
    text = "&".join(f"{n.lower()}=${{{n}}}" for n in MACROS)
    expected = "&".join(f"{n.lower()}={VALUES[n]}" for n in MACROS)
    assert substitute(text, VALUES) == expected


def test_repeated_macro_is_substituted_everywhere() -> None:
    text = "${AUCTION_PRICE}|%24%7BAUCTION_PRICE%7D|${AUCTION_PRICE}"
    assert substitute(text, {"AUCTION_PRICE": "2.5"}) == "2.5|2.5|2.5"


def test_markup_with_price_macro() -> None:
    adm = '<img src="https://dsp.example/imp?price=${AUCTION_PRICE}&cur=${AUCTION_CURRENCY}">'
    got = substitute(adm, {"AUCTION_PRICE": "1.01", "AUCTION_CURRENCY": "USD"})
    assert got == '<img src="https://dsp.example/imp?price=1.01&cur=USD">'


@pytest.mark.parametrize(
    "text",
    [
        "",
        "https://dsp.example/win?id=1",
        "price=$AUCTION_PRICE",
        "price={AUCTION_PRICE}",
        "${UNKNOWN_MACRO}",
        "${auction_price}",
        "%24%7BUNKNOWN%7D",
        "a%7Bb",
        "${AUCTION_PRICE",
    ],
)
def test_text_without_known_macros_is_returned_identical(text: str) -> None:
    assert substitute(text, VALUES) == text


def test_text_without_macros_is_the_same_object() -> None:
    text = "".join(["https://dsp.example/", "win?id=1"])  # a fresh, non-interned string
    assert substitute(text, VALUES) is text


def test_missing_values_become_empty() -> None:
    text = "p=${AUCTION_PRICE}&l=${AUCTION_LOSS}&m=%24%7BAUCTION_MIN_TO_WIN%7D&id=${AUCTION_ID}"
    assert substitute(text, {"AUCTION_ID": "a1"}) == "p=&l=&m=&id=a1"
    assert substitute(text, {}) == "p=&l=&m=&id="


def test_values_are_inserted_literally_not_substituted_again() -> None:
    """Bid and seat ids come from the bidder: a value holding a macro must not be expanded."""
    values = {"AUCTION_BID_ID": "${AUCTION_PRICE}", "AUCTION_PRICE": "1.5"}
    assert substitute("b=${AUCTION_BID_ID}", values) == "b=${AUCTION_PRICE}"
    values = {"AUCTION_ID": "%24%7BAUCTION_LOSS%7D", "AUCTION_LOSS": "102"}
    assert substitute("a=${AUCTION_ID}", values) == "a=%24%7BAUCTION_LOSS%7D"


@pytest.mark.parametrize(
    ("micros", "text"),
    [
        (1_010_000, "1.01"),
        (2_000_000, "2"),
        (1, "0.000001"),
        (0, "0"),
        (10, "0.00001"),
        (500_000, "0.5"),
        (1_000_001, "1.000001"),
        (123_456_789, "123.456789"),
        (10_000, "0.01"),
        (100_000_000, "100"),
        (-1, "-0.000001"),
        (-2_500_000, "-2.5"),
        (-3_000_000, "-3"),
    ],
)
def test_format_price_exact(micros: int, text: str) -> None:
    assert format_price(micros) == text


@settings(max_examples=300)
@given(st.integers(min_value=-(10**15), max_value=10**15))
def test_format_price_round_trips_exactly(micros: int) -> None:
    text = format_price(micros)
    assert Decimal(text) * 1_000_000 == micros
    assert "e" not in text.lower()
    if "." in text:
        assert not text.endswith(("0", "."))
        assert len(text.split(".")[1]) <= 6
