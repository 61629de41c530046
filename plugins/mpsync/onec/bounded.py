"""Parse an untrusted file where a native abort or running out of memory refuses the file, not the process.

`parse(fn, path, name, limits, ...)` runs `fn(path, ...)` in a forked child with an address-space limit
(RLIMIT_AS: what the process had at the fork plus `memory_mb`) and a wall-time limit. The child first checks
an .xlsx's zip and declared sheet size (onec.archive_guard). Its answer comes back in a file under /dev/shm,
mapped copy-on-write by the parent: a pickle whose numpy buffers are out of band, in the file too. The parse
builds its big arrays in that file in the first place (onec.answer_memory): a 1M x 60 report's 480 MB of
quantities are written once, by the parse, not copied into the answer after it. Whatever kills the child
(SIGABRT from a Rust reader whose allocation failed, the kernel's OOM kill, the time limit) and whatever it
raises becomes FileRefused with a reason naming what happened; a parse is a function of the file's bytes, so a
retry could not do better. The parent reads the file only after the child exited 0 (its header is written last).

A fork, not a fresh interpreter: the child needs no imports (numpy, pyarrow and fastexcel take longer to
import than a small file takes to parse), and the parent keeps no state the child could corrupt.
"""

from __future__ import annotations

import csv
import ctypes
import faulthandler
import logging
import mmap
import os
import pickle
import resource
import select
import signal
import struct
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any, Callable

from mpsync.onec import answer_memory
from mpsync.onec.archive_guard import check_xlsx
from mpsync.onec.limits import ParseLimits
from mpsync.onec.model import FileRefused
from mpsync.onec.reader import sniff

log = logging.getLogger(__name__)
# Page 0 of the scratch file: where the answer's tail starts, its pickle's length, its buffer count. The
# tail: each buffer's (offset, length) in the file, the pickle, the buffers not built in the arena.
_HEADER = struct.Struct("<QQQ")
_ALIGN = 64


def _scratch_dir() -> str:
    shm = "/dev/shm"
    return shm if os.path.isdir(shm) and os.access(shm, os.W_OK) else tempfile.gettempdir()


def _trim_heap() -> None:
    """Hand malloc's free pages back to the kernel before the fork. A child reusing one would copy it on write,
    and while its reader threads run on the other core each such fault flushes that core's TLB by an interrupt
    (a trap to the hypervisor in a VM): 0.1-0.17 s of a 1M-row .xlsx parse, measured. An unmapped page is
    faulted in fresh, with no flush. A few ms here."""
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):           # not glibc: nothing to hand back this way
        pass


def _limit_memory(extra_mb: int) -> None:
    with open("/proc/self/statm") as fh:
        current = int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    limit = current + extra_mb * (1 << 20)
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def _write(fd: int, payload: Any, arena: answer_memory.Arena) -> None:
    """The answer into the scratch file, after the arena's regions: its numpy buffers out of band, each at an
    offset of the file (a buffer built in the arena stays where it is), then the header on page 0, last."""
    buffers: list[pickle.PickleBuffer] = []
    data = pickle.dumps(payload, protocol=5, buffer_callback=buffers.append)
    views = [b.raw() for b in buffers]
    placed = [arena.locate(v) for v in views]
    arena.release_except([at for at in placed if at is not None])
    tail = arena.end
    at = tail + 16 * len(views) + len(data)
    table = []
    for v, where in zip(views, placed):
        if where is None:
            at = -(-at // _ALIGN) * _ALIGN
            where, at = at, at + v.nbytes
        table.append((where, v.nbytes))
    with os.fdopen(fd, "r+b", closefd=False) as fh:
        fh.seek(tail)
        fh.write(struct.pack(f"<{2 * len(views)}Q", *(x for pair in table for x in pair)))
        fh.write(data)
        for v, where, (offset, _) in zip(views, placed, table):
            if where is None:
                fh.seek(offset)
                fh.write(v)
    os.pwrite(fd, _HEADER.pack(tail, len(data), len(views)), 0)


def _read(fd: int) -> Any:
    size = os.fstat(fd).st_size
    if size < _HEADER.size:
        raise EOFError("no answer")
    mapped = mmap.mmap(fd, size, access=mmap.ACCESS_COPY)       # private: arrays stay writable, file untouched
    view = memoryview(mapped)
    tail, length, count = _HEADER.unpack_from(view)
    if not answer_memory.PAGE <= tail <= size - 16 * count - length:
        raise ValueError("answer header out of range")
    table = struct.unpack_from(f"<{2 * count}Q", view, tail)
    data = view[tail + 16 * count:tail + 16 * count + length]
    buffers = []
    for offset, n in zip(table[::2], table[1::2]):
        if offset + n > size:
            raise ValueError("answer buffer out of range")
        buffers.append(view[offset:offset + n])
    return pickle.loads(data, buffers=buffers)


def _child(fd: int, answered: int, call: Callable[[], Any], name: str, limits: ParseLimits) -> None:
    """In the forked child: never returns to the caller's stack."""
    code, started = 0, time.perf_counter()
    try:
        faulthandler.disable()             # an abort here is an answer, not a crash to dump
        _limit_memory(limits.memory_mb)
        csv.field_size_limit(limits.max_csv_line_kb * 1024)        # Python's csv stops at 128 KB
        arena = answer_memory.Arena(fd)
        answer_memory.use_arena(arena)      # the answer's big arrays are built in the scratch file
        try:
            payload: tuple = ("ok", call())
        except FileRefused as exc:
            payload = ("refused", exc.reason)
        except MemoryError:
            payload = ("refused", f"reading it needs more than the {limits.memory_mb} MB allowed "
                                  "(parse_limits.memory_mb)")
        except csv.Error as exc:
            payload = ("refused", f"broken CSV: {exc} (parse_limits.max_csv_line_kb = {limits.max_csv_line_kb})")
        except RecursionError:
            payload = ("refused", "its structure is nested too deeply to read")
        except BaseException as exc:                                   # noqa: BLE001 - any parser failure
            log.error("parse of %s failed:\n%s", name, traceback.format_exc())
            payload = ("refused", f"the parser failed on it ({type(exc).__name__}: {str(exc)[:300]})")
        _write(fd, payload + (time.perf_counter() - started,), arena)
        os.write(answered, b"1")            # the whole answer is in the file
    except BaseException:                                              # noqa: BLE001 - even writing failed
        code = 3
    finally:
        os._exit(code)


def _wait(pid: int, answered: int, seconds: float) -> tuple[int | None, bool]:
    """(the child's wait status, or None when it outlived `seconds` and was killed; whether it is reaped).
    A child that wrote its whole answer says so on the pipe `answered`: status 0 at once, and its exit (the
    unmapping of all its memory) overlaps our reading of the answer; the caller reaps it after."""
    deadline = time.monotonic() + seconds
    try:
        pidfd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        pidfd = None
    watch = [answered] + ([pidfd] if pidfd is not None else [])
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                return None, True
            ready = select.select(watch, [], [], min(left, 5.0 if pidfd is not None else 0.02))[0]
            if answered in ready:
                if os.read(answered, 1) == b"1":
                    return 0, False
                watch.remove(answered)                 # closed unanswered: the child is dying
                if pidfd is None:
                    return os.waitpid(pid, 0)[1], True
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return status, True
    finally:
        if pidfd is not None:
            os.close(pidfd)


def _death(status: int | None, limits: ParseLimits) -> str:
    if status is None:
        return f"reading it took longer than {limits.seconds} s (parse_limits.seconds)"
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        what = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
        return (f"the reader died on it ({what}): the file asks for more memory than the "
                f"{limits.memory_mb} MB allowed (parse_limits.memory_mb), or is corrupt")
    return f"the reader died on it (exit code {os.WEXITSTATUS(status)})"


_WARM: list[bool] = []
# The last parse's seconds: in the child parsing, then fork + writing the answer, then reading it back, reaping.
last: dict[str, float] = {}


def _warm() -> None:
    """Import the readers here once, not in every child (a child's imports die with it)."""
    if not _WARM:
        import fastexcel  # noqa: F401
        import pandas  # noqa: F401  - pyarrow's to_numpy() imports it (~0.4 s): else in every child again
        import pyarrow.compute  # noqa: F401
        import pyarrow.csv  # noqa: F401
        import python_calamine  # noqa: F401
        import xlrd  # noqa: F401
        from lxml import etree  # noqa: F401

        # onec.stock imports its strategies when it parses (they import pyarrow): here too, once.
        from mpsync.onec import stock_changed_rows, stock_csv, stock_sheet, stock_xlsx  # noqa: F401

        _WARM.append(True)


def parse(fn: Callable[..., Any], path: str | Path, name: str, limits: ParseLimits, /, *args, **kwargs) -> Any:
    """`fn(path, *args, **kwargs)` in a bounded child process; raises FileRefused (for `name`) on any failure."""
    def call():
        if sniff(path) == "xlsx":
            check_xlsx(Path(path), name, limits)
        return fn(path, *args, **kwargs)

    if not limits.isolate:
        return call()
    _warm()
    _trim_heap()
    fd, scratch = tempfile.mkstemp(prefix="mpsync-parse-", dir=_scratch_dir())
    answered, says = os.pipe()
    pid, reaped = 0, True
    try:
        os.unlink(scratch)                  # the descriptor keeps it; nothing is left behind if we die
        forked = time.perf_counter()
        pid = os.fork()
        if pid == 0:
            os.close(answered)
            _child(fd, says, call, name, limits)
        os.close(says)
        says = -1
        status, reaped = _wait(pid, answered, limits.seconds)
        waited = time.perf_counter()
        if status != 0:
            raise FileRefused(name, _death(status, limits))
        try:
            kind, value, parsing = _read(fd)
        except (EOFError, pickle.UnpicklingError, struct.error, ValueError) as exc:
            raise FileRefused(name, f"the reader gave no usable answer ({exc})") from None
    finally:
        for open_fd in (fd, answered, says):
            if open_fd >= 0:
                os.close(open_fd)
        read = time.perf_counter()
        if not reaped:
            os.waitpid(pid, 0)
    if status == 0:
        # Where a bounded parse's time goes (the isolation benchmark reports it; debug logs too).
        last.update(parse=parsing, answer=waited - forked - parsing, read=read - waited,
                    reap=time.perf_counter() - read)
        log.debug("%s parsed in a child: %s", name, ", ".join(f"{k} {v:.3f} s" for k, v in last.items()))
    if kind == "refused":
        raise FileRefused(name, value)
    return value
