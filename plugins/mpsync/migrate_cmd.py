"""`python -m mpsync migrate [--dsn DSN]`: apply pending exchange-database migrations (include/sql/migrations).

Without --dsn the `exchange_db` connection is read from AIRFLOW_CONN_EXCHANGE_DB (URI or JSON form), so the
same environment that gives Airflow its connection (docker-compose's env file) also serves this command.
"""

from __future__ import annotations

import json
import os
import sys
from urllib.parse import quote


def dsn_from_env(var: str = "AIRFLOW_CONN_EXCHANGE_DB") -> str:
    value = os.environ.get(var, "").strip()
    if not value:
        raise SystemExit(f"no --dsn given and {var} is not set")
    if value.startswith("{"):
        c = json.loads(value)
        auth = quote(c.get("login") or "postgres", safe="")
        if c.get("password"):
            auth += ":" + quote(c["password"], safe="")
        return f"postgresql://{auth}@{c.get('host', '127.0.0.1')}:{c.get('port') or 5432}/{c.get('schema') or 'exchange'}"
    return "postgresql://" + value.split("://", 1)[1].split("?", 1)[0] if "://" in value else value


def add_arguments(parser) -> None:
    parser.add_argument("--dsn", help="PostgreSQL URI of the exchange database (default: AIRFLOW_CONN_EXCHANGE_DB)")


def run(args) -> int:
    from mpsync import db

    applied = db.migrate(args.dsn or dsn_from_env())
    print("applied: " + ", ".join(applied) if applied else "schema is up to date", file=sys.stderr)
    return 0
