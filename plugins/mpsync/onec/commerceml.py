"""CommerceML 2.x / 3.1 (1C's standard "exchange with a website") -> CatalogParse.

What is read, by LOCAL element name (namespaces differ between 2.x `urn:1C.ru:commerceml_2` and 3.1
`urn:1C.ru:commerceml_3`, and some exports have none):

- goods (2.x `import.xml`, 3.1 `goods.xml`): Каталог/Товары/Товар {Ид, Артикул, Наименование, Штрихкод,
  Код, Изготовитель, ЗначенияСвойств, ЗначенияРеквизитов, ПометкаУдаления}; the classifier's Свойства
  give property names (and Справочник values) so brand/model/size class can be configured by name.
- offers (2.x `offers.xml`; 3.1 `offers.xml`, `prices.xml`, `rests.xml`): ПакетПредложений/Предложения/
  Предложение {Ид, Артикул, Цены/Цена {ИдТипаЦены, ЦенаЗаЕдиницу}, Количество,
  Склад @ИдСклада @КоличествоНаСкладе (2.x), Остатки/Остаток/Склад {Ид, Количество} (3.1)}.
- price types (ТипыЦен, in offers.xml or 3.1 priceLists.xml) and warehouses (Склады, in offers.xml,
  import.xml or 3.1 storages.xml): id -> name, so configuration can name them as people see them.

Files are told apart by content, not by name: pass every file of one exchange in any order.

Variants (`Ид` = `товар#характеристика`). Our product is the article (the SKU marketplaces match on);
1C characteristics (size, colour) of one nomenclature item share its article. So:
- stock of all characteristics of one goods item is SUMMED per warehouse into the article's stock;
- in a PARTIAL file the characteristics present may be only the changed ones, so their sum is not the
  article's stock: such variant stock is rejected (reported), never applied;
- the price of an article is the characteristics' common price; if they disagree the price is rejected
  (reported) rather than guessed.

Safety: the XML is parsed strictly (a truncated full file must never look like a short catalog that
deactivates everything); a malformed file raises FileRefused. Lenient in everything else: unknown
elements are ignored, numbers may carry NBSP thousands separators and decimal commas.

Configuration (section `commerceml` of mpsync.yaml), see `CommerceMLOptions.from_section`.

The files are read as a stream by onec.commerceml_read; the goods are mapped here, the offers by
onec.commerceml_offers.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Iterable

from mpsync.onec import values
from mpsync.onec.cml_groups import cleaned_fields
from mpsync.onec.commerceml_offers import read_offers
from mpsync.onec.commerceml_read import Collected, Goods, collect
from mpsync.onec.model import CatalogItem, CatalogParse, FileRefused, Reject
from mpsync.settings import ConfigError, settings

KGT_WORDS = ("кгт", "kgt", "крупногабаритный", "крупногабаритные", "да", "true", "yes", "1")


class CommerceMLConfigError(ValueError):
    pass


@dataclass(frozen=True)
class CommerceMLOptions:
    """How CommerceML maps onto our data. Price types and warehouses may be named by 1C Ид or by name."""

    price_type: str | None = None            # -> price ("Текущая цена")
    old_price_type: str | None = None        # -> old_price ("цена без акции")
    rrp_price_type: str | None = None        # -> product.rrp
    warehouses: dict[str, str] = field(default_factory=dict)   # 1C warehouse Ид or name -> our code
    default_warehouse: str | None = None     # where a bare <Количество> (no per-warehouse split) goes
    brand_property: str | None = None        # a property (ЗначенияСвойств) or requisite name
    brand_from_manufacturer: bool = False    # else: Изготовитель/Наименование as the brand
    model_property: str | None = None
    size_class_property: str | None = None   # value in KGT_WORDS -> 'kgt', other non-empty -> 'normal'
    code_requisite: str = "Код"              # element <Код> or ЗначениеРеквизита with this name

    @classmethod
    def from_section(cls, section: dict[str, Any], where: str = "commerceml",
                     known_warehouses: Iterable[str] | None = None) -> "CommerceMLOptions":
        def opt_str(key: str) -> str | None:
            v = section.get(key)
            if v is None:
                return None
            if not isinstance(v, (str, int)):
                raise CommerceMLConfigError(f"'{where}.{key}' must be a string, got {v!r}")
            return str(v).strip() or None

        wh = section.get("warehouses") or {}
        if not isinstance(wh, dict):
            raise CommerceMLConfigError(f"'{where}.warehouses' must map a 1C warehouse Ид or name to our code")
        wh = {str(k).strip(): str(v) for k, v in wh.items()}
        default_wh = opt_str("default_warehouse")
        if known_warehouses is not None:
            known = set(known_warehouses)
            bad = sorted({v for v in wh.values() if v not in known} | ({default_wh} - known - {None}))
            if bad:
                raise CommerceMLConfigError(
                    f"'{where}.warehouses' / '{where}.default_warehouse' name unknown warehouse codes {bad}; "
                    f"known: {sorted(known)}")
        return cls(
            price_type=opt_str("price_type"),
            old_price_type=opt_str("old_price_type"),
            rrp_price_type=opt_str("rrp_price_type"),
            warehouses=wh,
            default_warehouse=default_wh,
            brand_property=opt_str("brand_property"),
            brand_from_manufacturer=bool(section.get("brand_from_manufacturer", False)),
            model_property=opt_str("model_property"),
            size_class_property=opt_str("size_class_property"),
            code_requisite=opt_str("code_requisite") or "Код",
        )


def options_from_settings() -> CommerceMLOptions:
    s = settings()
    try:
        return CommerceMLOptions.from_section(s.section("commerceml"), known_warehouses=[w.code for w in s.warehouses])
    except CommerceMLConfigError as exc:
        raise ConfigError(f"{s.source}: {exc}") from None


# ---- small value helpers -------------------------------------------------------------------------------

def ean_checked(text: str | None) -> tuple[str | None, str | None]:
    """(ean, problem) by the same rule as the spreadsheets (values.clean_ean). Empty -> (None, None)."""
    try:
        return values.clean_ean(text), None
    except values.BadValue as exc:
        return None, str(exc)


def clean_article(text: str | None) -> str | None:
    return values.clean_article(text)


def _property_value(g: Goods, wanted: str | None, c: Collected) -> str | None:
    if not wanted:
        return None
    for pid, raw in g.props.items():
        if pid == wanted or c.properties.get(pid, "").casefold() == wanted.casefold():
            return c.property_values.get(raw, raw).strip() or None
    for n, v in g.requisites.items():
        if n.casefold() == wanted.casefold():
            return v
    return None


@dataclass
class CommerceMLParse(CatalogParse):
    """CatalogParse plus the 1C goods Ид of each article, so later partial exchanges can be joined to it."""

    onec_ids: dict[str, str] = field(default_factory=dict)      # article -> 1C goods Ид


def parse_commerceml(paths: list[Path] | list[str], *, options: CommerceMLOptions | None = None,
                     lookup: Callable[[set[str]], dict[str, str]] | None = None) -> CommerceMLParse:
    """Parse the files of one CommerceML exchange (any order) into one CatalogParse.

    `file` of the result names the goods file (else the first file); rejects name the file they come from.
    `layout` carries: format, version, files and their roles, partial, price types and warehouses found,
    `marked_for_deletion` (articles 1C flagged ПометкаУдаления: the catalog import deactivates them) and
    `unmapped_warehouses`.
    `lookup(goods_ids) -> {goods Ид: article}` resolves offers whose goods item is not in these files
    (the catalog import passes a database lookup; `inspect` passes none and such offers are reported).
    """
    paths = [Path(p) for p in paths]
    if not paths:
        raise ValueError("parse_commerceml needs at least one file")
    opts = options if options is not None else options_from_settings()
    c = Collected()
    for p in paths:
        collect(p, c)
    if not c.goods and not c.offers:
        raise FileRefused(paths[0].name, "no CommerceML goods (Каталог/Товары/Товар) or offers "
                                         "(ПакетПредложений/Предложения/Предложение) found")
    goods_file = next((g.file for g in c.goods), paths[0].name)
    rejects: list[Reject] = []
    partial = any(c.partial_flags.values())
    goods = _goods_items(c, opts, rejects)
    offered = read_offers(c, opts, goods.gid_article, goods.collided, lookup, partial, rejects, goods_file)
    items = goods.items
    if offered.rrp:
        items = [CatalogItem(**{**it.__dict__, "rrp": offered.rrp.get(it.article)}) if it.article in offered.rrp
                 else it for it in items]
    versions = sorted({v for v in [_version_of(p) for p in paths] if v})
    return CommerceMLParse(
        file=goods_file,
        layout={
            "container": "commerceml",
            "version": versions,
            "files": {n: roles for n, roles in c.roles.items()},
            "partial": partial,
            "partial_flags": c.partial_flags,
            "price_types": c.price_types,
            "warehouses": {wid: {"name": n, "code": offered.wh_map.get(wid)} for wid, n in c.warehouses.items()},
            "unmapped_warehouses": sorted(k for k in offered.unmapped if k),
            "marked_for_deletion": sorted(goods.deleted),
            "goods": len(c.goods),
            "offers": len(c.offers),
        },
        rows_read=len(c.goods) + sum(len(v) for v in c.offers.values()),
        skipped_service_rows=0,
        rejects=rejects,
        report_time=_report_time(c.report_time),
        items=items,
        partial=partial,
        prices=offered.prices,
        stock=offered.stock,
        onec_ids={it.article: next(g.gid.split("#", 1)[0] for g in goods.by_article[it.article]) for it in items},
        groups=list(c.groups.values()),
        cleaned=c.cleaned,
    )


@dataclass
class _GoodsItems:
    items: list[CatalogItem] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)                      # articles 1C marked for deletion
    gid_article: dict[str, str] = field(default_factory=dict)             # goods Ид -> article
    by_article: dict[str, list[Goods]] = field(default_factory=lambda: defaultdict(list))
    collided: set[str] = field(default_factory=set)                       # articles of two goods items


def _goods_items(c: Collected, opts: CommerceMLOptions, rejects: list[Reject]) -> _GoodsItems:
    """Goods -> items, one per article (the same goods Ид listed twice is the same item)."""
    out = _GoodsItems()
    for g in c.goods:
        gid = g.gid.split("#", 1)[0]
        if not g.article:
            rejects.append(Reject(g.file, g.ordinal, "Артикул", None,
                                  f"goods item {g.name or g.gid!r} has no article"))
            continue
        out.gid_article[gid] = g.article
        if all(x.gid.split("#", 1)[0] != gid for x in out.by_article[g.article]):
            out.by_article[g.article].append(g)
    for article, gs in out.by_article.items():
        if len(gs) > 1:
            # One article on two different 1C items: neither is applied blindly (ONEC.md).
            out.collided.add(article)
            for g in gs:
                rejects.append(Reject(g.file, g.ordinal, "Артикул", article,
                                      f"article is used by {len(gs)} different goods items "
                                      f"({', '.join(repr(x.name) for x in gs)}); none applied"))
            continue
        g = gs[0]
        if g.deleted:
            out.deleted.append(article)
            continue
        out.items.append(_goods_item(g, article, c, opts, rejects))
    return out


def _goods_item(g: Goods, article: str, c: Collected, opts: CommerceMLOptions, rejects: list[Reject]) -> CatalogItem:
    ean, problem = ean_checked(g.ean_raw)
    if problem:
        rejects.append(Reject(g.file, g.ordinal, "Штрихкод", article, f"{problem}; other fields applied"))
    size_raw = _property_value(g, opts.size_class_property, c)
    size_class = None
    if size_raw is not None:
        size_class = "kgt" if size_raw.strip().casefold() in KGT_WORDS else "normal"
    brand = _property_value(g, opts.brand_property, c)
    if brand is None and opts.brand_from_manufacturer:
        brand = g.manufacturer
    code_raw = g.code or next((v for n, v in g.requisites.items()
                               if n.casefold() == opts.code_requisite.casefold()), None)
    try:
        code = values.clean_onec_code(code_raw)
    except values.BadValue as exc:
        rejects.append(Reject(g.file, g.ordinal, "Код", article, f"{exc}; other fields applied"))
        code = None
    if g.article_controls:
        c.cleaned.append(Reject(g.file, g.ordinal, "Артикул", article,
                                values.cleaned_note("Артикул", g.article_controls)))
    text = cleaned_fields(g.file, g.ordinal, article, {
        "Наименование": g.name, "Бренд": brand, "Модель": _property_value(g, opts.model_property, c)}, c.cleaned)
    return CatalogItem(row=g.ordinal, article=article, onec_code=code, name=text["Наименование"],
                       brand=text["Бренд"], model=text["Модель"], ean=ean, size_class=size_class,
                       group=g.group if g.group in c.groups else None)


def _version_of(path: Path) -> str | None:
    with path.open("rb") as fh:
        head = fh.read(2048).decode("utf-8", "replace")
    m = re.search(r'ВерсияСхемы="([^"]+)"', head)
    return m.group(1) if m else None


def _report_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.strip())
    except ValueError:
        return None


def is_commerceml(path: Path) -> bool:
    """True when the file starts like a CommerceML document (by content, not by name)."""
    with Path(path).open("rb") as fh:
        head = fh.read(4096)
    try:
        text = head.decode("utf-8-sig", "replace")
    except Exception:
        return False
    return "КоммерческаяИнформация" in text or "urn:1C.ru:commerceml" in text
