"""Which files make one catalog exchange, and parsing them: CommerceML files together (joined by Ид), or one
spreadsheet (in a bounded child process, issue 17)."""

from __future__ import annotations

from pathlib import Path

import psycopg

from mpsync.dropfolder import DropFile
from mpsync.onec import bounded, limits, value_limits
from mpsync.onec.catalog_sheet import parse_catalog_sheet
from mpsync.onec.commerceml import is_commerceml, options_from_settings, parse_commerceml
from mpsync.onec.model import CatalogParse, FileRefused


def pick_exchange(files: list[DropFile]) -> tuple[list[DropFile], list[DropFile]]:
    """(files of this run's exchange, superseded files). XML files go together; else the newest sheet."""
    xml = [f for f in files if f.name.lower().endswith(".xml")]
    if xml:
        return xml, []
    return files[-1:], files[:-1]


def onec_id_lookup(conn: psycopg.Connection):
    def lookup(ids: set[str]) -> dict[str, str]:
        rows = conn.execute(
            """select distinct on (onec_id) onec_id, article from product
               where onec_id = any(%s) order by onec_id, active desc, updated_at desc""", (list(ids),))
        return dict(rows.fetchall())
    return lookup


def parse_exchange(locals_: list[Path], conn: psycopg.Connection | None = None) -> CatalogParse:
    """Parse what was downloaded: CommerceML files together, or one spreadsheet."""
    bounds = limits.configured()
    if all(is_commerceml(p) for p in locals_):
        parsed = parse_commerceml(locals_, options=options_from_settings(),
                                  lookup=onec_id_lookup(conn) if conn is not None else None)
        value_limits.check_catalog(parsed, None, bounds)        # text lengths, numeric ranges: rejected rows
        return parsed
    if len(locals_) != 1:
        bad = [p.name for p in locals_ if not is_commerceml(p)]
        raise FileRefused(locals_[0].name, f"not CommerceML XML: {bad}")
    # A sheet goes through the Rust reader: parsed in a bounded child process (issue 17). CommerceML is
    # read by lxml above, with the database lookup it needs.
    parsed = bounded.parse(parse_catalog_sheet, locals_[0], locals_[0].name, bounds)
    value_limits.check_catalog(parsed, locals_[0], bounds)
    return parsed

