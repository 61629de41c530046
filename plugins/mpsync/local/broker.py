"""The Celery broker of `./run --executor celery`: Debian's redis-server (scripts/redis.sh installs it), started
by LocalSystem on 127.0.0.1 only, on its own port, with its data under var/redis. Only Celery's queues live
in it: losing it loses queued task messages, which the scheduler sends again (their task instances are still
queued in Airflow's database), never exchange data."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

from mpsync import PROJECT_ROOT


class LocalRedis:
    def __init__(self, folder: Path, port: int):
        self.folder = Path(folder)
        self.port = port
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 20) -> "LocalRedis":
        binary = shutil.which("redis-server")
        if binary is None:
            subprocess.run([str(PROJECT_ROOT / "scripts" / "redis.sh")], check=True)
            binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.folder.mkdir(parents=True, exist_ok=True)
        log = open(self.folder / "redis.log", "ab")
        # No snapshots: the queue is rebuilt by the scheduler; protected mode on; 127.0.0.1 only (no ::1 either).
        self.proc = subprocess.Popen(
            [binary, "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.folder),
             "--save", "", "--appendonly", "no", "--protected-mode", "yes", "--daemonize", "no"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.proc.returncode}: see {self.folder / 'redis.log'}")
            if self.ping():
                return self
            time.sleep(0.2)
        raise RuntimeError(f"redis-server did not answer on 127.0.0.1:{self.port} within {timeout:.0f}s")

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None and self.proc.poll() is None else None

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
        self.proc = None
