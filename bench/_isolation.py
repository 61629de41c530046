"""What parsing in a bounded child process (onec.bounded, issue 17) costs the 1M-row stock parse.

Both ways in one process, alternating, best of `repeat` each: parse_stock called in-process, and the same
call through bounded.parse (fork, memory limit, the archive checks of an .xlsx, the answer mapped back from
/dev/shm). The .xlsx is parsed without a kept last sheet (a full parse, the expensive case).

The warm comparison flatters the in-process way: its repeats reuse pages and allocator arenas the first parse
left behind. An Airflow task is a fresh process that parses once, so the cold comparison times each way as the
first parse of a new process (imports done before the clock starts, as the worker's own imports are), one new
process per measurement, alternating, best of `repeat`.
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
    split: dict = {}
    for _ in range(repeat):
        for way, limits in (("in_process", ParseLimits(isolate=False)), ("bounded", ParseLimits())):
            t = time.perf_counter()
            parsed = bounded.parse(parse_stock, path, name, limits, w)
            seconds = time.perf_counter() - t
            if seconds < best[way]:
                best[way] = seconds
                split = dict(bounded.last) if way == "bounded" else split
            assert parsed.articles == direct.articles and np.array_equal(parsed.quantities, direct.quantities)
            del parsed
    return {"in_process_seconds": best["in_process"], "bounded_seconds": best["bounded"],
            "ratio": best["bounded"] / best["in_process"], "items": len(direct.articles), "split": split}


def phase_cold_one(path: str, w: int, way: str) -> dict:
    """One parse, the first of this process: `way` is in_process or bounded."""
    from mpsync.onec import bounded
    from mpsync.onec.limits import ParseLimits
    from mpsync.onec.stock import parse_stock

    bounded._warm()                       # the readers imported, as in a worker that has run a task before
    t = time.perf_counter()
    parsed = bounded.parse(parse_stock, path, Path(path).name, ParseLimits(isolate=(way == "bounded")), w)
    return {"seconds": time.perf_counter() - t, "items": len(parsed.articles), "split": dict(bounded.last)}


def report(rows: list[dict], command: str) -> str:
    lines = ["## Stock parse in a bounded child process (issue 17)", "", f"Command: `{command}`", "",
             "Best of 3 alternating runs each, one process, 2 shared cores. *bounded* = onec.bounded.parse: fork, "
             "RLIMIT_AS, the .xlsx archive checks, the answer's arrays built in a /dev/shm file the parent maps "
             "(onec.answer_memory).", "",
             "*warm* = both ways repeated in one process; *cold* = each measurement the first parse of a new process "
             "(what an Airflow task is), best of 3 alternating.", "",
             "| file | rows | warm: in process (s) | warm: bounded (s) | warm ratio | cold: in process (s) "
             "| cold: bounded (s) | cold ratio |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        cold = r.get("cold") or {}
        cold_cells = (f"{cold['in_process']:.2f} | {cold['bounded']:.2f} | {cold['bounded'] / cold['in_process']:.3f}"
                      if cold else "- | - | -")
        lines.append(f"| {r['file']} | {r['items']:,} | {r['in_process_seconds']:.2f} | {r['bounded_seconds']:.2f} "
                     f"| {r['ratio']:.3f} | {cold_cells} |")
    lines += ["", "Where the best bounded run's time went (onec.bounded.last): *parse* = in the child, from the fork "
              "to its answer built; *answer* = the rest until the parent hears it is written (fork, the pickle, "
              "its tail written); *read* = the parent mapping and unpickling it; *reap* = waiting for the child's exit "
              "after that.", "", "| file | way | parse (s) | answer (s) | read (s) | reap (s) |",
              "| --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        for way, split in (("warm", r.get("split")), ("cold", (r.get("cold") or {}).get("split"))):
            if split:
                lines.append(f"| {r['file']} | {way} | {split['parse']:.2f} | {split['answer']:.3f} "
                             f"| {split['read']:.3f} | {split['reap']:.3f} |")
    return "\n".join(lines) + "\n"


def run(args, dataset, run_child) -> None:
    """bench_stock.py --isolation-only: warm and cold, per file kind."""
    import sys

    from bench._results import write_section

    rows = []
    for kind, n, w in (("csv", args.articles, args.warehouses), ("xlsx", args.xlsx_articles, args.xlsx_warehouses)):
        if n:
            data = dataset(kind, n, w)
            print(f"[{kind}_{n}x{w}] parse, in process vs bounded ...", flush=True)
            out = run_child("--phase", "isolation", "--file", data["first"], "--warehouses", str(w))
            cold: dict = {"in_process": float("inf"), "bounded": float("inf")}
            for _ in range(3):                  # each a new process, alternating
                for way in ("in_process", "bounded"):
                    one = run_child("--phase", f"cold-{way}", "--file", data["first"], "--warehouses", str(w))
                    if one["seconds"] < cold[way]:
                        cold[way] = one["seconds"]
                        cold["split"] = one["split"] if way == "bounded" else cold.get("split")
            rows.append({"file": f"{kind} {n:,} x {w}", **out, "cold": cold})
    text = report(rows, ("python bench/bench_stock.py " + " ".join(sys.argv[1:])).strip())
    print(text)
    if not args.no_write:
        write_section("stock-isolation", text)
