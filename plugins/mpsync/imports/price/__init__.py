"""The price table import (kind.py says what is the price table's own). What the DAG's tasks call."""

from __future__ import annotations

from datetime import datetime
from typing import Sequence

from mpsync.ftp import FtpParams
from mpsync.imports import pipeline
from mpsync.imports.contracts import Fragment, ImportSummary, PreparedFile, PriceFileRefused  # noqa: F401
from mpsync.imports.price.choice import PriceFileChoiceError, choose_file, waiting_files  # noqa: F401
from mpsync.imports.price.kind import PRICE
from mpsync.imports.price.settings import PriceSettings  # noqa: F401
from mpsync.settings import Settings

CHECKPOINT_NAME = PRICE.checkpoint


def prepare(dsn: str, params: FtpParams, files: Sequence, cfg: Settings, *, dry_run: bool = False) -> PreparedFile:
    """The first of `files` downloaded, parsed and staged (the others wait); a dry run writes only its result."""
    return pipeline.prepare(PRICE, dsn, params, files, cfg, dry_run=dry_run)


def apply_fragment(dsn: str, fragment: Fragment | dict, cfg: Settings) -> int:
    """One fragment in one transaction; the price rows written. A re-run writes 0."""
    return pipeline.apply_fragment(PRICE, dsn, fragment, cfg)


def finish(dsn: str, params: FtpParams, prepared: PreparedFile | dict, cfg: Settings) -> ImportSummary:
    return pipeline.finish(PRICE, dsn, params, prepared, cfg)


def reprocess_archive(dsn: str, params: FtpParams, cfg: Settings, start: datetime,
                      end: datetime) -> pipeline.BackfillSummary:
    """Backfill: the archived price tables made in [start, end) into price_history only."""
    return pipeline.backfill(PRICE, dsn, params, cfg, start, end)
