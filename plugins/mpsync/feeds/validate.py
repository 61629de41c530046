"""The marketplaces' rules, each with its source, and the two places they are checked.

- per offer, before it is written (`offer_screen`): a product breaking a rule is left out of that feed only
  and listed in the feed's report with the rule and the marketplace's wording; the feed goes out without it;
- per file, after rendering (`validate_feed`, streaming, in filecheck.py): a broken template or anything
  the offer screen cannot see (order, declarations, the date) refuses the whole feed; the last good stays.

Sources (docs/feeds.md has the table rule -> source -> checked how):
  [V]    the marketplace's own documentation or official spec (MARKETPLACES.md [V]; the Yandex Market
         Partner API OpenAPI spec, public repository yandex-market/yandex-market-partner-api);
  [V16]  the marketplace's published feed rules as quoted in issue 16 (not re-read by us);
  [3P]   third-party material only (independent code, client libraries): marked so in code and docs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from mpsync.onec.values import CONTROL_RE, gtin_check_digit


@dataclass(frozen=True)
class Rule:
    name: str
    wording: str            # the marketplace's rule in its own words (staff see it in the report)
    source: str
    third_party: bool = False


# Yandex ShopSku [V: openapi/components/schemas/ShopSku.yaml]: pattern ^(?=.*\S.*)[^\x00-\x08\x0A-\x1f\x7f]{1,255}$,
# leading/trailing spaces trimmed by Yandex (so an id with them is not byte-identical to ours).
_YANDEX_ID = re.compile(r"^(?=.*\S)[^\x00-\x08\x0a-\x1f\x7f]{1,255}$")
# Ozon offer_id [3P: Seller API client libraries, "максимальная длина 50 символов"]; the feed page is not available.
_OZON_ID = re.compile(r"^(?=.*\S)[^\x00-\x1f\x7f]{1,50}$")
# Megamarket offer id [V16]: latin letters, digits, '-' and '_', up to 20 characters.
_MEGAMARKET_ID = re.compile(r"^[A-Za-z0-9_-]{1,20}$")
OFFER_ID_FORMAT = {"yandex": _YANDEX_ID, "ozon": _OZON_ID, "megamarket": _MEGAMARKET_ID}

YANDEX_NAME_MAX = 256           # [V: openapi/components/schemas/OfferName.yaml, maxLength: 256]
# Yandex oldprice [V: openapi/components/schemas/DiscountBase.yaml "цену со скидкой от 5 до 99%"]; Megamarket
# ignores smaller discounts too [V16]. Outside the range the old price is not published (offers.py).
DISCOUNT_MIN, DISCOUNT_MAX = 0.05, 0.99
MAX_AGE = timedelta(days=10)    # [V] MARKETPLACES.md: Yandex rejects a catalogue older than 10 days
MEGAMARKET_MAX_BYTES = 500 * 1000 * 1000    # [V] MARKETPLACES.md "<= 500 MB" (decimal: the stricter reading)
MEGAMARKET_VAT_CODES = range(1, 7)          # [V16] VAT codes 1..6

RULES = {r.name: r for r in (
    Rule("offer_id_format", "Идентификатор предложения (offer id) не соответствует правилам маркетплейса: "
         "Яндекс — 1–255 символов без управляющих; Ozon — до 50 символов; Мегамаркет — латинские буквы, "
         "цифры, «-» и «_», до 20 символов",
         "Yandex [V] ShopSku.yaml; Ozon [3P] offer_id max 50; Megamarket [V16]", third_party=True),
    Rule("offer_id_clash", "Идентификатор предложения должен быть уникальным и не может быть использован "
         "повторно для другого товара", "[V] MARKETPLACES.md, ShopSku.yaml"),
    Rule("name_required", "Название товара обязательно", "[V] MARKETPLACES.md (Yandex, Megamarket: name)"),
    Rule("name_length", f"Максимальная длина названия — {YANDEX_NAME_MAX} символов",
         "[V] Yandex OfferName.yaml maxLength 256"),
    Rule("xml_characters", "Фид должен быть корректным XML в UTF-8: управляющие символы и «не-символы» "
         "Юникода недопустимы", "[V] XML 1.0 §2.2 Char; MARKETPLACES.md (UTF-8 XML)"),
    Rule("barcode_yandex", "Штрихкод: 8, 12 или 13 цифр с верной контрольной цифрой (EAN-8, UPC-A, EAN-13)",
         "[V16] Yandex barcode"),
    Rule("barcode_megamarket", "Штрихкод: 13 цифр (EAN-13) с верной контрольной цифрой, не начинающийся "
         "с «20» (внутренние коды магазина)", "[V16] Megamarket barcode"),
)}


def offer_id_problem(marketplace: str, oid: str | None) -> str | None:
    """Why `oid` cannot be this marketplace's offer id, or None when it can."""
    if not oid:
        return "no offer id"
    if CONTROL_RE.search(oid) or "\t" in oid:
        return f"offer id {oid!r} contains control characters"
    if oid != oid.strip():
        return f"offer id {oid!r} has leading or trailing spaces (Yandex trims them: not byte-identical)"
    if not OFFER_ID_FORMAT[marketplace].match(oid):
        return f"offer id {oid!r} does not match {OFFER_ID_FORMAT[marketplace].pattern}"
    return None


def gtin_valid(code: str, lengths: tuple[int, ...] = (8, 12, 13)) -> bool:
    """Digits only, an allowed length and the GS1 check digit right (EAN-8, UPC-A, EAN-13)."""
    return (len(code) in lengths and code.isdigit() and code.isascii()
            and gtin_check_digit(code[:-1]) == ord(code[-1]) - 48)


def barcode_problem(marketplace: str, code: str) -> tuple[str, str] | None:
    if marketplace == "yandex" and not gtin_valid(code):
        return "barcode_yandex", f"barcode {code!r} is not a valid EAN-8, UPC-A or EAN-13"
    if marketplace == "megamarket" and (not gtin_valid(code, (13,)) or code.startswith("20")):
        return "barcode_megamarket", f"barcode {code!r} is not a valid EAN-13 outside the in-store 20 prefix"
    return None


def text_problem(field: str, value: str | None) -> tuple[str, str] | None:
    if value is not None and CONTROL_RE.search(value):
        found = sorted({f"U+{ord(c):04X}" for c in CONTROL_RE.findall(value)})
        return "xml_characters", f"{field} contains {', '.join(found)}"
    return None


def offer_problems(marketplace: str, row: tuple) -> list[tuple[str, str]]:
    """Every rule an offer row (Offer order) breaks, as (rule, message). The slow, complete check."""
    oid, article, name, vendor, model, barcode = row[:6]
    out = []
    for field, value in (("offer id", oid), ("article", article), ("name", name), ("vendor", vendor),
                         ("model", model), ("barcode", barcode)):
        if (p := text_problem(field, value)) is not None:
            out.append(p)
    if marketplace in ("yandex", "megamarket"):
        if name is None or not name.strip():
            out.append(("name_required", "the product has no name"))
        elif marketplace == "yandex" and len(name) > YANDEX_NAME_MAX:
            out.append(("name_length", f"name is {len(name)} characters long"))
        if barcode is not None and (p := barcode_problem(marketplace, barcode)) is not None:
            out.append(p)
    return out


def offer_screen(marketplace: str):
    """A per-row check for the render loop: None when the row breaks no rule (the fast path, a few
    comparisons per offer), else the list of (rule, message). Ozon's feed carries ids, stock and prices
    only: its text rules are the id's, enforced when the id is assigned (offer_ids)."""
    control = CONTROL_RE.search
    if marketplace == "ozon":
        return None
    yandex = marketplace == "yandex"
    lengths = (8, 12, 13) if yandex else (13,)

    def screen(row: tuple):
        article, name, vendor, model, barcode = row[1], row[2], row[3], row[4], row[5]
        if (name and (yandex or not control(article)) and (not yandex or len(name) <= YANDEX_NAME_MAX) and not control(name)
                and (vendor is None or not control(vendor)) and (model is None or not control(model))
                and (barcode is None or (len(barcode) in lengths and barcode.isdigit()
                                         and gtin_check_digit(barcode[:-1]) == ord(barcode[-1]) - 48
                                         and (yandex or barcode[:2] != "20")))
                and name.strip()):
            return None
        return offer_problems(marketplace, row) or None
    return screen


def validate_feed(path: Path, fs, now=None):
    """The whole-file check (filecheck.py): never raises on bad content, reports it."""
    from mpsync.feeds.filecheck import check_file

    return check_file(path, fs, now)
