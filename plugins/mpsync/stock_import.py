"""The stock import's face before issue 18 (dicts in and out), kept for the callers written against it:
tests/test_crash_recovery.py (to stay unchanged) and older tests. New code: mpsync.imports.stock."""

from __future__ import annotations

from types import SimpleNamespace

from mpsync.imports import stock
from mpsync.imports.contracts import StockFileRefused  # noqa: F401
from mpsync.imports.files import work_dir  # noqa: F401

CHECKPOINT_NAME = stock.CHECKPOINT_NAME


def flat(d: dict) -> dict:
    """A contract's dict with its kind's details also at the top, as the old dicts had them."""
    return {**d, **d.get("details", {})}


def prepare(dsn, params, files, cfg) -> dict:
    return flat(stock.prepare(dsn, params, files, cfg).to_dict())


def apply_fragment(dsn, fragment: dict, warehouse_codes) -> int:
    return stock.apply_fragment(dsn, fragment, SimpleNamespace(stock_columns=tuple(warehouse_codes)))


def finish(dsn, params, prepared: dict, cfg) -> dict:
    return flat(stock.finish(dsn, params, prepared, cfg).to_dict())


def reprocess_archive(dsn, params, cfg, start, end) -> dict:
    return stock.reprocess_archive(dsn, params, cfg, start, end).to_dict()
