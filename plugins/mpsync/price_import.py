"""The price import's face before issue 18 (dicts in and out), kept for the callers written against it:
tests/test_crash_recovery.py (to stay unchanged) and older tests. New code: mpsync.imports.price."""

from __future__ import annotations

import psycopg

from mpsync.imports import price
from mpsync.imports.contracts import Fragment
from mpsync.imports.price import (PriceFileChoiceError, PriceFileRefused, PriceSettings,  # noqa: F401
                                  choose_file, waiting_files)
from mpsync.imports.price.stage import status_counts

CHECKPOINT_NAME = price.CHECKPOINT_NAME


def flat(d: dict) -> dict:
    """A contract's dict with its kind's details also at the top, as the old dicts had them."""
    return {**d, **d.get("details", {})}


def prepare(dsn, params, files, cfg, *, dry_run: bool = False) -> dict:
    return flat(price.prepare(dsn, params, files, cfg, dry_run=dry_run).to_dict())


def apply_fragment(dsn, fragment: dict, cfg) -> dict:
    """The fragment's status counts, as before."""
    price.apply_fragment(dsn, fragment, cfg)
    f = Fragment.from_dict(fragment)
    with psycopg.connect(dsn) as conn:
        return status_counts(conn, f.import_file_id, f.first_seq, f.last_seq)


def finish(dsn, params, prepared: dict, cfg) -> dict:
    summary = flat(price.finish(dsn, params, prepared, cfg).to_dict())
    return {**summary, "result": summary["result_file"], "dry_run": summary["status"] == "dry run"}


def reprocess_archive(dsn, params, cfg, start, end) -> dict:
    return price.reprocess_archive(dsn, params, cfg, start, end).to_dict()
