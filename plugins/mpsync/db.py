"""Exchange database access: connections and the one migration entry point.

The run command, the tests and the `ensure_schema` DAG task all call `migrate()`.
"""

from __future__ import annotations

import re
from pathlib import Path

import psycopg

from mpsync import SQL_DIR

MIGRATIONS_DIR = SQL_DIR / "migrations"
_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
# Any constant: serialises concurrent migrate() calls (two DAG runs starting together).
_LOCK_KEY = 7_301_001


class ExchangeDbUnreachable(RuntimeError):
    """The exchange database does not answer; the message is one line naming where we tried."""


def connect(dsn: str, **kwargs) -> psycopg.Connection:
    try:
        return psycopg.connect(dsn, connect_timeout=10, **kwargs)
    except psycopg.OperationalError as exc:
        info = psycopg.conninfo.conninfo_to_dict(dsn)
        where = f"{info.get('host', '?')}:{info.get('port', 5432)}/{info.get('dbname', '?')}"
        cause = " ".join(str(exc).split())          # libpq's message spans lines; operators get one
        raise ExchangeDbUnreachable(f"exchange database unreachable at {where}: {cause}") from None


def migrations(folder: Path = MIGRATIONS_DIR) -> list[tuple[str, Path]]:
    found = []
    for path in sorted(folder.glob("*.sql")):
        if not _MIGRATION_NAME.match(path.name):
            raise ValueError(f"migration file name must be NNNN_snake_case.sql: {path}")
        found.append((path.stem, path))
    versions = [v.split("_", 1)[0] for v, _ in found]
    if len(set(versions)) != len(versions):
        raise ValueError(f"duplicate migration numbers in {folder}: {versions}")
    return found


def migrate(dsn: str, folder: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply pending migrations in order, each in its own transaction; return the names applied."""
    applied_now = []
    with connect(dsn, autocommit=True) as conn:
        conn.execute("select pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            conn.execute(
                "create table if not exists schema_migration ("
                " name text primary key, applied_at timestamptz not null default now())"
            )
            done = {r[0] for r in conn.execute("select name from schema_migration")}
            for name, path in migrations(folder):
                if name in done:
                    continue
                with conn.transaction():
                    conn.execute(path.read_text(encoding="utf-8"))
                    conn.execute("insert into schema_migration (name) values (%s)", (name,))
                applied_now.append(name)
        finally:
            conn.execute("select pg_advisory_unlock(%s)", (_LOCK_KEY,))
    return applied_now
