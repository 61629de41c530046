"""Cell values from 1C reports: quantities, prices, articles, 1C codes, EAN-13.

Every function takes what a reader produced for one cell (str, float, int, bool, None, or a date/time a
reader wrongly made of a number) and returns a clean value, or raises `BadValue` with a reason a person
can act on. The vectorised fast paths live in the parsers; these are the rules, and the slow path for
the cells the fast path cannot take.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation

# 1C caps large stock as text in a numeric column ("> 1000", "> 5000"). We publish the cap itself:
# a marketplace never needs more than this many units of stock to sell, and a cap is a lower bound.
CAP_RE = re.compile(r"^\s*(?:>|&gt;|более|больше)\s*=?\s*([\d\s\u00a0\u202f.,]+)\s*$", re.IGNORECASE)
# NBSP (U+00A0), narrow NBSP (U+202F), thin space and plain spaces are thousands separators in 1C text numbers.
_SPACES_RE = re.compile(r"[\s\u00a0\u202f\u2009']")
_PLAIN_RE = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$")
_EXCEL_EPOCH = datetime(1899, 12, 30)


class BadValue(ValueError):
    """A cell that cannot be read as what its column holds. The message is the reason for the reject."""


def excel_serial(value: date | datetime | time | timedelta) -> float:
    """The Excel serial number a reader turned into a date (1 -> 1900-01-01, 3160 -> 1908-08-25).

    Readers apply Excel's fake 29 Feb 1900: serials below 61 are one day off the plain epoch. Serial 60
    itself comes back as 1900-02-28 like 59; callers that must tell them apart re-read the raw cell.
    """
    if isinstance(value, timedelta):
        return value.total_seconds() / 86400.0
    if isinstance(value, time):
        return (value.hour * 3600 + value.minute * 60 + value.second + value.microsecond / 1e6) / 86400.0
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    serial = (value - _EXCEL_EPOCH).total_seconds() / 86400.0
    if value < datetime(1900, 3, 1):
        serial -= 1.0
    return serial


def is_dateish(value: object) -> bool:
    return isinstance(value, (date, time, timedelta))


def parse_number(value: object) -> float:
    """A number from a cell: numeric cells as they are; text like `1 719,00`, `-3`, `35,51`; no caps."""
    if isinstance(value, bool):
        raise BadValue(f"not a number: {value!r}")
    if isinstance(value, (int, float)):
        if value != value or value in (float("inf"), float("-inf")):
            raise BadValue(f"not a number: {value!r}")
        return float(value)
    if is_dateish(value):
        # The reader guessed a date from the cell format; the cell holds a number (ONEC.md: DANGER).
        return excel_serial(value)  # type: ignore[arg-type]
    if not isinstance(value, str):
        raise BadValue(f"not a number: {value!r}")
    text = _SPACES_RE.sub("", value)
    if not text:
        raise BadValue("empty")
    if text.startswith("(") and text.endswith(")"):       # accounting negative: (5)
        text = "-" + text[1:-1]
    text = text.replace("\u2212", "-")                     # minus sign
    if "," in text:
        if "." in text:                                    # 1.719,00 (dot thousands) or 1,719.00
            if text.rfind(",") > text.rfind("."):
                text = text.replace(".", "").replace(",", ".")
            else:
                text = text.replace(",", "")
        elif text.count(",") == 1:
            text = text.replace(",", ".")
        else:
            raise BadValue(f"not a number: {value!r}")
    if not _PLAIN_RE.match(text):
        raise BadValue(f"not a number: {value!r}")
    number = float(text)
    if number != number or number in (float("inf"), float("-inf")):
        raise BadValue(f"not a number: {value!r}")
    return number


def is_empty(value: object) -> bool:
    """1C writes zero stock as an empty cell or a single space."""
    return value is None or (isinstance(value, str) and value.strip() == "")


def parse_quantity(value: object) -> tuple[float, str | None]:
    """(quantity, note). Empty = 0; `> 1000` -> 1000 with a note; negative raises. Fractions are kept."""
    if is_empty(value):
        return 0.0, None
    note = None
    if isinstance(value, str):
        m = CAP_RE.match(value)
        if m:
            qty = parse_number(m.group(1))
            note = f"capped value {value.strip()!r} read as {qty:g}"
            return qty, note
    qty = _non_negative(value, "quantity")
    if is_dateish(value):
        note = "reader returned a date; used its serial number"
    return qty, note


def _non_negative(value: object, what: str) -> float:
    try:
        number = parse_number(value)
    except BadValue as exc:
        raise BadValue(f"{what} is not a number: {value!r}") from exc
    if number < 0:
        raise BadValue(f"negative {what} {number:g}")
    return number


_MONEY_BEYOND = 1e12            # numeric(14, 2) holds less; Decimal's quantize fails from 1e26 on


def parse_price(value: object) -> Decimal:
    """A price: numeric or 1C text (`1 719,00`). Empty, negative and non-numeric raise."""
    if is_empty(value):
        raise BadValue("price is empty")
    return _money(value, "price", ": at most 999999999999.99")


def _money(value: object, what: str, most: str) -> Decimal:
    """A non-empty amount of money (a price, an RRP) to kopecks; negative and non-numeric raise."""
    number = _non_negative(value, what)
    if number >= _MONEY_BEYOND:
        raise BadValue(f"{what} {number:g} is too large for the database (numeric(14, 2){most})")
    # Excel stores 1719.9 as a binary float; prices have kopecks, so two decimals is the truth.
    try:
        return Decimal(repr(number)).quantize(Decimal("0.01"))
    except InvalidOperation as exc:  # pragma: no cover - parse_number returns finite floats
        raise BadValue(f"{what} is not a number: {value!r}") from exc


def parse_price_optional(value: object) -> Decimal | None:
    return None if is_empty(value) else parse_price(value)


def _float_text(value: float) -> str:
    """557722.0 -> '557722'; 12.5 -> '12.5' (no exponent, no trailing zeros)."""
    if value == int(value) and abs(value) < 1e17:
        return str(int(value))
    return format(Decimal(repr(value)).normalize(), "f")


# C0 controls except tab/LF/CR, DEL, C1 controls, and Unicode non-characters (U+FDD0..U+FDEF, U+xFFFE/U+xFFFF):
# XML 1.0 forbids most of them (one in a name made a whole feed unreadable: issue 16) and none is text.
# Tab, LF and CR are legal XML; inside a one-line field they are whitespace, so they become spaces.
CONTROL_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufdd0-\ufdef\ufffe\uffff"
                        "\U0001fffe\U0001ffff\U0002fffe\U0002ffff\U0003fffe\U0003ffff\U0010fffe\U0010ffff"
                        "\ud800-\udfff]")
_LINE_BREAKS_RE = re.compile("[\t\n\r]+")


def strip_controls(text: str) -> tuple[str, list[str]]:
    """(text without control characters and non-characters, the code points removed as 'U+000B').

    Line breaks and tabs inside a one-line value become one space."""
    removed = [f"U+{ord(c):04X}" for c in CONTROL_RE.findall(text)]
    if removed:
        text = CONTROL_RE.sub("", text)
    if "\t" in text or "\n" in text or "\r" in text:
        text = _LINE_BREAKS_RE.sub(" ", text)
    return text, removed


def control_chars(value: object) -> list[str]:
    """The control characters and non-characters a text cell holds ('U+000B'...), for the report."""
    return [f"U+{ord(c):04X}" for c in CONTROL_RE.findall(value)] if isinstance(value, str) else []


def cleaned_note(column: str, removed: list[str]) -> str:
    """The report line for a value that lost characters at import (staff read it in the result file)."""
    shown = ", ".join(sorted(set(removed)))
    return f"{column}: removed {len(removed)} control/non-character(s) ({shown})"


def clean_text(value: object) -> tuple[str | None, list[str]]:
    """A free-text cell (name, brand, model, group) stripped of control characters; None when empty."""
    if is_empty(value):
        return None, []
    text = _float_text(value) if isinstance(value, float) else str(value)
    text, removed = strip_controls(text)
    return (text.strip() or None), removed


def clean_article(value: object) -> str | None:
    """The article as text, or None when the cell is empty.

    Kept byte-exact (case, inner spaces, Cyrillic/Latin look-alikes: marketplaces match SKUs exactly),
    except leading/trailing whitespace, which is cell padding from 1C and Excel (real exports have
    trailing spaces in names and headers), never part of a SKU a marketplace would accept.
    A numeric cell (Excel turned `557722` into 557722.0) becomes its integer text; leading zeros lost by
    Excel cannot be recovered, so parsers count such cells in their layout notes.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        return str(value).upper()
    if isinstance(value, float):
        return _float_text(value)
    if isinstance(value, int):
        return str(value)
    if is_dateish(value):
        return _float_text(excel_serial(value))  # type: ignore[arg-type]
    text = strip_controls(str(value))[0].strip()
    return text or None


ONEC_CODE_LEN = 11


def clean_onec_code(value: object) -> str | None:
    """The 1C nomenclature code: 11-character zero-padded text (`00000015452`).

    A re-save in Excel makes it the number 15452 (shown with format 00000000000): padded back to 11.
    Text codes (`00-00000003`, `ЦБ-0001234`) are kept as they are. Anything longer than 11 characters or
    a fraction is not a code: raises.
    """
    if is_empty(value):
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if value != int(value) or value < 0:
            raise BadValue(f"1C code is not a whole number: {value!r}")
        digits = str(int(value))
        if len(digits) > ONEC_CODE_LEN:
            raise BadValue(f"1C code {digits} is longer than {ONEC_CODE_LEN} digits")
        return digits.zfill(ONEC_CODE_LEN)
    text = strip_controls(str(value))[0].strip()
    if len(text) > ONEC_CODE_LEN:
        raise BadValue(f"1C code {text} is longer than {ONEC_CODE_LEN} characters")
    if text.isdigit():
        return text.zfill(ONEC_CODE_LEN)                  # a CSV lost the zeros of a numeric code
    return text


def gtin_check_digit(body: str) -> int:
    """The GS1 check digit of the digits before it (EAN-8, UPC-A, EAN-13 alike: weights 3,1 from the right)."""
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return (10 - total % 10) % 10


def ean13_check_digit(first12: str) -> int:
    return gtin_check_digit(first12)


def clean_ean(value: object) -> str | None:
    """An EAN-8, UPC-A (12) or EAN-13 barcode with a verified check digit, as printed on the package.

    Floats from Excel (4.260375481774e12) accepted. Never padded: an EAN-8 padded to 13 digits is a valid
    number but not the one on the package (issue 16). Raises with a reason.
    """
    if is_empty(value):
        return None
    if isinstance(value, float):
        if value != int(value):
            raise BadValue(f"EAN is not a whole number: {value!r}")
        text = str(int(value))
    elif isinstance(value, int) and not isinstance(value, bool):
        text = str(value)
    else:
        text = _SPACES_RE.sub("", strip_controls(str(value))[0])
    if not text.isdigit() or not text.isascii():
        raise BadValue(f"EAN must be digits only: {value!r}")
    if len(text) not in (8, 12, 13):
        raise BadValue(f"EAN must have 8, 12 or 13 digits, got {len(text)}: {text}")
    if gtin_check_digit(text[:-1]) != int(text[-1]):
        raise BadValue(f"EAN {text} has a wrong check digit (expected {gtin_check_digit(text[:-1])})")
    return text


def parse_decimal_optional(value: object, what: str) -> Decimal | None:
    return None if is_empty(value) else _money(value, what, "")
