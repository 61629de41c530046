"""Issue 17: a bounded parse builds its answer's big arrays in the scratch file the parent maps (onec.answer_memory),
and still leaves nothing behind: not after an answer, not after a child that died with its arrays half built."""

from __future__ import annotations

import gc
import os
import pickle
import tempfile
import time

import numpy as np
import pytest

from mpsync.onec import answer_memory, bounded
from mpsync.onec.limits import ParseLimits
from mpsync.onec.model import FileRefused, StockParse
from mpsync.onec.stock import parse_stock
from tests.onec_files import write_stock_csv, write_stock_xlsx

ROWS = [(f"A-{i}", i % 7, None, i % 3) for i in range(1, 2001)]
QUIRKY = ROWS[:50] + ["Магазин", ("DUP", 1, 1, 1), ("DEC", "2,5", " 3 ", None), ("NEG", -1, 1, 1),
                      ("DUP", 2, 2, 2), (None, 4, 4, 4), ("ZERO", None, None, None)] + ROWS[50:100]


def _long_row_csv(path):
    """Whole numbers, one row with a field too many in the middle: read row by row after the rest, so the
    quantities come in two blocks and out of row order."""
    write_stock_csv(path, ROWS[:300])
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[150] += ";"
    path.write_text("\r\n".join(lines) + "\r\n", encoding="utf-8")
    return path


FILES = {   # kind: (the file, whether the parse writes the quantities once: the column-wise paths)
    "csv whole numbers": (lambda p: write_stock_csv(p / "s.csv", ROWS), True),
    "csv quirks (text path, rows dropped)": (lambda p: write_stock_csv(p / "s.csv", QUIRKY, total=True), False),
    "csv a long row (two blocks, reordered)": (lambda p: _long_row_csv(p / "s.csv"), False),
    "xlsx": (lambda p: write_stock_xlsx(p / "s.xlsx", ROWS[:300], total=False), True),
    "xlsx quirks (row by row)": (lambda p: write_stock_xlsx(p / "s.xlsx", QUIRKY), False),
}


def _parse_and_locate(path, w):
    """In the child: the parse, whether its quantities lie in the arena (so the answer does not copy them),
    and how many bytes were copied into the arena rather than built there."""
    parsed = parse_stock(path, w)
    arena = answer_memory.current()
    return parsed, arena.locate(memoryview(parsed.quantities).cast("B")) is not None, arena.copied


@pytest.mark.parametrize("kind", list(FILES))
def test_the_quantities_are_built_in_the_answer_and_come_back_equal_and_writable(tmp_path, kind):
    make, once = FILES[kind]
    path = make(tmp_path)
    direct = parse_stock(path, 3)
    parsed, in_arena, copied = bounded.parse(_parse_and_locate, path, path.name, ParseLimits(), 3)
    assert in_arena
    assert (copied == 0) == once                             # the column-wise paths build them in place
    assert parsed.articles == direct.articles and parsed.row_numbers == direct.row_numbers
    assert parsed.rejects == direct.rejects and parsed.layout == direct.layout
    assert parsed.quantities.dtype == np.float64 and parsed.quantities.flags.c_contiguous
    assert np.array_equal(parsed.quantities, direct.quantities)
    parsed.quantities += 1                                   # copy-on-write: the parent's own pages
    assert np.array_equal(parsed.quantities, direct.quantities + 1)


def _scratch_files() -> set[str]:
    return {n for n in os.listdir(bounded._scratch_dir()) if n.startswith("mpsync-parse-")}


def _scratch_maps() -> list[str]:
    with open("/proc/self/maps") as fh:
        return [line for line in fh if "mpsync-parse-" in line]


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _build_then(path, how):
    """Half an answer in the arena, then the child dies (or runs out of time, or fails)."""
    q = answer_memory.empty((1 << 16, 16))
    q[:] = 1.0
    if how == "abort":
        os.abort()
    if how == "sleep":
        time.sleep(30)
    raise ValueError("half built")


@pytest.mark.parametrize("how, reason", [("abort", "died on it (SIGABRT)"), ("sleep", "took longer than 2 s"),
                                         ("raise", "the parser failed on it (ValueError: half built)")])
def test_a_child_that_dies_with_its_answer_half_built_is_refused_and_leaves_nothing(tmp_path, how, reason):
    path = write_stock_csv(tmp_path / "s.csv", ROWS[:10])
    before = _scratch_files(), _open_fds(), _scratch_maps()
    with pytest.raises(FileRefused) as exc:
        bounded.parse(_build_then, path, "s.csv", ParseLimits(seconds=2), how)
    assert reason in exc.value.reason
    assert (_scratch_files(), _open_fds(), _scratch_maps()) == before


def _too_much_answer(path):
    return answer_memory.empty((1 << 30,), np.uint8)


def test_answer_memory_over_the_limit_is_refused_as_too_much_memory(tmp_path):
    path = write_stock_csv(tmp_path / "s.csv", ROWS[:10])
    with pytest.raises(FileRefused) as exc:
        bounded.parse(_too_much_answer, path, "s.csv", ParseLimits(memory_mb=256))
    assert "needs more than the 256 MB allowed (parse_limits.memory_mb)" in exc.value.reason


def test_an_answer_holds_its_memory_only_while_it_lives(tmp_path):
    path = write_stock_csv(tmp_path / "s.csv", ROWS)
    files, maps = _scratch_files(), _scratch_maps()
    parsed = bounded.parse(parse_stock, path, "s.csv", ParseLimits(), 3)
    assert _scratch_files() == files                        # unlinked before the fork: no name to leave behind
    assert len(_scratch_maps()) == len(maps) + 1            # the quantities are the mapped file
    del parsed
    gc.collect()
    assert _scratch_maps() == maps


def test_a_region_is_handed_back_when_its_last_view_is_gone():
    fd, name = tempfile.mkstemp(dir=bounded._scratch_dir(), prefix="test-arena-")
    os.unlink(name)
    try:
        arena = answer_memory.Arena(fd)
        kept = arena.empty((1 << 18,), np.float64)
        kept[:] = 1.0
        dropped = arena.empty((1 << 18,), np.float64)
        dropped[:] = 2.0
        view = dropped[10:20]
        assert arena.locate(memoryview(kept).cast("B")) == answer_memory.PAGE
        assert arena.locate(memoryview(view).cast("B")) == answer_memory.PAGE + kept.nbytes + 80
        assert arena.locate(memoryview(np.ones(10)).cast("B")) is None
        used = os.fstat(fd).st_blocks * 512
        assert used >= 2 * kept.nbytes
        del dropped
        assert os.fstat(fd).st_blocks * 512 == used             # a view still holds it
        del view
        gc.collect()
        assert os.fstat(fd).st_blocks * 512 <= used - kept.nbytes
        assert kept.sum() == kept.size                          # the other region untouched
    finally:
        os.close(fd)


def _own_pid(path):
    return os.getpid()


def test_the_child_is_reaped_though_the_parent_goes_on_once_it_has_answered(tmp_path):
    path = write_stock_csv(tmp_path / "s.csv", ROWS[:10])
    pid = bounded.parse(_own_pid, path, "s.csv", ParseLimits())
    assert pid != os.getpid() and not os.path.exists(f"/proc/{pid}")        # no zombie left


@pytest.mark.parametrize("articles", [[], ["A-1"], [""], ["A-1", "", "Б\u00a02", "X\ud800"], ["A\x00B", "C"]])
def test_a_stock_answer_pickles_compactly_and_comes_back_the_same(articles):
    parsed = StockParse(file="s.csv", layout={"container": "csv"}, articles=list(articles),
                        row_numbers=list(range(2, 2 + len(articles))), quantities=np.ones((len(articles), 2)))
    state = parsed.__getstate__()
    assert isinstance(state["row_numbers"], np.ndarray)
    assert isinstance(state["articles"], bytes) == (bool(articles) and "\x00" not in "".join(articles))
    for protocol in (2, 5):
        back = pickle.loads(pickle.dumps(parsed, protocol=protocol))
        assert back.articles == articles and type(back.articles) is list
        assert back.row_numbers == parsed.row_numbers and all(type(r) is int for r in back.row_numbers)
        assert np.array_equal(back.quantities, parsed.quantities) and back.layout == parsed.layout
