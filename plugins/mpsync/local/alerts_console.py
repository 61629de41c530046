"""The run command's console shows every alert: Airflow's processes append one line per alert to
var/alerts.log (MPSYNC_ALERTS_LOG, airflow_glue/alerts.py) and this follows the file and prints new lines."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Callable


def follow(path: Path, emit: Callable[[str], None], stop: threading.Event, every: float = 1.0) -> None:
    """Emit each whole line appended to `path` from now on, until `stop` is set (lines already there were
    shown by an earlier run). A file that shrinks (emptied by hand) is read again from its start."""
    offset = path.stat().st_size if path.exists() else 0
    while not stop.wait(every):
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            offset = 0
            continue
        if size < offset:
            offset = 0
        if size == offset:
            continue
        with path.open("rb") as fh:
            fh.seek(offset)
            data = fh.read(size - offset)
        whole = data[:data.rfind(b"\n") + 1]         # a line being written is shown when it is complete
        offset += len(whole)
        for line in whole.decode("utf-8", errors="replace").splitlines():
            if line.strip():
                emit(line)


def start(path: Path, emit: Callable[[str], None]) -> threading.Event:
    """Follow `path` in a daemon thread; set the returned event to stop."""
    stop = threading.Event()
    threading.Thread(target=follow, args=(path, emit, stop), daemon=True, name="alerts-console").start()
    return stop
