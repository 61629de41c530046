"""1C's own orders document (CommerceML 2.x, `type=sale&mode=file` of the site exchange) -> what 1C says.

1C sends back, per Документ (ХозОперация "Заказ товара"), the site's order (Ид, Номер) and its own view in
ЗначенияРеквизитов, named as in 1C's exchange module and the sites that read it (1C-Bitrix sale.export.1c,
CS-Cart's orders.xml description): "Номер по 1С", "Дата по 1С", "Статус заказа", "Отменен", "ПометкаУдаления",
"Проведен", "Номер отгрузки по 1С", "Дата отгрузки по 1С", "Отгружен". Read by LOCAL element name, as the
catalog reader does (namespaces vary between exports).

Safety: the input comes over the network. lxml with resolve_entities=False, no_network=True, load_dtd=False,
huge_tree=False; any DOCTYPE is refused outright (entity declarations live only there, so no entity
expansion and no external entity can happen); a zip (init answered zip=yes) is read entry by entry with a
cap on entries and on real, not declared, uncompressed size. Anything wrong refuses the whole document
(FileRefused) before a row is touched.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass

from lxml import etree

from mpsync.onec.model import FileRefused

MAX_ZIP_ENTRIES = 20
_TRUE = ("true", "да", "1", "yes", "истина")


@dataclass(frozen=True)
class OnecOrderAnswer:
    """One order as 1C reports it. `keys`: identifiers that may name our order, most specific first."""

    keys: tuple[str, ...]
    onec_number: str | None
    onec_status: str | None
    shipped: bool
    cancelled: bool


@dataclass(frozen=True)
class OnecOrdersFile:
    name: str
    orders: tuple[OnecOrderAnswer, ...]


def _local(tag) -> str:
    return etree.QName(tag).localname if isinstance(tag, str) else ""


def _child_text(el, name: str) -> str | None:
    for c in el:
        if _local(c.tag) == name:
            t = (c.text or "").strip()
            return t or None
    return None


def _requisites(doc) -> dict[str, str]:
    out: dict[str, str] = {}
    for block in doc:
        if _local(block.tag) != "ЗначенияРеквизитов":
            continue
        for r in block:
            if _local(r.tag) == "ЗначениеРеквизита":
                name, value = _child_text(r, "Наименование"), _child_text(r, "Значение")
                if name:
                    out[name.strip().lower()] = value or ""
    return out


def _true(value: str | None) -> bool:
    return (value or "").strip().lower() in _TRUE


def _answer(doc, n: int, name: str) -> OnecOrderAnswer:
    req = _requisites(doc)
    keys = tuple(dict.fromkeys(k for k in (
        _child_text(doc, "Номер"), _child_text(doc, "Ид"), req.get("номер по данным сайта"),
        req.get("номер заказа на сайте")) if k))
    if not keys:
        raise FileRefused(name, f"Документ #{n} has neither Ид nor Номер: cannot tell which order it is")
    status = req.get("статус заказа") or req.get("статус") or None
    shipped = (_true(req.get("отгружен")) or bool(req.get("номер отгрузки по 1с"))
               or bool(req.get("дата отгрузки по 1с")))
    cancelled = _true(req.get("отменен")) or _true(req.get("пометкаудаления")) or _true(req.get("пометка удаления"))
    return OnecOrderAnswer(keys, req.get("номер по 1с") or None, status, shipped, cancelled)


def _xml(data: bytes, name: str) -> list[OnecOrderAnswer]:
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
                             huge_tree=False, remove_comments=True, remove_pis=True)
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        raise FileRefused(name, f"not well-formed XML: {exc}") from None
    tree = root.getroottree()
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        raise FileRefused(name, "a DOCTYPE/entity declaration is not allowed in an orders document")
    if _local(root.tag) != "КоммерческаяИнформация":
        raise FileRefused(name, f"root element is <{_local(root.tag)}>, expected <КоммерческаяИнформация>")
    docs = [el for el in root if _local(el.tag) == "Документ"]
    return [_answer(d, n, name) for n, d in enumerate(docs, 1)
            if (_child_text(d, "ХозОперация") or "Заказ товара") == "Заказ товара"]


def _unzip(data: bytes, name: str, max_bytes: int) -> list[tuple[str, bytes]]:
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise FileRefused(name, f"not a readable zip archive: {exc}") from None
    with zf:
        entries = [i for i in zf.infolist() if not i.is_dir()]
        if len(entries) > MAX_ZIP_ENTRIES:
            raise FileRefused(name, f"zip has {len(entries)} entries, at most {MAX_ZIP_ENTRIES} are read")
        out, total = [], 0
        for info in entries:
            if not info.filename.lower().endswith(".xml"):
                continue
            chunks = []
            try:
                with zf.open(info) as fh:      # count what really inflates: a header may lie (zip bomb)
                    while chunk := fh.read(1 << 20):
                        total += len(chunk)
                        if total > max_bytes:
                            raise FileRefused(name, f"unzipped content exceeds {max_bytes} bytes")
                        chunks.append(chunk)
            except (zipfile.BadZipFile, RuntimeError, OSError, EOFError) as exc:
                raise FileRefused(name, f"zip entry {info.filename!r} unreadable: {exc}") from None
            out.append((info.filename, b"".join(chunks)))
    if not out:
        raise FileRefused(name, "zip holds no .xml file")
    return out


def parse_onec_orders(data: bytes, name: str, *, max_bytes: int = 100 * 1024 * 1024) -> OnecOrdersFile:
    """Every order 1C reports in one uploaded file (XML, or a zip of XML files). Raises FileRefused."""
    if not data.strip():
        raise FileRefused(name, "empty file")
    if len(data) > max_bytes:
        raise FileRefused(name, f"{len(data)} bytes, more than the {max_bytes} accepted")
    parts = _unzip(data, name, max_bytes) if data[:2] == b"PK" else [(name, data)]
    orders: list[OnecOrderAnswer] = []
    for part_name, part in parts:
        orders.extend(_xml(part, part_name))
    return OnecOrdersFile(name, tuple(orders))


def looks_complete(data: bytes) -> bool:
    """Whether an upload could be whole: a zip's end record, or XML that parses (used to tell 1C's parts)."""
    if data[:2] == b"PK":
        return zipfile.is_zipfile(io.BytesIO(data))
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
    try:
        etree.fromstring(data, parser)
    except etree.XMLSyntaxError:
        return False
    return True
