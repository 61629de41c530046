"""Stock import benchmark: ours vs the physical floor vs the old system's way, side by side in one run.

    .venv/bin/python bench/bench_stock.py                       # 1,000,000 x 60 CSV and 1,000,000 x 10 .xlsx
    .venv/bin/python bench/bench_stock.py --articles 100000     # smaller, for a quick look
    .venv/bin/python bench/bench_stock.py --articles 0          # the .xlsx only (--xlsx-articles 0: the CSV only)

(a) ours:  parse_stock + stage + every fragment applied, two at a time (the mapped tasks on 2 cores)
(b) floor: the fastest reader here (pyarrow.csv / fastexcel) + COPY of the same (article, warehouse, qty)
           rows into an UNINDEXED table: the least work any import of this file can do on this machine
(c) naive: the old system: one upsert per row, commit every 20 rows, on a sample, extrapolated
Then the same file with 1% of quantities changed, applied on top of (a), after a VACUUM (ANALYZE) of the
database (what autovacuum does in the hour before the next file; timed and reported, counted in neither import).
In both imports the staging table is analyzed between prepare and the fragments, as autovacuum soon does
(so the fragments are planned with real statistics; not counted either).
Each phase runs in its own child process, and reports its own peak memory (VmHWM).
Generated files are cached in bench/.cache/ (generation is not measured).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT / "plugins"), str(ROOT)]
CACHE = HERE / ".cache"


# ---------------------------------------------------------------- data
def articles(n: int) -> list[str]:
    return [f"ART-{i:07d}" for i in range(n)]


def quantities(n: int, w: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    q = rng.integers(0, 50, size=(n, w), dtype=np.int64)
    q[rng.random((n, w)) < 0.5] = 0            # half the cells empty: 1C writes zero as an empty cell
    return q


def changed_copy(q: np.ndarray, share: float, seed: int) -> tuple[np.ndarray, int]:
    rng = np.random.default_rng(seed)
    q2 = q.copy()
    mask = rng.random(q.shape) < share
    q2[mask] += 1 + rng.integers(0, 5, size=int(mask.sum()))
    return q2, int(mask.sum())


def write_csv(path: Path, arts: list[str], q: np.ndarray) -> None:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    cols = {"Артикул": pa.array(arts)}
    for j in range(q.shape[1]):
        col = q[:, j]
        cols[f"Склад {j + 1}"] = pa.array(col, mask=col == 0)      # zero -> empty cell
    tmp = path.with_suffix(".tmp")
    pacsv.write_csv(pa.table(cols), tmp, pacsv.WriteOptions(delimiter=";", quoting_style="none"))
    tmp.replace(path)


def write_xlsx(path: Path, arts: list[str], q: np.ndarray) -> None:
    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    ws = wb.create_sheet("Лист_1")
    ws.append(["Остатки товаров"])
    ws.append([])
    ws.append(["Артикул"] + [f"Склад {j + 1}" for j in range(q.shape[1])])
    for a, row in zip(arts, q.tolist()):
        ws.append([a] + [v if v else None for v in row])
    tmp = path.with_suffix(".tmp.xlsx")
    wb.save(tmp)
    tmp.replace(path)


def dataset(kind: str, n: int, w: int) -> dict:
    CACHE.mkdir(parents=True, exist_ok=True)
    base = CACHE / f"stock_{n}x{w}"
    first, second = Path(f"{base}.{kind}"), Path(f"{base}_1pct.{kind}")
    q = quantities(n, w, seed=n + w)
    q2, changed_cells = changed_copy(q, 0.01, seed=7)
    writer = write_csv if kind == "csv" else write_xlsx
    for path, values in ((first, q), (second, q2)):
        if not path.exists():
            t = time.perf_counter()
            writer(path, articles(n), values)
            print(f"  generated {path.name} in {time.perf_counter() - t:.0f}s", flush=True)
    return {"first": str(first), "second": str(second), "changed_cells": changed_cells}


# ---------------------------------------------------------------- phases (each in a child process)
def bench_settings(w: int):
    from mpsync.settings import parse_settings

    codes = [f"w{j + 1:02d}" for j in range(w)]
    mps = ["yandex", "ozon", "megamarket"]
    raw = {
        "onec": {"drops": {"stock": {"folders": ["/1c/stock"], "pattern": "*"}}},
        "warehouses": {"scheme": "per_marketplace", "stock_columns": codes,
                       "list": [{"code": c, "marketplaces": [mps[j % 3]]} for j, c in enumerate(codes)]},
    }
    if os.environ.get("MPSYNC_BENCH_PARSE_IN_PROCESS"):
        # --parse-in-process: the parse without issue 17's bounded child, to measure another change apart
        raw["parse_limits"] = {"isolate": False}
    return parse_settings(raw, Path("<bench>"))


def load_products(dsn: str, n: int) -> None:
    import psycopg

    with psycopg.connect(dsn) as conn, conn.cursor().copy("copy product (article) from stdin") as copy:
        for a in articles(n):
            copy.write_row((a,))


def phase_floor(dsn: str, path: str, w: int) -> dict:
    """Fastest reader + COPY of the long (article, warehouse, qty) rows into an unindexed table."""
    import io

    import psycopg
    import pyarrow as pa
    import pyarrow.csv as pacsv

    t0 = time.perf_counter()
    if path.endswith(".csv"):
        table = pacsv.read_csv(path, parse_options=pacsv.ParseOptions(delimiter=";"))
        arts = table.column(0).to_numpy(zero_copy_only=False).astype(object)
        q = np.column_stack([table.column(j + 1).fill_null(0).to_numpy() for j in range(w)])
    else:
        import fastexcel

        sheet = fastexcel.read_excel(path).load_sheet(0, header_row=2)
        table = sheet.to_arrow()
        arts = table.column(0).to_numpy(zero_copy_only=False).astype(object)
        q = np.column_stack([table.column(j + 1).fill_null(0).to_numpy() for j in range(w)])
    t_read = time.perf_counter() - t0
    codes = np.array([f"w{j + 1:02d}" for j in range(w)], dtype=object)
    with psycopg.connect(dsn) as conn:
        conn.execute("create table floor_stock (article text, warehouse text, quantity numeric(14,3))")
        with conn.cursor().copy("copy floor_stock from stdin (format csv)") as copy:
            chunk = 50_000
            for s in range(0, len(arts), chunk):
                e = min(s + chunk, len(arts))
                long = pa.table({"a": np.repeat(arts[s:e], w), "w": np.tile(codes, e - s),
                                 "q": q[s:e].reshape(-1)})
                buf = io.BytesIO()
                pacsv.write_csv(long, buf, pacsv.WriteOptions(include_header=False))
                copy.write(buf.getvalue())
    total = time.perf_counter() - t0
    with psycopg.connect(dsn, autocommit=True) as conn:
        # Measured: now out of the way, so autovacuum of 60M floor rows doesn't share the cores with ours.
        conn.execute("drop table floor_stock")
    return {"seconds": total, "read_seconds": t_read, "rows": int(len(arts) * w)}


def phase_ours(dsn: str, path: str, w: int, label: str, workers: int = 2) -> dict:
    import psycopg

    from mpsync import ledger
    from mpsync.dropfolder import DropFile
    from mpsync.imports import pipeline
    from mpsync.imports.contracts import PreparedFile
    from mpsync.imports.stock import STOCK

    cfg = bench_settings(w)
    p = Path(path)
    t0 = time.perf_counter()
    with psycopg.connect(dsn, autocommit=True) as conn:
        entry, _ = ledger.register(conn, kind="stock", ftp_path=str(p), name=f"{label}-{p.name}",
                                   size=p.stat().st_size, modified_at=None, content_sha256=label)
        file = DropFile(str(p), p.name, p.stat().st_size, None)
        parsed = STOCK.parse([p], cfg, conn)            # what pipeline.prepare times as "parse" and "stage"
        t_parse = time.perf_counter() - t0
        staged = STOCK.stage(conn, entry.import_file_id, parsed, file,
                             ledger.made_at(parsed.report_time, None, cfg.onec_timezone), cfg)
        prepared = {"fragments": staged.fragments, **staged.details,
                    "seconds": {"parse": t_parse, "stage": time.perf_counter() - t0 - t_parse}}
    t_prepare = time.perf_counter() - t0
    # Autovacuum analyzes a freshly filled staging table within a minute or so, often before the fragments
    # run: plan them with its real statistics, as production will (timed, reported, counted in no import).
    started = time.perf_counter()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("analyze stock_staging")
    t_analyze = time.perf_counter() - started
    # Fragments run as mapped tasks; on this 2-core machine two run at a time.
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=workers) as pool:
        changed = sum(pool.map(lambda f: pipeline.apply_fragment(STOCK, dsn, f, cfg), prepared["fragments"]))
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("delete from stock_staging where import_file_id = %s", (entry.import_file_id,))
        STOCK.complete(conn, PreparedFile("stock", entry.import_file_id, file.name, file.path), cfg)
    total = time.perf_counter() - t0 - t_analyze
    return {"seconds": total, "prepare_seconds": t_prepare, "analyze_seconds": t_analyze, "changed": changed,
            "unchanged": prepared["unchanged"], "reparsed": prepared.get("reparsed"),
            "fragments": len(prepared["fragments"]), **{f"{k}_seconds": v for k, v in prepared["seconds"].items()}}


def phase_naive(dsn: str, sample: int, w: int) -> dict:
    """The old way: per row, look up the product and upsert; commit every 20 rows.

    Against the same stock table, but without our triggers (history, change log): the old system had none,
    so this is the old way at its fastest."""
    import psycopg

    q = quantities(sample // w + 1, w, seed=99)
    rows = [(f"ART-{i:07d}", f"w{j + 1:02d}", int(q[i, j])) for i in range(q.shape[0]) for j in range(w)][:sample]
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("alter table stock disable trigger user")
    t0 = time.perf_counter()
    with psycopg.connect(dsn) as conn:
        for k, (a, wh, qty) in enumerate(rows, 1):
            conn.execute(
                """insert into stock (product_id, warehouse, quantity)
                   select product_id, %s, %s from product where article = %s
                   on conflict (product_id, warehouse) do update set quantity = excluded.quantity""",
                (wh, qty, a))
            if k % 20 == 0:
                conn.commit()
        conn.commit()
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "rows": len(rows), "rows_per_second": len(rows) / seconds}


def child(args) -> None:
    if args.phase == "floor":
        out = phase_floor(args.dsn, args.file, args.warehouses)
    elif args.phase == "isolation":
        from bench._isolation import phase_isolation

        out = phase_isolation(args.file, args.warehouses)
    elif args.phase in ("cold-in_process", "cold-bounded"):
        from bench._isolation import phase_cold_one

        out = phase_cold_one(args.file, args.warehouses, args.phase.split("-", 1)[1])
    elif args.phase == "ours":
        out = phase_ours(args.dsn, args.file, args.warehouses, args.label)
    else:
        out = phase_naive(args.dsn, args.sample, args.warehouses)
    out["peak_rss_mb"] = peak_rss_mb()
    print("RESULT " + json.dumps(out))


def peak_rss_mb() -> float:
    """This process's own peak resident memory. (Linux's ru_maxrss is not: a child starts from its parent's
    peak at fork, so every phase would report at least what the driver once held.)"""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_child(*argv: str, watch: str | None = None) -> dict:
    """One phase in its own process; with `watch` (a DSN), also which autovacuum tasks ran meanwhile (they
    share the 2 cores with the phase)."""
    import threading

    seen: set[str] = set()
    done = threading.Event()

    def poll() -> None:
        import psycopg

        with psycopg.connect(watch, autocommit=True) as conn:
            while not done.wait(1.0):
                seen.update(r[0] for r in conn.execute(
                    "select query from pg_stat_activity where backend_type = 'autovacuum worker' and query <> ''"))

    watcher = threading.Thread(target=poll, daemon=True) if watch else None
    if watcher:
        watcher.start()
    proc = subprocess.run([sys.executable, __file__, "--child", *argv], capture_output=True, text=True)
    done.set()
    if watcher:
        watcher.join()
    if proc.returncode != 0:
        raise RuntimeError(f"phase {argv} failed:\n{proc.stderr[-4000:]}")
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT "))
    out = json.loads(line[len("RESULT "):])
    if watch:
        out["autovacuum"] = sorted(q.removeprefix("autovacuum: ") for q in seen)
    return out


# ---------------------------------------------------------------- driver
def measure(pg, kind: str, n: int, w: int, sample: int) -> dict:
    from mpsync import db

    data = dataset(kind, n, w)
    tag = f"{kind}_{n}x{w}"
    # The prepare task's work folder (where the last .xlsx parsed is kept): empty, so the first import parses
    # in full, and shared by the two imports, as on a worker that runs the hourly import.
    work = CACHE / f"work-{tag}"
    shutil.rmtree(work, ignore_errors=True)
    os.environ["MPSYNC_WORK_DIR"] = str(work)
    floor_dsn = pg.create_database(f"floor_{tag}".lower())
    ours_dsn = pg.create_database(f"ours_{tag}".lower())
    db.migrate(ours_dsn)
    load_products(ours_dsn, n)
    print(f"[{tag}] floor ...", flush=True)
    floor = run_child("--phase", "floor", "--dsn", floor_dsn, "--file", data["first"], "--warehouses", str(w))
    print(f"[{tag}] ours, first import ...", flush=True)
    first = run_child("--phase", "ours", "--dsn", ours_dsn, "--file", data["first"], "--warehouses", str(w),
                      "--label", "first", watch=ours_dsn)
    # The next hourly file comes an hour later, when autovacuum has been over what the first import wrote
    # (30M new stock rows, 1M remembered rows, the emptied staging: hint bits, visibility map, statistics).
    # Done here at once, for the whole database, timed, and counted in neither import.
    import psycopg

    started = time.perf_counter()
    with psycopg.connect(ours_dsn, autocommit=True) as conn:
        conn.execute("vacuum (analyze)")
    vacuum_seconds = time.perf_counter() - started
    print(f"[{tag}] ours, 1% changed ...", flush=True)
    second = run_child("--phase", "ours", "--dsn", ours_dsn, "--file", data["second"], "--warehouses", str(w),
                       "--label", "second", watch=ours_dsn)
    shutil.rmtree(work, ignore_errors=True)
    result = {"kind": kind, "n": n, "w": w, "floor": floor, "first": first, "second": second,
              "vacuum_seconds": vacuum_seconds,
              "changed_cells": data["changed_cells"]}
    if sample:
        naive_dsn = pg.create_database(f"naive_{tag}".lower())
        db.migrate(naive_dsn)
        load_products(naive_dsn, n)
        print(f"[{tag}] naive sample of {sample} rows ...", flush=True)
        result["naive"] = run_child("--phase", "naive", "--dsn", naive_dsn, "--sample", str(sample),
                                    "--warehouses", str(w))
    return result


def report(results: list[dict], command: str) -> str:
    lines = ["## Stock import (issue 2)", "", f"Command: `{command}`", "",
             "Machine: 2 cores, shared with other work while measured; ratios are taken within one run.", "",
             "| file | rows (article x warehouse) | (b) floor s | (a) ours first s | ours / floor | 1% changed s "
             "| 1% / first | rows written 1% (expected) | (c) naive extrapolated s | naive / ours | peak RSS ours MB |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        rows = r["n"] * r["w"]
        naive = r.get("naive")
        naive_total = rows / naive["rows_per_second"] if naive else None
        lines.append(
            f"| {r['kind']} {r['n']:,} x {r['w']} | {rows:,} | {r['floor']['seconds']:.1f} | "
            f"{r['first']['seconds']:.1f} | {r['first']['seconds'] / r['floor']['seconds']:.2f}x | "
            f"{r['second']['seconds']:.1f} | {r['second']['seconds'] / r['first']['seconds']:.3f} | "
            f"{r['second']['changed']:,} ({r['changed_cells']:,}) | "
            + (f"{naive_total:,.0f} | {naive_total / r['first']['seconds']:.0f}x | " if naive else "– | – | ")
            + f"{max(r['first']['peak_rss_mb'], r['second']['peak_rss_mb']):.0f} |")
    lines += ["", "Details (seconds; floor read = reader only; ours prepare = parse + product lookup + stage + checks):", ""]
    for r in results:
        lines.append(f"- {r['kind']} {r['n']:,} x {r['w']}: floor read {r['floor']['read_seconds']:.1f}, "
                     f"floor peak RSS {r['floor']['peak_rss_mb']:.0f} MB; ours first: prepare "
                     f"{r['first']['prepare_seconds']:.1f} (parse {r['first']['parse_seconds']:.1f}, stage "
                     f"{r['first']['stage_seconds']:.1f}), apply {r['first']['seconds'] - r['first']['prepare_seconds']:.1f}, "
                     f"{r['first']['fragments']} fragments; vacuum (analyze) of the database between the two (not counted) "
                     f"{r['vacuum_seconds']:.1f}; 1% changed: prepare {r['second']['prepare_seconds']:.1f} (parse "
                     f"{r['second']['parse_seconds']:.1f}"
                     + (f" of the {r['second']['reparsed']:,} rows that differ from the first file's, the rest "
                        "kept from it" if r['second'].get('reparsed') is not None else "")
                     + f", stage {r['second']['stage_seconds']:.1f}; "
                     f"{r['second']['unchanged']:,} rows equal to the last report, not applied), "
                     f"apply {r['second']['seconds'] - r['second']['prepare_seconds']:.1f} (planned with the staging "
                     f"table analyzed, as autovacuum does: {r['second']['analyze_seconds']:.1f} s, not counted)"
                     + (f"; naive sample {r['naive']['rows']:,} rows at {r['naive']['rows_per_second']:,.0f} rows/s"
                        if r.get("naive") else "")
                     + f"; autovacuum during the first: {', '.join(r['first']['autovacuum']) or 'none'}; "
                       f"during the 1%: {', '.join(r['second']['autovacuum']) or 'none'}")
    lines += ["", "Targets: first import within 3x of the floor; the 1%-changed import writes only the changed rows "
              "and takes under 1/3 of the first; ours at least 100x faster than naive; peak memory under 4 GiB."]
    return "\n".join(lines)


def isolation(args) -> None:
    from bench._isolation import run

    run(args, dataset, run_child)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--phase"), ap.add_argument("--dsn"), ap.add_argument("--file"), ap.add_argument("--label")
    ap.add_argument("--articles", type=int, default=1_000_000)
    ap.add_argument("--warehouses", type=int, default=60)
    ap.add_argument("--xlsx-articles", type=int, default=1_000_000)
    ap.add_argument("--xlsx-warehouses", type=int, default=10)
    ap.add_argument("--sample", type=int, default=20_000, help="rows for the naive way (extrapolated)")
    ap.add_argument("--no-write", action="store_true", help="do not write bench/RESULTS.md")
    ap.add_argument("--parse-in-process", action="store_true",
                    help="parse in the worker's process (parse_limits.isolate: false), e.g. to measure the crash "
                         "safety's cost apart from the bounded parse's")
    ap.add_argument("--isolation-only", action="store_true",
                    help="only the cost of parsing in a bounded child process (bench/_isolation.py)")
    args = ap.parse_args()
    if args.child:
        return child(args)
    if args.isolation_only:
        return isolation(args)
    if args.parse_in_process:
        os.environ["MPSYNC_BENCH_PARSE_IN_PROCESS"] = "1"       # the phases are child processes

    from bench._results import write_section
    from mpsync.local.postgres import LocalPostgres, free_port

    pg = LocalPostgres(CACHE / "pg-stock", free_port())
    pg.destroy()                                    # a fresh cluster each run: no cache or bloat carried over
    pg.start()
    try:
        results = []
        if args.articles:
            results.append(measure(pg, "csv", args.articles, args.warehouses, args.sample))
        if args.xlsx_articles:
            results.append(measure(pg, "xlsx", args.xlsx_articles, args.xlsx_warehouses, 0))
    finally:
        pg.destroy()
    command = "python bench/bench_stock.py " + " ".join(sys.argv[1:])
    text = report(results, command.strip())
    print(text)
    if not args.no_write:
        write_section("stock", text)


if __name__ == "__main__":
    main()
