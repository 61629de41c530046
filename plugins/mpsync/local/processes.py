"""The processes the run command starts, found and stopped whole (from /proc: a child that left our process group
is found too), and whether a local port answers."""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path
from typing import Callable


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def descendants(pid: int) -> list[int]:
    """All live descendants of a process (from /proc), so ones that left our process group are found too."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is not alive
        return (Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]) != "Z"
    except OSError:
        return False


def describe(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")[:120]
    except OSError:
        return "?"


def stop_process_group(pid: int, timeout: float = 40, log: Callable[[str], None] | None = None) -> None:
    """SIGTERM the group led by pid (and any descendant that left it); SIGKILL what is left after timeout."""
    pids = [pid, *descendants(pid)]
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    for p in pids[1:]:
        try:
            os.kill(p, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        time.sleep(0.3)
    left = [p for p in pids if alive(p)]
    if left and log:
        log(f"still running after {timeout:.0f}s, killing: " + "; ".join(f"{p} {describe(p)}" for p in left))
    for p in left:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def listening(roots: list[int]) -> list[tuple[str, int, str]]:
    """(address, port, command) of every listening socket of the processes `roots` and their descendants."""
    import psutil

    out = []
    for pid in {p for r in roots for p in (r, *descendants(r))}:
        try:
            proc = psutil.Process(pid)
            conns = proc.net_connections(kind="inet")
            name = " ".join(proc.cmdline()[:3])
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        out += [(c.laddr.ip, c.laddr.port, name) for c in conns if c.status == psutil.CONN_LISTEN]
    return sorted(set(out))
