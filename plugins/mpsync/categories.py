"""Catalog categories from 1C: the group tree of an import into `category`, its products linked.

The feeds write this tree (ids from 100000 up, never reused); the config's `feeds.categories` is an override
on top of it (docs/feeds.md, *Categories*).
"""

from __future__ import annotations

import psycopg

from mpsync import SQL_DIR
from mpsync.onec.model import CatalogGroup

_SQL = SQL_DIR / "catalog"


def sql(name: str) -> str:
    return (_SQL / f"{name}.sql").read_text(encoding="utf-8")


def apply_groups(conn: psycopg.Connection, groups: list[CatalogGroup]) -> int:
    """Insert new groups, rename or move changed ones (parents first); returns how many were written."""
    statement = sql("upsert_category")
    written = 0
    for g in groups:            # a few hundred at most: one statement each keeps parents resolvable
        if conn.execute(statement, {"key": g.key, "parent": g.parent, "name": g.name}).fetchone():
            written += 1
    return written


def link_products(conn: psycopg.Connection, import_file_id: int, first: int, last: int) -> set[str]:
    """A catalog fragment's staged products (catalog_staging.grp) linked to their group; returns the articles
    that changed."""
    return {r[0] for r in conn.execute(sql("link_products"), {"id": import_file_id, "first": first, "last": last})}


def category_tree(conn: psycopg.Connection) -> list[tuple[int, int | None, str]]:
    """(id, parent id, name) of every imported category, parents before children."""
    return conn.execute(sql("category_tree")).fetchall()
