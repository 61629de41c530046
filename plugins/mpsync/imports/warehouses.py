"""The configured warehouses into table warehouse (stock columns and CommerceML stock name them)."""

from __future__ import annotations

import psycopg

from mpsync.settings import Settings


def sync_warehouses(conn: psycopg.Connection, cfg: Settings) -> None:
    for w in cfg.warehouses:
        conn.execute(
            """insert into warehouse (code, name, marketplaces) values (%s, %s, %s)
               on conflict (code) do update set name = excluded.name, marketplaces = excluded.marketplaces""",
            (w.code, w.name, list(w.marketplaces)),
        )
