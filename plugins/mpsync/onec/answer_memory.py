"""Memory for a parse's big result arrays: in a bounded child (onec.bounded), the file its answer travels in.

In the child every array asked for here is built in its own region of that file (tmpfs, mapped MAP_SHARED),
and the answer names the region instead of copying it: a 1M x 60 report's 480 MB of quantities are written
once, by the parse itself, and the parent maps the same pages copy-on-write. Anywhere else (a parse in
process, the tests) these are plain numpy arrays.

A region whose arrays are all gone is handed back at once (a hole punched in the file), so what the child
holds is what it uses and its memory limit keeps its meaning. Regions start on a page: the file's first page
is the answer's header.
"""

from __future__ import annotations

import ctypes
import errno
import mmap
import os
import weakref
from typing import Sequence

import numpy as np

PAGE = mmap.ALLOCATIONGRANULARITY
_POPULATE_WRITE = 23                       # MADV_POPULATE_WRITE (Linux 5.14)
_PUNCH_HOLE = 0x03                         # FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE


def _fallocate():
    try:
        fn = ctypes.CDLL(None, use_errno=True).fallocate
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
    fn.restype = ctypes.c_int
    return fn


class Arena:
    """Regions of an open file, from `start` on, each mapped shared and wrapped in one array."""

    def __init__(self, fd: int, start: int = PAGE):
        self.fd = fd
        self.end = start
        self.regions: dict[int, tuple[int, int]] = {}       # address -> (file offset, size)
        self.copied = 0                                     # bytes rows()/stack() copied in: not built in place
        self._punch = _fallocate()

    def empty(self, shape: tuple[int, ...], dtype) -> np.ndarray:
        dtype = np.dtype(dtype)
        count = int(np.prod(shape, dtype=np.int64))
        size = max(PAGE, -(-count * dtype.itemsize // PAGE) * PAGE)
        offset = self.end
        os.ftruncate(self.fd, offset + size)                 # sparse until populated below
        try:
            mapped = mmap.mmap(self.fd, size, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ | mmap.PROT_WRITE,
                               offset=offset)
        except OSError as exc:       # over the child's RLIMIT_AS: what np.empty would raise, and be refused for
            if exc.errno == errno.ENOMEM:
                raise MemoryError(f"{size} bytes of answer memory") from None
            raise
        self.end = offset + size
        try:        # the pages in one call, not a fault each (measured about as cheap as np.empty's huge pages)
            mapped.madvise(_POPULATE_WRITE)
        except OSError:
            pass
        array = np.frombuffer(mapped, dtype=dtype, count=count).reshape(shape)
        address = array.ctypes.data
        self.regions[address] = (offset, size)
        weakref.finalize(mapped, self.release, address)     # the mapping lives as long as any view of it
        return array

    def release(self, address: int) -> None:
        """Give a region's pages back (its arrays are gone, or the answer does not need it)."""
        offset, size = self.regions.pop(address, (0, 0))
        if size and self._punch is not None:
            self._punch(self.fd, _PUNCH_HOLE, offset, size)  # a failure only keeps the pages until the end

    def locate(self, view: memoryview) -> int | None:
        """The file offset of a buffer lying in a region, else None."""
        if view.nbytes == 0:
            return None
        address = np.frombuffer(view, dtype=np.uint8).ctypes.data
        for start, (offset, size) in self.regions.items():
            if start <= address and address + view.nbytes <= start + size:
                return offset + address - start
        return None

    def release_except(self, used: Sequence[int]) -> None:
        """Hand back every region no offset in `used` lies in: the answer leaves them behind."""
        for start, (offset, size) in list(self.regions.items()):
            if not any(offset <= u < offset + size for u in used):
                self.release(start)


_arena: Arena | None = None


def use_arena(arena: Arena | None) -> None:
    """From here on (in a bounded child) arrays asked for here are built in `arena`."""
    global _arena
    _arena = arena


def current() -> Arena | None:
    return _arena


def empty(shape: tuple[int, ...], dtype=np.float64) -> np.ndarray:
    return _arena.empty(shape, dtype) if _arena is not None else np.empty(shape, dtype)


def zeros(shape: tuple[int, ...], dtype=np.float64) -> np.ndarray:
    # A new region is a new stretch of the file: it reads as zeros until written.
    return _arena.empty(shape, dtype) if _arena is not None else np.zeros(shape, dtype)


def _is_answer(a: np.ndarray) -> bool:
    """`a` may be returned as it is: in the child, it lies in a region; in process, it owns its memory (not a view
    that would keep something larger alive)."""
    if not (a.flags.c_contiguous and a.flags.writeable):
        return False
    if _arena is None:
        return a.flags.owndata
    return a.nbytes > 0 and _arena.locate(memoryview(a).cast("B")) is not None


def _count_copy(out: np.ndarray) -> None:
    if _arena is not None:
        _arena.copied += out.nbytes


def rows(a: np.ndarray, index: np.ndarray) -> np.ndarray:
    """a[index] along the first axis (an index array or a boolean mask), in answer memory."""
    if index.dtype == bool:
        index = np.flatnonzero(index)
    out = empty((len(index),) + a.shape[1:], a.dtype)
    _count_copy(out)
    return np.take(a, index, axis=0, out=out)


def stack(blocks: list[np.ndarray], width: int, dtype=np.float64) -> np.ndarray:
    """The blocks one under the other, in answer memory: a single block that already is answer memory as it is."""
    if len(blocks) == 1 and blocks[0].dtype == dtype and _is_answer(blocks[0]):
        return blocks[0]
    out = empty((sum(len(b) for b in blocks), width), dtype)
    _count_copy(out)
    if blocks:
        np.concatenate(blocks, axis=0, out=out)
    return out
