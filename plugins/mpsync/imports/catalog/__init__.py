"""The catalog import: 1C nomenclature (a spreadsheet, or a CommerceML exchange) into `product`, with CommerceML
prices and per-warehouse stock (kind.py says what is the catalog's own): the lifecycle's steps of CATALOG."""

from __future__ import annotations

from mpsync.imports.catalog.kind import CATALOG
from mpsync.imports.catalog.parse import parse_exchange  # noqa: F401
from mpsync.imports.contracts import CatalogFileRefused  # noqa: F401

CHECKPOINT_NAME = CATALOG.checkpoint
# prepare: one exchange downloaded, parsed, staged (a dry run writes only its result file); apply_fragment:
# one fragment of products in one transaction (a re-run writes 0); finish: absent and deletion-marked products
# switched off, prices and stock, ledger, result file; reprocess_archive: archived CommerceML prices into
# price_history only.
prepare, apply_fragment, finish, reprocess_archive = (CATALOG.prepare, CATALOG.apply_fragment, CATALOG.finish,
                                                      CATALOG.backfill)


def run(dsn, params, found, cfg, *, dry_run: bool = False):
    """prepare, every fragment, finish in one call (what the DAG does in several tasks): the ImportSummary."""
    prepared = prepare(dsn, params, found, cfg, dry_run=dry_run)
    for f in prepared.fragments:
        apply_fragment(dsn, f, cfg)
    return finish(dsn, params, prepared, cfg)
