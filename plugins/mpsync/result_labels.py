"""Every text of the staff's result files, in one place: Russian (the default: the staff who read the files
on the FTP never open Airflow) and English (`results.language: en` in the config).

The imports speak one internal English vocabulary (summary keys such as `rows_read`, column keys such as
`article`, statuses `applied` / `held: <reason>`); mpsync.results turns it into the file's language here.
A text with no entry (a 1C column header, a reason no pattern knows) is written as it is: a label missing
here never loses information, it only stays in English. The reasons' Russian is in mpsync.reason_labels
(tests/test_reason_labels.py fails on a reason the code can give that has none).
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from mpsync import reason_labels

LANGUAGES = ("ru", "en")
DEFAULT_LANGUAGE = "ru"
# The zone of the times in the file (results.timezone): the staff read them as their wall clock, not UTC.
DEFAULT_TIMEZONE = "Europe/Moscow"

# Row statuses: the first word(s) of an internal status, before ":" or " (" (a price list's tag).
# Also the problem groups: rejected rows come first in the file, then held ones, then the rest.
STATUS_KINDS = ("would apply", "applied", "unchanged", "held", "rejected", "not applied", "not evaluated")
PROBLEM_ORDER = {"rejected": 0, "held": 1}

LABELS: dict[str, dict[str, Any]] = {
    "ru": {
        "sheet": "Результат",
        "title": "Результат обработки файла {file}",
        "title_refused": "Файл {file} отклонён, из него ничего не применено. Причина: {reason}",
        "title_failed": "Файл {file} не обработан, из него ничего не применено. Причина: {reason}",
        "cut": "Ещё {cut} строк не показаны (в листе Excel не больше 1 048 576 строк); все строки есть в базе "
               "обмена (таблицы import_file, import_reject)",
        "no_rows": "Строк для показа нет: файл отклонён целиком.",
        "zones": {"Europe/Moscow": "МСК"},
        "kinds": {"stock": "остатки", "price": "цены", "catalog": "каталог",
                  "stock (dry run)": "остатки (пробный прогон)", "price (dry run)": "цены (пробный прогон)",
                  "catalog (dry run)": "каталог (пробный прогон)"},
        "summary": {
            "file": "Файл", "kind": "Вид файла", "processed_at": "Обработан ({zone})", "status": "Итог",
            "refused_because": "Причина отказа", "message": "Сообщение", "note": "Примечание",
            "dry_run": "ПРОБНЫЙ ПРОГОН",
            "rows_read": "Строк с данными в файле (без заголовка)",
            "applied": "Применено", "would_apply": "Будет применено", "unchanged": "Без изменений",
            "held": "Отложено (проверьте и пришлите снова или дождитесь решения)", "rejected": "Отклонено",
            "applied_or_unchanged": "Применено или без изменений",
            "not_listed": "Не показаны", "stock_cells_changed": "Изменено ячеек остатков",
            "files": "Файлы", "partial": "Частичная выгрузка (отсутствующие товары не трогаем)",
            "products_created": "Создано товаров", "products_updated": "Обновлено товаров",
            "products_deactivated": "Снято с продажи товаров", "prices_changed": "Изменено цен",
            "stock_rows_changed": "Изменено строк остатков", "rejected_or_held": "Отклонено или отложено",
            "cleaned": "Значений очищено от управляющих символов",
        },
        "values": {
            "applied": "применён", "unchanged": "без изменений", "stale": "устарел: не применён",
            "refused": "ОТКЛОНЁН: из файла ничего не применено",
            "refused_prices": "ОТКЛОНЁН: ни одна цена из файла не применена",
            "failed": "НЕ ОБРАБОТАН: импорт не смог завершиться; пришлите файл снова, когда причина устранена",
            "dry run": "пробный прогон", "dry_run_note": "ничего не записано; строки «будет применено» изменятся, "
                                                         "когда файл будет применён",
            "yes": "да", "no": "нет",
        },
        "columns": {
            "row": "Строка", "article": "Артикул", "name": "Наименование", "column": "Колонка",
            "reason": "Причина", "status": "Статус", "onec_code": "Код 1С", "brand": "Бренд", "model": "Модель",
            "ean": "Штрихкод", "size_class": "Габарит", "rrp": "РРЦ", "price_before": "Цена до этого файла",
        },
        "statuses": {
            "would apply": "будет применено", "applied": "применено", "unchanged": "без изменений",
            "held": "отложено", "rejected": "отклонено", "not applied": "не применено",
            "not evaluated": "не проверено",
        },
        # The reasons the imports give, English -> Russian (searched anywhere in a reason): mpsync.reason_labels.
        "phrases": reason_labels.phrases(),
    },
    "en": {
        "sheet": "Result",
        "title": "Result of processing {file}",
        "title_refused": "{file} was refused, nothing from it was applied. Reason: {reason}",
        "title_failed": "{file} could not be processed, nothing from it was applied. Reason: {reason}",
        "cut": "{cut} more rows are not shown (Excel's row limit); see the import ledger "
               "(tables import_file, import_reject)",
        "no_rows": "No rows to show: the file was refused whole.",
        "zones": {"Europe/Moscow": "Moscow time"},
        "kinds": {},
        "summary": {
            "file": "File", "kind": "Kind", "processed_at": "Processed at ({zone})", "status": "Status",
            "refused_because": "Refused because", "message": "Message", "note": "Note", "dry_run": "DRY RUN",
            "rows_read": "Data rows in the file (header not counted)", "applied": "Applied",
            "would_apply": "Would apply", "unchanged": "Unchanged", "held": "Held back (check and re-send)",
            "rejected": "Rejected", "applied_or_unchanged": "Applied or unchanged", "not_listed": "Not listed",
            "stock_cells_changed": "Stock cells changed",
            "files": "Files", "partial": "Partial (absent products left alone)",
            "products_created": "Products created", "products_updated": "Products updated",
            "products_deactivated": "Products marked inactive", "prices_changed": "Prices changed",
            "stock_rows_changed": "Stock rows changed", "rejected_or_held": "Rejected / held",
            "cleaned": "Values cleaned of control characters",
        },
        "values": {
            "refused": "REFUSED - nothing from this file was applied",
            "refused_prices": "REFUSED - no price from this file was applied",
            "failed": "FAILED - the import could not finish; send the file again after the cause is fixed",
            "dry_run_note": "nothing was written; 'would apply' rows will change when the file is applied",
        },
        "columns": {
            "row": "Row", "article": "Article", "name": "Name", "column": "Column", "reason": "Reason",
            "status": "Status", "onec_code": "1C code", "brand": "Brand", "model": "Model", "ean": "EAN",
            "size_class": "Size class", "rrp": "RRP", "price_before": "Price before this file",
        },
        "statuses": {},
        "phrases": [],
    },
}

_STATUS_RE = re.compile(r"^(%s)\b(.*)$" % "|".join(re.escape(k) for k in STATUS_KINDS), re.DOTALL)
# Where one status holds several ("held (ozon): ...; held (yandex): ..."): split before each status word.
_PARTS_RE = re.compile(r"; (?=(?:%s)\b)" % "|".join(re.escape(k) for k in STATUS_KINDS))


def language(value: Any) -> str:
    """A configured language, checked (settings.py reports a bad one with the key's name)."""
    lang = str(value or DEFAULT_LANGUAGE).strip().lower()
    if lang not in LANGUAGES:
        raise ValueError(f"must be one of {LANGUAGES}, got {value!r}")
    return lang


def timezone(value: Any) -> str:
    """A configured time zone's IANA name, checked (settings.py reports a bad one with the key's name)."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    name = str(value or DEFAULT_TIMEZONE).strip()
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"must be an IANA time zone name such as {DEFAULT_TIMEZONE!r} or 'UTC', "
                         f"got {value!r}") from None
    return name


def zone_text(zone: str, lang: str) -> str:
    """How the file names its time zone: «МСК» for Moscow, else the zone's own name (`Asia/Yekaterinburg`)."""
    return LABELS[lang]["zones"].get(zone, zone)


def labels(lang: str) -> dict[str, Any]:
    return LABELS[lang]


def status_kind(status: str) -> str:
    """`held (ozon): +40% ...` -> `held`; a status no kind knows (a Russian one written as is) -> ""."""
    m = _STATUS_RE.match(status or "")
    return m.group(1) if m else ""


def problem_rank(status: str) -> int:
    """Where a row goes in the file: rejected rows (0), held rows (1), everything else (2)."""
    return PROBLEM_ORDER.get(status_kind(status), 2)


@lru_cache(maxsize=4096)      # ~110 patterns a call; a result file repeats few distinct reasons over many rows
def reason_text(reason: str, lang: str) -> str:
    """A reason from the imports in the file's language: the known phrases translated, the rest kept."""
    for pattern, repl in LABELS[lang]["phrases"]:
        reason = re.sub(pattern, repl, reason)
    return reason


def status_text(status: str, lang: str) -> str:
    """An internal row status (`applied`, `held: price is zero`, `rejected (ozon): ...`) as staff read it."""
    parts = _PARTS_RE.split(status)
    if len(parts) > 1:
        return "; ".join(status_text(p, lang) for p in parts)
    m = _STATUS_RE.match(status or "")
    if not m:
        return status
    head = LABELS[lang]["statuses"].get(m.group(1), m.group(1))
    return head + reason_text(m.group(2), lang)


def column_text(key: str, lang: str) -> str:
    return LABELS[lang]["columns"].get(key, key)


def summary_label(key: str, lang: str, zone: str = DEFAULT_TIMEZONE) -> str:
    return LABELS[lang]["summary"].get(key, key).replace("{zone}", zone_text(zone, lang))


def value_text(value: Any, lang: str) -> Any:
    """A summary value: a known word (a file status, yes/no) translated, a reason's phrases translated."""
    if not isinstance(value, str):
        return value
    known = LABELS[lang]["values"].get(value)
    if known is not None:
        return known
    return reason_text(value, lang)


def kind_text(kind: str, lang: str) -> str:
    return LABELS[lang]["kinds"].get(kind, kind)
