"""Reservations in the DAGs: an order sync that changed what is reserved announces `catalog_changed`, so the
pushes (and the feeds) send the new numbers within minutes instead of at their next scheduled run.

One task per run announces, after every account's sync, never the mapped sync tasks themselves: Airflow 3.3
queues an asset's consumer DAGs by inserting their rows in no fixed order, so two tasks announcing the same
asset at the same moment can deadlock in the metadata database, and the loser is marked failed although its
work committed (apache/airflow PR 70128). Several accounts finish together every run; one announcer cannot race.
"""

from __future__ import annotations

import logging

import psycopg

from mpsync.airflow_glue.assets import CATALOG_CHANGED, CATALOG_CHANGED_ALIAS
from mpsync.airflow_glue.connections import exchange_dsn
from mpsync.reservations.store import reserved_digest

log = logging.getLogger(__name__)


def reserved_now() -> str:
    """A digest of what is reserved (open reservations), to compare after the syncs."""
    with psycopg.connect(exchange_dsn(), autocommit=True) as conn:
        return reserved_digest(conn)


def announce_if_changed(before: str, outlet_events, source: str) -> bool:
    """Emit catalog_changed (through the alias) when what is reserved differs from `before`."""
    if reserved_now() == before:
        log.info("reservations unchanged: nothing to announce")
        return False
    log.info("reservations changed: catalog_changed announced (pushes and feeds follow)")
    outlet_events[CATALOG_CHANGED_ALIAS].add(CATALOG_CHANGED, extra={"source": source, "reservations": True})
    return True
