"""Reservations in the DAGs: an order sync that changed what is reserved announces `catalog_changed`, so the
pushes (and the feeds) send the new numbers within minutes instead of at their next scheduled run."""

from __future__ import annotations

import logging
from typing import Callable

import psycopg

from mpsync.airflow_glue.assets import CATALOG_CHANGED, CATALOG_CHANGED_ALIAS
from mpsync.airflow_glue.connections import exchange_dsn
from mpsync.reservations.store import reserved_digest

log = logging.getLogger(__name__)


def announcing_reservations(work: Callable[[], dict], outlet_events, source: str) -> dict:
    """Run `work`; when what is reserved changed meanwhile, emit catalog_changed (through the alias)."""
    with psycopg.connect(exchange_dsn(), autocommit=True) as conn:
        before = reserved_digest(conn)
    report = work()
    with psycopg.connect(exchange_dsn(), autocommit=True) as conn:
        after = reserved_digest(conn)
    if after != before:
        log.info("reservations changed: catalog_changed announced (pushes and feeds follow)")
        outlet_events[CATALOG_CHANGED_ALIAS].add(CATALOG_CHANGED, extra={"source": source, "reservations": True})
    return report
