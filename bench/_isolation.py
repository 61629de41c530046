"""What parsing in a bounded child process (onec.bounded, issue 17) costs the 1M-row stock parse.

Both ways in one process, alternating, best of `repeat` each: parse_stock called in-process, and the same
call through bounded.parse (fork, memory limit, the archive checks of an .xlsx, the answer mapped back from
/dev/shm). The .xlsx is parsed without a kept last sheet (a full parse, the expensive case).
"""

from __future__ import annotations

import time
from pathlib import Path


def phase_isolation(path: str, w: int, repeat: int = 3) -> dict:
    import numpy as np

    from mpsync.onec import bounded
    from mpsync.onec.limits import ParseLimits
    from mpsync.onec.stock import parse_stock

    name = Path(path).name
    direct = bounded.parse(parse_stock, path, name, ParseLimits(isolate=False), w)      # warm the page cache
    best = {"in_process": float("inf"), "bounded": float("inf")}
    for _ in range(repeat):
        for way, limits in (("in_process", ParseLimits(isolate=False)), ("bounded", ParseLimits())):
            t = time.perf_counter()
            parsed = bounded.parse(parse_stock, path, name, limits, w)
            best[way] = min(best[way], time.perf_counter() - t)
            assert parsed.articles == direct.articles and np.array_equal(parsed.quantities, direct.quantities)
            del parsed
    return {"in_process_seconds": best["in_process"], "bounded_seconds": best["bounded"],
            "ratio": best["bounded"] / best["in_process"], "items": len(direct.articles)}


def report(rows: list[dict], command: str) -> str:
    lines = ["## Stock parse in a bounded child process (issue 17)", "", f"Command: `{command}`", "",
             "Best of 3 alternating runs each, one process, 2 shared cores. *bounded* = onec.bounded.parse: fork, "
             "RLIMIT_AS, the .xlsx archive checks, the answer back through /dev/shm.", "",
             "| file | rows | in process (s) | bounded (s) | bounded / in process |", "| --- | --- | --- | --- | --- |"]
    for r in rows:
        lines.append(f"| {r['file']} | {r['items']:,} | {r['in_process_seconds']:.2f} | {r['bounded_seconds']:.2f} "
                     f"| {r['ratio']:.3f} |")
    return "\n".join(lines) + "\n"
