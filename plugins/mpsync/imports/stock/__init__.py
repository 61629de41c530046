"""The stock report import (kind.py says what is stock's own). What the DAG's tasks call."""

from __future__ import annotations

from datetime import datetime
from typing import Sequence

from mpsync.ftp import FtpParams
from mpsync.imports import pipeline
from mpsync.imports.contracts import Fragment, ImportSummary, PreparedFile, StockFileRefused  # noqa: F401
from mpsync.imports.stock.kind import STOCK
from mpsync.settings import Settings

CHECKPOINT_NAME = STOCK.checkpoint


def prepare(dsn: str, params: FtpParams, files: Sequence, cfg: Settings, *, dry_run: bool = False) -> PreparedFile:
    """The newest new file (older ones are 'stale': a report is a snapshot), downloaded, parsed and staged."""
    return pipeline.prepare(STOCK, dsn, params, files, cfg, dry_run=dry_run)


def apply_fragment(dsn: str, fragment: Fragment | dict, cfg: Settings) -> int:
    """One fragment in one transaction; the stock rows written. A re-run writes 0."""
    return pipeline.apply_fragment(STOCK, dsn, fragment, cfg)


def finish(dsn: str, params: FtpParams, prepared: PreparedFile | dict, cfg: Settings) -> ImportSummary:
    return pipeline.finish(STOCK, dsn, params, prepared, cfg)


def reprocess_archive(dsn: str, params: FtpParams, cfg: Settings, start: datetime,
                      end: datetime) -> pipeline.BackfillSummary:
    """Backfill: the archived stock reports made in [start, end) into stock_history only."""
    return pipeline.backfill(STOCK, dsn, params, cfg, start, end)
