"""bench_catalog.py's section of bench/RESULTS.md: the catalog exchanges beside the stock import."""

from __future__ import annotations


def _catalog_row(label: str, r: dict, floor: float, n: int) -> str:
    p, a, f = r["prepare"], r["apply"], r["finish"]
    other = p["seconds"] - p["parse_seconds"] - p["stage_seconds"]
    return (f"| {label} | {floor:.1f} | {r['seconds']:.1f} | {r['seconds'] / floor:.2f}x | "
            f"{r['seconds'] / n * 1e6:.0f} | {p['parse_seconds']:.1f} | {p['stage_seconds']:.1f} | "
            f"{a['seconds']:.1f} | {f['seconds']:.1f} | {other:.1f} | "
            f"{p['peak_rss_mb']:.0f} / {a['peak_rss_mb']:.0f} / {f['peak_rss_mb']:.0f} |")


def _stock_row(label: str, r: dict, floor: float, n: int) -> str:
    other = r["prepare_seconds"] - r["parse_seconds"] - r["stage_seconds"]
    return (f"| {label} | {floor:.1f} | {r['seconds']:.1f} | {r['seconds'] / floor:.2f}x | "
            f"{r['seconds'] / n * 1e6:.0f} | {r['parse_seconds']:.1f} | {r['stage_seconds']:.1f} | "
            f"{r['seconds'] - r['prepare_seconds']:.1f} | – | {other:.1f} | {r['peak_rss_mb']:.0f} (one process) |")


def _counts(r: dict) -> str:
    f = r["finish"]
    return (f"{f['status']}: {f['created']:,} created, {f['updated']:,} updated, {f['deactivated']:,} switched off, "
            f"{f['prices_changed']:,} prices, {f['stock_changed']:,} stock rows, {f['rejected']:,} rejected/held; "
            f"{r['prepare']['fragments']} fragments ({r['apply']['changed']:,} products written by them)")


def report(cat: dict, stock: dict | None, command: str) -> str:
    n, w = cat["n"], cat["w"]
    floor = cat["floor"]
    lines = ["## Catalog import: a CommerceML exchange beside the stock import (issue 18)", "",
             f"Command: `{command}`", "",
             f"Data: {n:,} articles; import.xml + offers.xml {cat['mb']:,.0f} MB (CommerceML 2.07, groups, "
             f"properties, one price, stock at up to {w} warehouses, only those holding stock listed); the stock "
             f"report is bench_stock's CSV of the same articles and quantities ({n:,} x {w}). Machine: 2 cores, "
             "shared with other work; ratios are taken within one run.", "",
             "| import | floor s | ours s | ours / floor | µs per article | parse s | stage s | fragments s "
             "| finish s | other s | peak RSS MB (prepare / fragments / finish) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
             _catalog_row("catalog, first exchange", cat["first"], floor["seconds"], n),
             _catalog_row("catalog, 1% of articles changed", cat["second"], floor["seconds"], n)]
    if stock:
        lines += [_stock_row(f"stock CSV {n:,} x {w}, first", stock["first"], stock["floor"]["seconds"], n),
                  _stock_row("stock, 1% of cells changed", stock["second"], stock["floor"]["seconds"], n)]
    c1, c2 = cat["first"]["seconds"], cat["second"]["seconds"]
    ratios = [f"catalog 1% / first {c2 / c1:.3f}"]
    if stock:
        s1, s2 = stock["first"]["seconds"], stock["second"]["seconds"]
        ratios = [f"catalog / stock, first import {c1 / s1:.2f}x", f"1% changed {c2 / s2:.2f}x",
                  *ratios, f"stock 1% / first {s2 / s1:.3f}"]
    lines += ["", "Ratios in this run: " + "; ".join(ratios) + ".", "",
              "Columns: *ours* = prepare + fragments + finish of the catalog (each task's own child process), or "
              "bench_stock's import (parse, stage, fragments, complete). *fragments* = every fragment, two at a "
              "time (for the stock: with its complete). *finish* = switch-offs, prices through the guards, stock, "
              "the result file (every product listed) uploaded, the files archived. *other* = the rest of "
              "prepare: the catalog's FTP download, SHA-256 and ledger; the stock's ledger and lookups. "
              "*floor* = catalog: a bare lxml iterparse of the two files taking the written fields, with COPY of "
              "the same rows into unindexed tables; stock: bench_stock's floor (pyarrow + COPY).", "",
              "Details:", "",
              f"- catalog floor: {floor['seconds']:.1f} s, of it outside COPY calls (read) "
              f"{floor['read_seconds']:.1f} s, {floor['rows']:,} rows, peak RSS {floor['peak_rss_mb']:.0f} MB",
              f"- catalog first exchange: {_counts(cat['first'])}",
              f"- vacuum (analyze) of the database between the exchanges (not counted): {cat['vacuum_seconds']:.1f} s; "
              f"staging analyzed before the fragments (not counted): {cat['first']['apply']['analyze_seconds']:.1f} s "
              f"and {cat['second']['apply']['analyze_seconds']:.1f} s",
              f"- catalog 1% changed: {_counts(cat['second'])}"]
    if stock:
        lines.append(f"- stock: floor read {stock['floor']['read_seconds']:.1f} s, {stock['first']['fragments']} "
                     f"fragments; the 1% import wrote {stock['second']['changed']:,} rows "
                     f"({stock['changed_cells']:,} cells changed); peak RSS first {stock['first']['peak_rss_mb']:.0f} "
                     f"MB, 1% {stock['second']['peak_rss_mb']:.0f} MB")
    return "\n".join(lines)
