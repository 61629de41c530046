"""CommerceML group tree (Классификатор/Группы/Группа, nested) and the text cleaning of goods fields.

Kept apart from commerceml.py, which reads the rest of the exchange. Groups become catalog categories
(issue 16): key = the group's Ид, parent = the enclosing Группа, name = its Наименование.
"""

from __future__ import annotations

from typing import Any

from mpsync.onec.model import CatalogGroup, Reject
from mpsync.onec.values import clean_text, cleaned_note


def _local(tag: Any) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _text(el, name: str) -> str | None:
    for c in el:
        if _local(c.tag) == name:
            return (c.text or "").strip() or None
    return None


def read_groups(container, parent: str | None, out: dict[str, CatalogGroup], cleaned: list[Reject],
                file: str) -> None:
    """Every Группа under `container` (a Группы element), depth first: parents before their children."""
    for g in container:
        if _local(g.tag) != "Группа":
            continue
        gid = _text(g, "Ид")
        name, removed = clean_text(_text(g, "Наименование"))
        if removed:
            cleaned.append(Reject(file, 0, "Группа", None, cleaned_note(f"group {gid}", removed)))
        if not gid:
            continue
        out.setdefault(gid, CatalogGroup(gid, parent, name or gid))
        for sub in g:
            if _local(sub.tag) == "Группы":
                read_groups(sub, gid, out, cleaned, file)


def goods_group(el) -> str | None:
    """The goods item's group: the first Товар/Группы/Ид (1C writes one)."""
    for c in el:
        if _local(c.tag) == "Группы":
            for i in c:
                if _local(i.tag) == "Ид" and (i.text or "").strip():
                    return i.text.strip()
    return None


def cleaned_fields(file: str, ordinal: int, article: str, fields: dict[str, str | None],
                   cleaned: list[Reject]) -> dict[str, str | None]:
    """The goods item's free-text fields without control characters; each cleaned one noted."""
    out = {}
    for label, value in fields.items():
        text, removed = clean_text(value)
        if removed:
            cleaned.append(Reject(file, ordinal, label, article, cleaned_note(label, removed)))
        out[label] = text
    return out
