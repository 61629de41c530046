"""What the staff's result file of a catalog exchange lists."""

from __future__ import annotations

from mpsync.onec.model import CatalogParse

RESULT_HEADER = ["Row", "Article", "1C code", "Name", "Brand", "Model", "EAN", "Size class", "RRP"]


def result_rows(parsed: CatalogParse, applied: dict, *, dry_run: bool = False) -> tuple[list[list], list[str]]:
    merged: list[tuple[int, list, str]] = []
    for it in parsed.items:
        status = "applied" if it.article in applied["created"] or it.article in applied["updated"] else "unchanged"
        if it.article in applied["created"]:
            status = "applied: new product"
        merged.append((it.row, [it.row, it.article, it.onec_code, it.name, it.brand, it.model, it.ean,
                                it.size_class, it.rrp], status))
    for r in parsed.rejects:
        merged.append((r.row, [r.row, r.article, None, None, None, None, None, None, None],
                       f"rejected: {r.column + ': ' if r.column else ''}{r.reason}"))
    for r in parsed.cleaned:
        merged.append((r.row, [r.row, r.article, None, None, None, None, None, None, None],
                       f"applied, cleaned: {r.reason}"))
    for values, st in applied["price_rows"]:
        if st.startswith(("held", "rejected")):
            merged.append((values[0], [values[0], values[1]] + [None] * 7, f"{st.split(':', 1)[0]}: price "
                           f"{values[2]}: {st.split(':', 1)[1].strip()}"))
    for a in applied["deactivated"]:
        merged.append((10**9, [None, a] + [None] * 7, "applied: marked inactive (not in this full file)"
                       if a not in parsed.layout.get("marked_for_deletion", []) else "applied: marked inactive (1C deletion mark)"))
    merged.sort(key=lambda t: t[0])
    if dry_run:
        merged = [(k, v, "would apply" + st[len("applied"):] if st.startswith("applied") else st) for k, v, st in merged]
    return [m[1] for m in merged], [m[2] for m in merged]




def small_layout(layout: dict) -> dict:
    # The ledger keeps the layout for operators; long lists are cut to keep the row small.
    return {k: (v[:100] if isinstance(v, list) else v) for k, v in layout.items()}

