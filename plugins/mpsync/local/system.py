"""The whole system on the embedded default, as one object the run command and the end-to-end test share.

    system = LocalSystem(Path("var")).start()     # PostgreSQL, FTP, feeds, simulators, Airflow's parts
    system.airflow_url, system.admin_password(), system.api_token()
    system.stop()                                 # every process it started, and nothing else

Everything listens on 127.0.0.1. All state lives under one working folder (`var/` for the run command):
var/pg (PostgreSQL cluster: the `exchange` database and Airflow's `airflow` metadata database), var/ftp (the
FTP root, seeded with demo 1C drops on first start), var/feeds, var/work, var/airflow (AIRFLOW_HOME, logs),
var/secrets.json (demo credentials and keys, generated once, never committed). A second start reuses it.

Its parts, each in its own module: postgres.py, ftpserver.py, demo_drops.py (the demo 1C files), simulators.py
(the marketplaces and the website), airflow_parts.py (Airflow's processes), airflow_rest.py (its REST API),
broker.py / celery.py (--executor celery), processes.py (finding and stopping what was started).
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import requests

from mpsync import PROJECT_ROOT
from mpsync.local import alerts_console
from mpsync.local.demo_drops import DemoDrops
from mpsync.local.ftpserver import LocalFtp
from mpsync.local.postgres import LocalPostgres, data_sized_buffers_mb
from mpsync.local.airflow_rest import AirflowRest
from mpsync.local.processes import descendants, listening, port_open, stop_process_group
from mpsync.local.simulators import StartedSimulator, start_simulators, stop_simulators

@dataclass
class Ports:
    postgres: int = 54329
    ftp: int = 2121
    feeds: int = 8081
    airflow: int = 8080
    worker_log: int = 8793
    trigger_log: int = 8794
    redis: int = 6380           # the Celery broker (--executor celery only)
    flower: int = 5556          # Flower (--executor celery only)

    @classmethod
    def free(cls) -> "Ports":
        """Free ports for every service (the end-to-end test runs next to a developer's `./run`).

        Taken below Linux's ephemeral range (32768-60999): a port the kernel handed out for bind(0) is
        free again once probed, and a server started later with port 0 (a simulator) could be given it."""
        import random

        socks: list[socket.socket] = []
        try:
            for port in random.sample(range(20000, 32000), 200):
                s = socket.socket()
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    s.close()
                    continue
                socks.append(s)
                if len(socks) == 8:
                    return cls(*(s.getsockname()[1] for s in socks))
            raise RuntimeError("no eight free ports between 20000 and 32000 on 127.0.0.1")
        finally:
            for s in socks:
                s.close()


@dataclass
class LocalSystem:
    var_dir: Path
    ports: Ports = field(default_factory=Ports)
    airflow: bool = True
    simulators: bool = True
    feeds: bool = True
    seed_demo: bool = True
    # DAGs start unpaused so the demo drops are picked up; a test may prefer to trigger by hand.
    dags_paused_at_creation: bool = False
    # LocalExecutor slots: modest, the demo machine has 2 cores.
    parallelism: int = 8
    # "local" (LocalExecutor) or "celery": a redis-server broker and `celery_workers` Celery workers
    # (mpsync.local.celery), each running up to `worker_concurrency` tasks, and Flower unless flower=False.
    executor: str = "local"
    celery_workers: int = 2
    worker_concurrency: int = 4
    flower: bool = True
    extra_env: dict[str, str] = field(default_factory=dict)
    log: Callable[[str], None] = print

    def __post_init__(self) -> None:
        self.var_dir = Path(self.var_dir).resolve()
        self.pg = LocalPostgres(self.var_dir / "pg", self.ports.postgres,
                                buffers_mb=data_sized_buffers_mb(self.var_dir / "pg"))
        self.ftp: LocalFtp | None = None
        self.started_simulators: list[StartedSimulator] = []
        self.simulator_urls: dict[str, str] = {}     # conn id -> the URL its connection points at
        self.connections: dict[str, str] = {}
        self.feed_server: Any = None
        self.feeds_url: str | None = None
        self._airflow_proc: subprocess.Popen | None = None
        self._airflow_log = None
        self._pg_started = False
        self.demo_drops = DemoDrops(self.ftp_root, self.var_dir / ".ftp-seeded", lambda: self.exchange_dsn,
                                    self.log)
        self._alerts_stop: threading.Event | None = None
        self.timings: dict[str, float] = {}
        self.rest = AirflowRest(self.airflow_url, self.airflow_home)
        if self.executor not in ("local", "celery"):
            raise ValueError(f"executor must be 'local' or 'celery', not {self.executor!r}")
        from mpsync.local.broker import LocalRedis

        self.redis = LocalRedis(self.var_dir / "redis", self.ports.redis) if self.executor == "celery" else None
        self._redis_started = False

    # ---- folders and secrets -------------------------------------------------------------------------
    @property
    def airflow_home(self) -> Path:
        return self.var_dir / "airflow"

    @property
    def alerts_log(self) -> Path:
        """One line per alert (whatever the notifier), also shown on the console while the system runs."""
        return self.var_dir / "alerts.log"

    @property
    def ftp_root(self) -> Path:
        return self.var_dir / "ftp"

    @property
    def feeds_dir(self) -> Path:
        return self.var_dir / "feeds"

    @property
    def work_dir(self) -> Path:
        return self.var_dir / "work"

    @property
    def airflow_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.airflow}"

    @property
    def onec_exchange_url(self) -> str:
        """What 1C's "обмен с сайтом" is given as the site address (mpsync.airflow_glue.onec_exchange)."""
        return f"{self.airflow_url}/onec/exchange"

    @property
    def exchange_dsn(self) -> str:
        return self.pg.dsn("exchange")

    def secrets(self) -> dict[str, str]:
        """Demo credentials and keys, generated on first use into var/secrets.json (0600), then reused."""
        path = self.var_dir / "secrets.json"
        data = json.loads(path.read_text()) if path.exists() else {}
        wanted = {
            "ftp_password": lambda: secrets.token_urlsafe(12),
            "fernet_key": lambda: base64.urlsafe_b64encode(os.urandom(32)).decode(),
            "jwt_secret": lambda: secrets.token_urlsafe(32),
            "api_secret_key": lambda: secrets.token_urlsafe(32),
            "simulator_login": lambda: "demo-" + secrets.token_hex(4),
            "simulator_password": lambda: secrets.token_urlsafe(16),
            "onec_exchange_password": lambda: secrets.token_urlsafe(12),
        }
        missing = {k: make() for k, make in wanted.items() if k not in data}
        if missing:
            data.update(missing)
            self.var_dir.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(data, indent=2))
            path.chmod(0o600)
        return data

    # ---- lifecycle -------------------------------------------------------------------------------------
    def start(self, wait_timeout: float = 300) -> "LocalSystem":
        t0 = time.monotonic()
        try:
            self.start_services()
            if self.airflow:
                self.start_airflow(wait_timeout=wait_timeout)
        except BaseException:
            self.stop()
            raise
        self.timings["total"] = time.monotonic() - t0
        return self

    def start_services(self) -> None:
        """Everything except Airflow: PostgreSQL (migrated), FTP (seeded), feeds server, simulators."""
        from mpsync import db

        self.var_dir.mkdir(parents=True, exist_ok=True)
        for d in (self.feeds_dir, self.work_dir, self.airflow_home):
            d.mkdir(parents=True, exist_ok=True)
        creds = self.secrets()

        t = time.monotonic()
        self._pg_started = True
        self.pg.start()
        self.pg.create_database("exchange")
        applied = db.migrate(self.exchange_dsn)
        self.timings["postgres"] = time.monotonic() - t
        self.log(f"PostgreSQL   {self.exchange_dsn}  (migrations applied now: {', '.join(applied) or 'none'})")
        self.connections["exchange_db"] = self.exchange_dsn

        self.demo_drops.start(seed=self.seed_demo)
        self.ftp = LocalFtp(self.ftp_root, self.ports.ftp, user="onec", password=creds["ftp_password"]).start()
        self.connections["onec_ftp"] = self.ftp.url()
        self.log(f"FTP          ftp://127.0.0.1:{self.ports.ftp}  login onec / {creds['ftp_password']}")
        # 1C's site exchange for orders (served by the API server, docs/onec-exchange.md): its login.
        self.connections["onec_exchange"] = json.dumps({"conn_type": "http", "login": "onec",
                                                        "password": creds["onec_exchange_password"]})

        if self.feeds:
            self._start_feeds()
        if self.simulators:
            self._start_simulators(creds)

    def _start_feeds(self) -> None:
        try:
            from mpsync.feeds.serve import serve_feeds
        except ImportError:
            self.log("feeds        skipped: mpsync.feeds.serve is not there yet")
            return
        store = self._feeds_store()
        if store is not None:       # a shared store (mpsync.feeds.store): what every worker publishes to
            from mpsync.feeds.serve import serve_store

            self.feed_server = serve_store(store, "127.0.0.1", self.ports.feeds)
        else:
            self.feed_server = serve_feeds(self.feeds_dir, "127.0.0.1", self.ports.feeds)
        self.feeds_url = f"http://127.0.0.1:{self.ports.feeds}/"
        self.log(f"feeds        {self.feeds_url}  ({f'store {store.url}' if store else f'folder {self.feeds_dir}'})")

    def _feeds_store(self):
        """The feeds store (MPSYNC_FEEDS_STORE or feeds.store), if one is configured."""
        from mpsync.feeds.store import FeedStore

        try:
            from mpsync.settings import settings

            raw = settings().section("feeds") or {}
        except Exception:       # a broken config is the DAGs' to report
            raw = {}
        return FeedStore.from_settings(raw if isinstance(raw, dict) else {}, {**os.environ, **self.extra_env})

    def _start_simulators(self, creds: dict[str, str]) -> None:
        sims = start_simulators(creds["simulator_login"], creds["simulator_password"], self.log)
        self.started_simulators.extend(sims.started)
        self.connections.update(sims.connections)
        self.simulator_urls.update(sims.urls)

    # ---- Airflow ---------------------------------------------------------------------------------------
    def airflow_env(self) -> dict[str, str]:
        creds = self.secrets()
        venv_bin = Path(sys.executable).parent
        env = dict(os.environ)
        # Keep only the connections this system defines: a test's or a shell's leftovers must not leak in.
        for key in [k for k in env if k.startswith("AIRFLOW_CONN_")]:
            del env[key]
        airflow_db = self.pg.dsn("airflow").replace("postgresql://", "postgresql+psycopg2://", 1)
        env.update({
            "PATH": f"{venv_bin}{os.pathsep}{env.get('PATH', '')}",
            "AIRFLOW_HOME": str(self.airflow_home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_ROOT / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": str(self.parallelism if self.redis is None
                                              else max(self.parallelism, self.celery_workers * self.worker_concurrency)),
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": str(self.dags_paused_at_creation),
            "AIRFLOW__CORE__FERNET_KEY": creds["fernet_key"],
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.airflow_url}/execution/",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": airflow_db,
            "AIRFLOW__API__HOST": "127.0.0.1",
            # A task's first call to the API server can take over the 5 s default on a busy 2-core machine.
            "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": "30",
            "AIRFLOW__API__PORT": str(self.ports.airflow),
            "AIRFLOW__API__BASE_URL": self.airflow_url,
            "AIRFLOW__API__SECRET_KEY": creds["api_secret_key"],
            "AIRFLOW__API_AUTH__JWT_SECRET": creds["jwt_secret"],
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(self.ports.worker_log),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(self.ports.trigger_log),
            "MPSYNC_WORK_DIR": str(self.work_dir),
            "MPSYNC_FEEDS_DIR": str(self.feeds_dir),
            "MPSYNC_ALERTS_LOG": str(self.alerts_log),
        })
        env.update({f"AIRFLOW_CONN_{conn_id.upper()}": uri for conn_id, uri in self.connections.items()})
        if self.redis is not None:
            from mpsync.local.celery import celery_env

            env.update(celery_env(self.redis.url, self.pg.dsn("airflow"), workers=self.celery_workers,
                                  concurrency=self.worker_concurrency,
                                  flower_port=self.ports.flower if self.flower else None))
        env.update(self.extra_env)
        return env

    def start_airflow(self, wait_timeout: float = 300) -> None:
        if self._airflow_proc is not None:
            raise RuntimeError("Airflow is already started by this LocalSystem")
        t = time.monotonic()
        self._stop_leftover_airflow()
        wanted = [self.ports.airflow, self.ports.worker_log, self.ports.trigger_log]
        if self.redis is not None:
            wanted += [self.ports.redis] + ([self.ports.flower] if self.flower else [])
        busy = [p for p in wanted if port_open(p)]
        if busy:
            raise RuntimeError(f"ports {busy} on 127.0.0.1 are taken: is another Airflow running? "
                               "Stop it, or pick other ports (python -m mpsync.local --help)")
        self.pg.create_database("airflow")
        if self.redis is not None:
            self._redis_started = True
            self.redis.start()
            self.log(f"Celery       broker {self.redis.url} (redis-server, data {self.redis.folder})")
        env = self.airflow_env()
        log_path = self.airflow_home / "standalone.log"
        self._airflow_log = open(log_path, "ab")
        # Its own session/process group: one signal reaches all ~30 processes it spawns, and a Ctrl-C
        # meant for us does not hit them half-way.
        # Not `airflow standalone`: its log servers would listen on every interface (local/airflow_parts.py).
        self._airflow_proc = subprocess.Popen(
            [sys.executable, "-m", "mpsync.local.airflow_parts"],
            env=env, cwd=str(PROJECT_ROOT), stdout=self._airflow_log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )
        (self.airflow_home / "standalone.pid").write_text(str(self._airflow_proc.pid))
        self.log(f"Airflow      starting (pid {self._airflow_proc.pid}, log {log_path})")
        self._alerts_stop = alerts_console.start(self.alerts_log, lambda line: self.log(f"ALERT        {line}"))
        self.log(f"alerts       shown here and kept in {self.alerts_log}")
        self.wait_for_airflow(wait_timeout)
        if self.redis is not None:
            self.wait_for_workers(wait_timeout)
        self.timings["airflow"] = time.monotonic() - t
        self.rest.create_pools(self.log)

    def _stop_leftover_airflow(self) -> None:
        """A previous run killed with SIGKILL leaves its Airflow behind; stop that one (ours, same var/)."""
        pid_file = self.airflow_home / "standalone.pid"
        if not pid_file.exists():
            return
        pid = int(pid_file.read_text().strip() or 0)
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            environ = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            pid_file.unlink(missing_ok=True)
            return
        ours = "standalone" in cmdline or "mpsync.local.airflow_parts" in cmdline
        if ours and f"AIRFLOW_HOME={self.airflow_home}".encode() in environ:
            self.log(f"Airflow      stopping a leftover Airflow from an earlier run (pid {pid})")
            stop_process_group(pid)
        pid_file.unlink(missing_ok=True)

    def listening(self) -> list[tuple[str, int, str]]:
        """(address, port, process) of every socket listening in the processes this system started: Airflow's
        parts, PostgreSQL, and this process (FTP, feeds, simulators). What `./run` exposes, for tests."""
        roots = [os.getpid(), self.pg.pid()]
        if self._airflow_proc is not None:
            roots.append(self._airflow_proc.pid)
        if self.redis is not None:
            roots.append(self.redis.pid())
        return listening([r for r in roots if r])

    def health(self) -> dict | None:
        return self.rest.health()

    def wait_for_airflow(self, timeout: float = 300) -> dict:
        """Until the API server answers and the scheduler, DAG processor and triggerer are healthy."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self._airflow_proc is not None and self._airflow_proc.poll() is not None:
                raise RuntimeError(f"Airflow exited with {self._airflow_proc.returncode}:\n"
                                   + self.airflow_log_tail())
            last = self.health()
            if last and all(
                (last.get(part) or {}).get("status") == "healthy"
                for part in ("metadatabase", "scheduler", "triggerer", "dag_processor")
            ) and self._password_file().exists():
                return last
            time.sleep(1)
        raise RuntimeError(f"Airflow not healthy after {timeout:.0f}s (last health: {last}):\n"
                           + self.airflow_log_tail())

    def wait_for_workers(self, timeout: float = 300) -> list[str]:
        """Until every Celery worker answers a ping through the broker; their names."""
        from mpsync.local.celery import workers_answering

        deadline, env = time.monotonic() + timeout, self.airflow_env()
        answering: list[str] = []
        while time.monotonic() < deadline:
            answering = workers_answering(env)
            if len(answering) >= self.celery_workers:
                self.log(f"Celery       workers {', '.join(answering)}"
                         + (f"; Flower http://127.0.0.1:{self.ports.flower}/" if self.flower else ""))
                return answering
            time.sleep(2)
        raise RuntimeError(f"{len(answering)} of {self.celery_workers} Celery workers answer after {timeout:.0f}s "
                           f"({answering}):\n" + self.airflow_log_tail())

    def worker_pids(self, name: str) -> list[int]:
        """Processes of Celery worker `name` ('mpsync-worker-1'...): its main process and every child."""
        from mpsync.local.celery import worker_pids

        return worker_pids(self._airflow_proc.pid, name, descendants) if self._airflow_proc else []

    def airflow_log_tail(self, chars: int = 3000) -> str:
        path = self.airflow_home / "standalone.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""

    def _password_file(self) -> Path:
        return self.rest.password_file

    def admin_password(self) -> str:
        return self.rest.admin_password()

    def api_token(self, username: str = "admin", password: str | None = None) -> str:
        return self.rest.token(username, password)

    def api(self, method: str, path: str, token: str | None = None, **kwargs) -> requests.Response:
        """A call to Airflow's REST API (`/api/v2/...`) as admin."""
        return self.rest.call(method, path, token, **kwargs)

    def stop(self) -> None:
        """Stop every process and server this object started; safe to call twice."""
        if self._alerts_stop is not None:
            self._alerts_stop.set()
        self.demo_drops.stop()
        if self._airflow_proc is not None:
            self.log("Airflow      stopping")
            stop_process_group(self._airflow_proc.pid, log=self.log)
            try:
                self._airflow_proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
            (self.airflow_home / "standalone.pid").unlink(missing_ok=True)
            self._airflow_proc = None
        if self._airflow_log is not None:
            self._airflow_log.close()
            self._airflow_log = None
        stop_simulators(self.started_simulators, self.log)
        self.started_simulators.clear()
        self.simulator_urls.clear()
        if self.feed_server is not None:
            for method in ("stop", "shutdown", "close"):
                fn = getattr(self.feed_server, method, None)
                if callable(fn):
                    # socketserver's shutdown() blocks until serve_forever returns: never wait forever.
                    stopper = threading.Thread(target=fn, daemon=True)
                    stopper.start()
                    stopper.join(timeout=5)
                    break
            close = getattr(self.feed_server, "server_close", None)
            if callable(close):
                close()
            self.feed_server = None
        if self.ftp is not None:
            self.ftp.stop()
            self.ftp = None
        if self.redis is not None and self._redis_started:
            self.redis.stop()
            self._redis_started = False
        if self._pg_started:
            self.log("PostgreSQL   stopping")
            self.pg.stop()
            self._pg_started = False

    def __enter__(self) -> "LocalSystem":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ---- what a person needs to know -------------------------------------------------------------------
    def summary(self) -> str:
        creds = self.secrets()
        lines = ["", "mpsync is running (all on 127.0.0.1). Ctrl-C stops everything.", ""]
        if self._airflow_proc is not None and self.redis is not None:
            lines += [f"  Celery         {self.celery_workers} workers, broker {self.redis.url}"
                      + (f", Flower http://127.0.0.1:{self.ports.flower}/" if self.flower else "")]
        if self._airflow_proc is not None:
            lines += [f"  Airflow UI     {self.airflow_url}/   login admin / {self.admin_password()}",
                      f"  Airflow log    {self.airflow_home / 'standalone.log'}",
                      f"  1C exchange    {self.onec_exchange_url}   login onec / {creds['onec_exchange_password']}"]
        lines += [f"  1C FTP         ftp://127.0.0.1:{self.ports.ftp}/1c/   login onec / {creds['ftp_password']}",
                  f"  Exchange DB    {self.exchange_dsn}"]
        if self.feeds_url:
            lines.append(f"  Feeds          {self.feeds_url}")
            lines += [f"                 {self.feeds_url}{name}" for name in self.feed_names()]
        for conn_id, url in self.simulator_urls.items():
            lines.append(f"  Simulator      {conn_id:<18} {url}")
        lines += [f"  Working folder {self.var_dir}", ""]
        return "\n".join(lines)

    def feed_names(self) -> list[str]:
        """Feed file names the feeds DAG publishes (from the feeds module, when it says), else what exists."""
        try:
            from mpsync.feeds import serve

            names = getattr(serve, "FEED_FILES", None)
            if names:
                return list(names)
        except ImportError:
            pass
        return sorted(p.name for p in self.feeds_dir.glob("*") if p.is_file() and not p.name.startswith("."))
