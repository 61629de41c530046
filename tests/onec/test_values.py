"""Cell value rules of 1C reports (ONEC.md "Values")."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal

import pytest

from mpsync.onec.values import (BadValue, clean_article, clean_ean, clean_onec_code, clean_text, excel_serial,
                                parse_number, strip_controls,
                                parse_price, parse_quantity)

NBSP = "\u00a0"


@pytest.mark.parametrize("cell, expected", [
    (None, 0.0), ("", 0.0), (" ", 0.0), (NBSP, 0.0),
    (5.0, 5.0), (35.51, 35.51), ("35,51", 35.51), (f"1{NBSP}719,00", 1719.0), ("1 719,5", 1719.5),
    ("12", 12.0), ("> 1000", 1000.0), ("> 5000", 5000.0), (">1000", 1000.0), ("более 500", 500.0),
    (f"> 1{NBSP}000", 1000.0),
])
def test_quantity(cell, expected):
    assert parse_quantity(cell)[0] == expected


def test_quantity_caps_say_so():
    qty, note = parse_quantity("> 1000")
    assert qty == 1000 and "capped" in note and "> 1000" in note


@pytest.mark.parametrize("cell, reason", [
    ("abc", "not a number"), ("12шт", "not a number"), (-3.0, "negative"), ("-1", "negative"),
    ("1,2,3", "not a number"), (True, "not a number"), ("#ERROR7", "not a number"),
])
def test_quantity_rejects(cell, reason):
    with pytest.raises(BadValue, match=reason):
        parse_quantity(cell)


@pytest.mark.parametrize("value, serial", [
    (date(1900, 1, 1), 1), (date(1900, 2, 28), 59), (date(1900, 3, 1), 61), (date(1908, 8, 25), 3160),
    (datetime(1900, 2, 4, 12, 14, 24), 35.51), (time(12, 0), 0.5), (timedelta(days=60), 60),
])
def test_dates_a_reader_made_of_numbers_go_back_to_numbers(value, serial):
    assert excel_serial(value) == pytest.approx(serial)
    assert parse_quantity(value)[0] == pytest.approx(serial)


def test_number_formats():
    assert parse_number("1.719,00") == 1719.0
    assert parse_number("1,719.00") == 1719.0
    assert parse_number("(5)") == -5.0
    assert parse_number("\u22123") == -3.0


def test_prices_are_decimals_with_kopecks():
    assert parse_price(1719.9) == Decimal("1719.90")
    assert parse_price(f"1{NBSP}719,00") == Decimal("1719.00")
    with pytest.raises(BadValue, match="empty"):
        parse_price(" ")
    with pytest.raises(BadValue, match="not a number"):
        parse_price("по запросу")


@pytest.mark.parametrize("cell, expected", [
    ("0557722", "0557722"), (" 0557722 ", "0557722"), ("МП00-007875", "МП00-007875"), ("Б- 130005 ", "Б- 130005"),
    (557722.0, "557722"), (557722, "557722"), (12.5, "12.5"), ("", None), (None, None), (" ", None),
    ("A\u0421B", "A\u0421B"),   # Cyrillic С among Latin letters stays as it is: marketplaces match exactly
])
def test_articles_are_text_trimmed_only(cell, expected):
    assert clean_article(cell) == expected


@pytest.mark.parametrize("cell, expected", [
    (15452.0, "00000015452"), (15452, "00000015452"), ("00000015452", "00000015452"), ("15452", "00000015452"),
    ("00-00000003", "00-00000003"), ("ЦБ-0001234", "ЦБ-0001234"), (None, None),
])
def test_onec_code_repair(cell, expected):
    assert clean_onec_code(cell) == expected


def test_onec_code_that_is_not_a_code():
    with pytest.raises(BadValue):
        clean_onec_code(123456789012.0)
    with pytest.raises(BadValue):
        clean_onec_code(12.5)


def test_ean():
    assert clean_ean(4260375481774.0) == "4260375481774"
    assert clean_ean("4 260375 481774") == "4260375481774"
    assert clean_ean("96385074") == "96385074"                 # EAN-8 as printed, never padded
    assert clean_ean("036000291452") == "036000291452"         # UPC-A as printed
    with pytest.raises(BadValue, match="check digit"):
        clean_ean("96385075")                                  # EAN-8 checked with its own weights
    with pytest.raises(BadValue, match="check digit"):
        clean_ean("4260375481775")
    with pytest.raises(BadValue, match="digits"):
        clean_ean("42603754817X4")
    with pytest.raises(BadValue, match="8, 12 or 13 digits"):
        clean_ean("12345")
    with pytest.raises(BadValue, match="8, 12 or 13 digits"):
        clean_ean("04260375481774")                            # GTIN-14 is not a package barcode


def test_control_characters_are_stripped_and_named():
    assert strip_controls("a\x0bb\ufffec\x7f") == ("abc", ["U+000B", "U+FFFE", "U+007F"])
    assert strip_controls("a\tb\r\nc") == ("a b c", [])       # legal XML, but not inside a one-line value
    assert strip_controls("Ёж 🫖 «x»") == ("Ёж 🫖 «x»", [])
    assert clean_text(" Чайник\x01 ") == ("Чайник", ["U+0001"])
    assert clean_article("ART\x0b-1 ") == "ART-1"
    assert clean_onec_code("\x0200015452") == "00000015452"
