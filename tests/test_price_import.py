"""Moved to tests/imports/price/test_price_import.py (issue 18). tests/test_crash_recovery.py, which stays
unchanged, imports the price table's override columns from here."""

from tests.imports.price.test_price_import import OVERRIDES  # noqa: F401
