"""The imports' whole-file refusal rules that need the exchange database, as plain functions.

The import's stage() (imports/stock/kind.py, imports/price/kind.py) and `python -m mpsync inspect
--against-db` (inspect_against_db.py) both call these, so the two can never disagree about a file. The rules
that need only the file (empty, truncated, no header, not one quantity) are the parsers' (onec.*), which both
call as well.
"""

from __future__ import annotations


def stock_refusal(known: int, rows: int, rejected: int, previous: int | None, min_share: float) -> str | None:
    """Why a stock report must not be applied at all, or None.

    known: its rows with a product to stage (unknown articles and too large quantities are rejected rows);
    rows: the rows the parser kept; rejected: every rejected row; previous: the known articles of the last
    applied (or unchanged) stock report, None when there was none; min_share: stock_import.min_coverage_share.
    A report with far fewer articles than the last one is a truncated export far more often than a shrunken
    assortment, and applying it would leave the missing articles' stock as it was hours ago."""
    if known == 0:
        return f"no known articles among {rows} rows ({rejected} rejected)"
    if previous and known < min_share * previous:
        return (f"only {known} known articles vs {previous} in the previous import "
                f"(below the configured share {min_share:.0%}): truncated file?")
    return None


def price_refusal(usable: int, rows_read: int, rejected: int) -> str | None:
    """Why a price table must not be applied at all, or None. usable: its rows with an article and a price,
    each article once (imports.price.stage.usable_items). A price table may list only some articles (an
    article it leaves out keeps its price), so no coverage rule: fewer articles are not a danger here."""
    if usable == 0:
        return f"no usable price rows among {rows_read} rows read ({rejected} rejected)"
    return None


def catalog_refusal(file: str, to_deactivate: int, active: int, max_share: float) -> str | None:
    """Why a FULL catalog (not a CommerceML file of changes only) must not be applied at all, or None.
    to_deactivate: active products it does not name (imports.catalog.stage.deactivation_counts), which a full
    catalog switches off; max_share: catalog.max_deactivate_share. Losing a large part of the catalog at once
    is a cut export far more often than real delistings."""
    if active and to_deactivate > max_share * active:
        return (f"{file}: a full catalog without {to_deactivate} of {active} active products would "
                f"switch off more than {max_share:.0%} of the catalog (truncated export?); nothing applied")
    return None
