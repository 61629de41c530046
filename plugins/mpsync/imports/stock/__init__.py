"""The stock report import (kind.py says what is stock's own): the lifecycle's steps of the STOCK kind."""

from __future__ import annotations

from mpsync.imports.contracts import StockFileRefused  # noqa: F401
from mpsync.imports.stock.kind import STOCK

CHECKPOINT_NAME = STOCK.checkpoint
# prepare: the newest new file (older ones are 'stale': a report is a snapshot), downloaded, parsed, staged;
# apply_fragment: one fragment in one transaction (a re-run writes 0); finish; reprocess_archive: backfill of
# the archived reports made in [start, end) into stock_history only.
prepare, apply_fragment, finish, reprocess_archive = STOCK.prepare, STOCK.apply_fragment, STOCK.finish, STOCK.backfill
