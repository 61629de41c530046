"""Issue 17: what the local run exposes. The embedded PostgreSQL takes no TCP login without its password."""

from __future__ import annotations

import psycopg
import pytest


def test_the_embedded_postgresql_needs_its_generated_password_over_tcp(pg_server):
    password = pg_server.password()
    assert password and len(password) >= 24
    with pytest.raises(psycopg.OperationalError, match="password"):
        psycopg.connect(f"postgresql://postgres@127.0.0.1:{pg_server.port}/postgres", connect_timeout=5)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(f"postgresql://postgres:wrong@127.0.0.1:{pg_server.port}/postgres", connect_timeout=5)
    with psycopg.connect(pg_server.dsn(), connect_timeout=5) as conn:
        assert conn.execute("select 1").fetchone() == (1,)
    mode = pg_server._password_file().stat().st_mode & 0o777
    assert mode == 0o600
