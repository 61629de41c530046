"""Every reason a staff member can read in a result file (a rejected or held row, a refused file), in Russian.

The parsers, guards and refusal rules give their reasons in English (the logs and the ledger keep them so);
mpsync.result_labels translates them for the file with these patterns, applied in order anywhere in a reason
(specific ones before the general ones they contain). Each has a code and an English example as the code
that makes it writes it: tests/test_reason_labels.py translates every example, and finds every reason the
code under plugins/mpsync/onec and plugins/mpsync/imports can give, so a new reason without a Russian text
fails there. A part that comes from a library (an exception's message) stays as it is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

# The fields a reason names (values.py's `what`, value_limits' columns), as staff call them.
FIELDS = {"old price": "старая цена", "old_price": "старая цена", "price": "цена", "quantity": "количество",
          "RRP": "РРЦ", "rrp": "РРЦ", "article": "артикул", "name": "наименование", "brand": "бренд",
          "model": "модель", "group": "группа", "1C code": "код 1С", "EAN": "штрихкод"}
_FIELD = "(?:%s)" % "|".join(re.escape(f) for f in sorted(FIELDS, key=len, reverse=True))
_LIST = r"(?:[a-z]+ )?"                  # a marketplace's price list before a price field: `ozon price`


def _field(text: str) -> str:
    """`price` -> `цена`, `ozon old_price` -> `старая цена (ozon)`."""
    head, _, tail = text.rpartition(" ") if text not in FIELDS and " " in text else ("", "", text)
    if head and f"{head} {tail}" in FIELDS:
        return FIELDS[f"{head} {tail}"]
    if head.endswith("old"):
        head, tail = head[:-3].strip(), "old " + tail
    return FIELDS.get(tail, tail) + (f" ({head})" if head else "")


def _with_field(template: str) -> Callable[[re.Match], str]:
    """A replacement whose group 1 is a field name: `{field}` in `template`, the other groups as \\2..."""
    def repl(m: re.Match) -> str:
        out = template.replace("{field}", _field(m.group(1)))
        return re.sub(r"\\(\d)", lambda g: m.group(int(g.group(1))) or "", out)
    return repl


@dataclass(frozen=True)
class Reason:
    code: str
    pattern: str
    ru: str | Callable[[re.Match], str]
    example: str                          # as the code writes it; the test translates it


R = Reason
REASONS: list[Reason] = [
    # --- rows: the article ---------------------------------------------------------------------------------
    R("unknown_article_sql", r"unknown article \(no such product in the catalog\)",
      "неизвестный артикул (такого товара нет в каталоге)",
      "rejected: unknown article (no such product in the catalog)"),
    R("unknown_article", r"unknown article: no such product in the catalog",
      "неизвестный артикул: такого товара нет в каталоге", "unknown article: no such product in the catalog"),
    R("unknown_article_short", r"unknown article", "неизвестный артикул", "unknown article"),
    R("duplicate_article", r"duplicate article \(also in row\(s\) ([^)]*)\)",
      r"артикул повторяется (также в строках \1)", "duplicate article (also in row(s) 9, 12)"),
    R("duplicate_article_first", r"duplicate article \(first at row (\d+)\); not applied",
      r"артикул повторяется (впервые в строке \1); не применено", "duplicate article (first at row 4); not applied"),
    R("quantities_without_article", r"quantities without an article", "количество без артикула",
      "quantities without an article"),
    R("price_without_article", r"price without an article", "цена без артикула", "price without an article"),
    R("row_without_article", r"row without an article", "строка без артикула", "row without an article"),
    R("goods_without_article", r"goods item ('[^']*') has no article", r"у товара \1 нет артикула",
      "goods item '6f1c-22' has no article"),
    R("article_many_goods", r"article is used by (\d+) different goods items \(([^)]*)\); none applied",
      r"артикул у \1 разных товаров (\2); ни один не применён",
      "article is used by 2 different goods items (6f1c-22, 9a0b-11); none applied"),
    R("offer_without_goods", r"offer ('[^']*') matches no goods item \(not in this exchange, nor imported before\) "
                             r"and carries no article",
      r"предложение \1 не относится ни к одному товару (ни в этом обмене, ни в прежних) и не содержит артикула",
      "offer '6f1c-22#1' matches no goods item (not in this exchange, nor imported before) and carries no article"),
    R("new_product_without_name", r"new product without a name: not created",
      "новый товар без наименования: не создан", "new product without a name: not created"),
    # --- rows: prices (the guards of imports/price/stage.py, in SQL) -----------------------------------------
    R("price_zero", r"price is zero", "цена равна нулю", "held: price is zero"),
    R("price_below_floor", r"price ([\d.]+) is below the floor ([\d.]+)", r"цена \1 ниже минимальной \2",
      "held: price 0.50 is below the floor 1"),
    R("price_change", r"([+-]?\d+)% vs the current price ([\d.]+) \(allowed ±(\d+)%\)",
      r"\1% к текущей цене \2 (допустимо ±\3%)", "held: -90% vs the current price 1000.00 (allowed ±50%)"),
    R("no_current_price", r"no current price", "нет текущей цены", "no current price"),
    R("price_empty", r"price is empty", "цена не указана", "price is empty"),
    R("cml_price_variants", r"characteristics of the article have different prices ([^;]*); not applied",
      r"у характеристик товара разные цены \1; не применено",
      "price: characteristics of the article have different prices 100.00, 120.00; not applied"),
    R("cml_price_type", r"price type ('[^']*') \(commerceml\.(\w+)\) is not among the file's price types (.*): "
                        r"these prices are not applied",
      r"типа цен \1 (commerceml.\2) нет среди типов цен файла \3: эти цены не применены",
      "price type 'Розничная' (commerceml.price_type) is not among the file's price types 'Оптовая': "
      "these prices are not applied"),
    # --- rows: values --------------------------------------------------------------------------------------
    R("field_not_number", rf"\b({_LIST}{_FIELD}) is not a number", _with_field("{field} не число"),
      "price is not a number: 'abc'"),
    R("not_number", r"\bnot a number\b", "не число", "not a number: 'abc'"),
    R("negative", rf"\bnegative ({_FIELD}) (-?[\d.e+]+)", _with_field(r"{field} отрицательное: \2"),
      "negative quantity -3"),
    R("too_large_db", rf"\b({_LIST}{_FIELD}) (\S+) is too large for the database \(numeric\((\d+), (\d+)\)"
                      r"((?:: at most [\d.]+)?)\)",
      _with_field(r"{field} \2 слишком велико для базы (numeric(\3, \4)\5)"),
      "quantity 1e+20 is too large for the database (numeric(14, 3): at most 99999999999.999)"),
    R("at_most", r"\(numeric\((\d+), (\d+)\): at most ([\d.]+)\)", r"(numeric(\1, \2): не больше \3)",
      "quantity 1e+20 is too large for the database (numeric(14, 3): at most 99999999999.999)"),
    R("quantity_too_large", r"quantity (\S+) is too large \(the most is (\S+)\)",
      r"количество \1 слишком велико (не больше \2)", "quantity 100000000000 is too large (the most is 99999999999)"),
    R("too_long", rf"\b({_FIELD}) has (\d+) characters, more than the (\d+) allowed \(parse_limits\.(\w+)\)",
      _with_field(r"{field}: \2 символов, больше допустимых \3 (parse_limits.\4)"),
      "article has 300 characters, more than the 200 allowed (parse_limits.max_article_chars)"),
    R("onec_code_not_whole", r"1C code is not a whole number", "код 1С не целое число",
      "1C code is not a whole number: 12.5"),
    R("onec_code_digits", r"1C code (\S+) is longer than (\d+) digits", r"код 1С \1 длиннее \2 цифр",
      "1C code 123456789012 is longer than 11 digits"),
    R("onec_code_chars", r"1C code (.+) is longer than (\d+) characters", r"код 1С \1 длиннее \2 символов",
      "1C code АБВ-123456789 is longer than 11 characters"),
    R("ean_not_whole", r"EAN is not a whole number", "штрихкод не целое число", "EAN is not a whole number: 4.6e12"),
    R("ean_digits_only", r"EAN must be digits only", "штрихкод должен состоять только из цифр",
      "EAN must be digits only: '46x0'"),
    R("ean_length", r"EAN must have 8, 12 or 13 digits, got (\d+)", r"в штрихкоде должно быть 8, 12 или 13 цифр, "
                                                                     r"а не \1", "EAN must have 8, 12 or 13 digits, got 5: 46001"),
    R("ean_check_digit", r"EAN (\d+) has a wrong check digit \(expected (\d+)\)",
      r"в штрихкоде \1 неверная контрольная цифра (должна быть \2)",
      "EAN 4600000000001 has a wrong check digit (expected 8)"),
    R("other_fields_applied", r"; other fields applied", "; остальные поля применены",
      "EAN must be digits only: '46x0'; other fields applied"),
    R("field_left_unchanged", r"; field left unchanged", "; поле не изменено",
      "RRP is not a number: 'x'; field left unchanged"),
    R("empty", r"(^|: )empty$", r"\1пусто", "rejected: empty"),
    R("cleaned_group", r"\bgroup (\S+)(?=: removed)", r"группа \1", "group 6f1c: removed 1 control/non-character(s) "
                                                                     "(U+0007)"),
    R("cleaned", r": removed (\d+) control/non-character\(s\) \(", r": удалено управляющих или недопустимых "
                                                                   r"символов: \1 (", "Наименование: removed 2 control/non-character(s) (U+0007)"),
    R("cut_last_row", r"the file does not end with a line break: its last row may be cut short \(e\.g\. a number "
                      r"missing digits\), so it is not applied",
      "файл не заканчивается переводом строки: последняя строка могла быть обрезана (например, у числа не "
      "хватает цифр), поэтому она не применена",
      "the file does not end with a line break: its last row may be cut short (e.g. a number missing digits), "
      "so it is not applied"),
    R("row_fields", r"row has (\d+) field\(s\), expected (\d+) \(truncated or shifted row\)",
      r"в строке \1 полей, ожидалось \2 (строка обрезана или сдвинута)",
      "row has 3 field(s), expected 4 (truncated or shifted row)"),
    # --- rows: CommerceML stock -----------------------------------------------------------------------------
    R("cml_partial_characteristics", r"partial file lists characteristics of this article: their sum is not the "
                                     r"article's stock; stock not applied \(a full exchange will apply it\)",
      "в частичной выгрузке есть характеристики этого товара: их сумма не остаток товара; остаток не применён "
      "(его применит полная выгрузка)",
      "partial file lists characteristics of this article: their sum is not the article's stock; stock not "
      "applied (a full exchange will apply it)"),
    R("cml_negative_stock", r"negative stock at (.+); stock not applied",
      r"отрицательный остаток на складе \1; остаток не применён", "negative stock at 'Склад 1' (-2); stock not applied"),
    R("cml_total_only", r"(\d+) offers give only a total <Количество> without warehouses, and "
                        r"commerceml\.default_warehouse is not set: their stock is not applied",
      r"в \1 предложениях только общее <Количество> без складов, а commerceml.default_warehouse не задан: их "
      r"остатки не применены",
      "3 offers give only a total <Количество> without warehouses, and commerceml.default_warehouse is not set: "
      "their stock is not applied"),
    R("cml_unmapped_warehouse", r"1C warehouse ('[^']*') \(Ид ([^)]*)\) is not mapped in commerceml\.warehouses: "
                                r"its stock \((\d+) offers\) is not applied",
      r"склад 1С \1 (Ид \2) не сопоставлен в commerceml.warehouses: его остатки (предложений: \3) не применены",
      "1C warehouse 'Склад Тверь' (Ид 77) is not mapped in commerceml.warehouses: its stock (5 offers) is not "
      "applied"),
    # --- whole files: the data ------------------------------------------------------------------------------
    R("no_known_articles", r"no known articles among (\d+) rows \((\d+) rejected\)",
      r"ни одного известного артикула среди \1 строк (отклонено: \2)", "no known articles among 3 rows (3 rejected)"),
    R("coverage", r"only (\d+) known articles vs (\d+) in the previous import \(below the configured share "
                  r"(\d+)%\): truncated file\?",
      r"только \1 известных артикулов против \2 в прошлом файле (меньше допустимой доли \3%): файл обрезан?",
      "only 3 known articles vs 36 in the previous import (below the configured share 50%): truncated file?"),
    R("no_usable_prices", r"no usable price rows among (\d+) rows read \((\d+) rejected\)",
      r"ни одной годной строки цен среди \1 прочитанных (отклонено: \2)",
      "no usable price rows among 5 rows read (5 rejected)"),
    R("no_stock_rows", r"no stock rows found", "не найдено ни одной строки остатков", "no stock rows found"),
    R("no_rows", r"no (?:[a-z]+ )*rows found", "не найдено ни одной годной строки", "no price rows found"),
    R("first_reject", r" \((\d+) rejected(?: row\(s\))?, first: ", r" (отклонено строк: \1, первая: ",
      "no stock rows found (2 rejected row(s), first: x.xlsx: row 7, column B (article 'A-1'): not a number: 'x')"),
    # a rejected row named inside a refusal (onec.model.Reject's text): `x.csv: row 7, column B (article 'A')`
    R("reject_column", r"(?<=: )row (\d+), column ", r"строка \1, колонка ", "x.xlsx: row 7, column B: empty"),
    R("reject_row", r"(?<=: )row (\d+)(?=:| \()", r"строка \1", "x.xlsx: row 7: price without an article"),
    R("reject_article", r" \(article ('[^']*')\): ", r" (артикул \1): ", "x.xlsx: row 7 (article 'A-1'): empty"),
    R("all_zero", r"no quantity in any of (\d+) article row\(s\): refusing a file that would set all stock to zero",
      r"ни в одной из \1 строк нет количества: такой файл обнулил бы все остатки",
      "no quantity in any of 4 article row(s): refusing a file that would set all stock to zero"),
    R("catalog_shrink", r"a full catalog without (\d+) of (\d+) active products would switch off more than (\d+)% of "
                        r"the catalog \(truncated export\?\); nothing applied",
      r"полная выгрузка каталога без \1 из \2 активных товаров сняла бы с продажи больше \3% каталога (выгрузка "
      r"обрезана?); ничего не применено",
      "Nomenclature.xlsx: a full catalog without 30 of 36 active products would switch off more than 20% of the "
      "catalog (truncated export?); nothing applied"),
    R("columns_after_article", r"the table has (\d+) column\(s\) after the article; the configuration expects (\d+) "
                               r"warehouse column\(s\)",
      r"в таблице \1 колонок после артикула, а по настройкам нужно \2 колонок складов",
      "the table has 2 column(s) after the article; the configuration expects 3 warehouse column(s)"),
    R("no_header_scan", r"no [a-z ]+ header in the first (\d+) rows: expected columns",
      r"в первых \1 строках нет заголовка таблицы; ожидались колонки",
      "no price table header in the first 30 rows: expected columns 'артикул', 'текущая цена'"),
    R("no_header_lacks", r"no [a-z ]+ header: row (\d+) lacks column\(s\)",
      r"нет заголовка таблицы: в строке \1 не хватает колонок", "no price table header: row 3 lacks column(s) 'артикул'"),
    R("sheet_range", r"sheet has (\d+) rows but its range ends at row (\d+)",
      r"в листе \1 строк, но его диапазон кончается на строке \2 (файл повреждён?)",
      "sheet has 40 rows but its range ends at row 10"),
    R("no_cml_data", r"no CommerceML goods \(([^)]*)\) or offers \(([^)]*)\) found",
      r"в файле CommerceML нет товаров (\1) и предложений (\2)",
      "no CommerceML goods (Каталог/Товары/Товар) or offers (ПакетПредложений/Предложения/Предложение) found"),
    # --- whole files: the container -------------------------------------------------------------------------
    R("sheet_empty", r"the sheet is empty", "лист пуст", "the sheet is empty"),
    R("no_text", r"the file has no text", "в файле нет текста", "the file has no text"),
    R("zero_bytes", r"the file is empty \(0 bytes\)", "файл пуст (0 байт)", "the file is empty (0 bytes)"),
    R("empty_file", r"^empty file$", "пустой файл", "empty file"),
    R("xml_not_sheet", r"this is an XML file \(CommerceML\?\), not a spreadsheet",
      "это XML-файл (CommerceML?), а не таблица", "this is an XML file (CommerceML?), not a spreadsheet"),
    R("not_cml", r"not CommerceML XML: ", "не XML CommerceML: ", "not CommerceML XML: Ostatki.xlsx"),
    R("cannot_read_as", r"cannot read as (\S+) \(truncated or corrupt\?\)", r"не читается как \1 (файл обрезан "
                                                                              r"или повреждён?)",
      "cannot read as .xlsx (truncated or corrupt?): BadZipFile: boom"),
    R("cannot_read_csv", r"cannot read as CSV", "не читается как CSV", "cannot read as CSV (cp1251, ';'): boom"),
    R("cannot_read", r"^cannot read: ", "не читается: ", "cannot read: boom"),
    R("not_valid_text", r"not valid (\S+) text: ", r"текст не в кодировке \1: ", "not valid utf-8 text: boom"),
    R("broken_csv", r"broken CSV: ", "CSV повреждён: ", "broken CSV: boom"),
    R("not_well_formed_truncated", r"not well-formed XML \(truncated or damaged\?\): ",
      "XML с ошибками (файл обрезан или повреждён?): ", "not well-formed XML (truncated or damaged?): boom"),
    R("not_well_formed", r"not well-formed XML: ", "XML с ошибками: ", "not well-formed XML: boom"),
    R("doctype_orders", r"a DOCTYPE/entity declaration is not allowed in an orders document",
      "объявление DOCTYPE/сущностей в документе заказов не допускается",
      "a DOCTYPE/entity declaration is not allowed in an orders document"),
    R("root_element", r"root element is <([^>]*)>, expected <КоммерческаяИнформация>",
      r"корневой элемент <\1>, а должен быть <КоммерческаяИнформация>",
      "root element is <html>, expected <КоммерческаяИнформация>"),
    R("document_no_id", r"Документ #(\d+) has neither Ид nor Номер: cannot tell which order it is",
      r"у Документа №\1 нет ни Ид, ни Номера: не понять, какой это заказ",
      "Документ #2 has neither Ид nor Номер: cannot tell which order it is"),
    R("not_zip", r"not a readable zip archive", "не читаемый zip-архив", "not a readable zip archive: boom"),
    R("zip_entries", r"zip has (\d+) entries, at most (\d+) are read", r"в zip-архиве \1 файлов, читается не "
                                                                          r"больше \2", "zip has 20 entries, at most 10 are read"),
    R("zip_too_big", r"unzipped content exceeds (\d+) bytes", r"распакованное содержимое больше \1 байт",
      "unzipped content exceeds 1000 bytes"),
    R("zip_entry", r"zip entry ('[^']*') unreadable: ", r"файл \1 в zip-архиве не читается: ",
      "zip entry 'orders.xml' unreadable: boom"),
    R("zip_no_xml", r"zip holds no \.xml file", "в zip-архиве нет файла .xml", "zip holds no .xml file"),
    R("too_many_bytes", r"^(\d+) bytes, more than the (\d+) accepted", r"\1 байт, больше допустимых \2",
      "5000 bytes, more than the 1000 accepted"),
    # --- whole files: the parse limits (parse_limits.*) -----------------------------------------------------
    R("xlsx_parts", r"the \.xlsx has (\d+) parts \(limit parse_limits\.max_members = (\d+)\)",
      r"в .xlsx \1 частей (предел parse_limits.max_members = \2)",
      "the .xlsx has 20000 parts (limit parse_limits.max_members = 10000)"),
    R("xlsx_unpacked", r"the \.xlsx unpacks to (\d+) MB \(limit parse_limits\.max_unpacked_mb = (\d+)\)",
      r".xlsx распаковывается в \1 МБ (предел parse_limits.max_unpacked_mb = \2)",
      "the .xlsx unpacks to 3000 MB (limit parse_limits.max_unpacked_mb = 2048)"),
    R("zip_bomb", r"part (\S+) unpacks (\d+) times its packed size \(limit parse_limits\.max_ratio = (\d+)\): a zip "
                  r"bomb\?", r"часть \1 распаковывается в \2 раз больше своего размера (предел "
                             r"parse_limits.max_ratio = \3): zip-бомба?",
      "part xl/worksheets/sheet1.xml unpacks 5000 times its packed size (limit parse_limits.max_ratio = 1000): "
      "a zip bomb?"),
    R("dtd", r"part (\S+) declares a DTD \(<!DOCTYPE>\): Excel and 1C never write one",
      r"часть \1 объявляет DTD (<!DOCTYPE>): Excel и 1С так никогда не пишут",
      "part xl/worksheets/sheet1.xml declares a DTD (<!DOCTYPE>): Excel and 1C never write one"),
    R("no_xml_element", r"part (\S+) has no XML element in its first (\d+) KB",
      r"в первых \2 КБ части \1 нет ни одного XML-элемента",
      "part xl/worksheets/sheet1.xml has no XML element in its first 64 KB"),
    R("limit_rows", r"has (\d+) rows \(limit parse_limits\.max_rows = (\d+)\)",
      r"— строк: \1 (предел parse_limits.max_rows = \2)",
      "the sheet's declared range \"A1:C3000000\" has 3000000 rows (limit parse_limits.max_rows = 2000000)"),
    R("limit_columns", r"has (\d+) columns \(limit parse_limits\.max_columns = (\d+)\)",
      r"— колонок: \1 (предел parse_limits.max_columns = \2)",
      "the sheet's declared range \"A1:ZZZ9\" has 18278 columns (limit parse_limits.max_columns = 16384)"),
    R("limit_cells", r"has (\d+) cells \(limit parse_limits\.max_cells = (\d+)\)",
      r"— ячеек: \1 (предел parse_limits.max_cells = \2)",
      "the sheet's declared range \"A1:Z9000000\" has 234000000 cells (limit parse_limits.max_cells = 50000000)"),
    R("declared_range", r"the sheet's declared range ", "объявленный диапазон листа ",
      "the sheet's declared range \"A1:C3000000\" has 3000000 rows (limit parse_limits.max_rows = 2000000)"),
    R("limit_seconds", r"reading it took longer than (\d+) s \(parse_limits\.seconds\)",
      r"чтение файла заняло больше \1 с (parse_limits.seconds)",
      "reading it took longer than 300 s (parse_limits.seconds)"),
    R("reader_memory", r"the reader died on it \((\w+)\): the file asks for more memory than the (\d+) MB allowed "
                       r"\(parse_limits\.memory_mb\), or is corrupt",
      r"чтение файла прервалось (\1): файлу нужно больше памяти, чем допустимые \2 МБ "
      r"(parse_limits.memory_mb), или он повреждён",
      "the reader died on it (SIGKILL): the file asks for more memory than the 2048 MB allowed "
      "(parse_limits.memory_mb), or is corrupt"),
    R("reader_exit", r"the reader died on it \(exit code (\d+)\)", r"чтение файла прервалось (код выхода \1)",
      "the reader died on it (exit code 1)"),
    R("reader_no_answer", r"the reader gave no usable answer \(", "чтение файла не дало годного ответа (",
      "the reader gave no usable answer (boom)"),
    # --- the import itself ----------------------------------------------------------------------------------
    R("given_up", r"import failed (\d+) time\(s\), given up: ", r"импорт не удался (попыток: \1), попытки "
                                                                 r"прекращены: ",
      "import failed 3 time(s), given up: the earlier attempts ended without finishing (the process died, or a "
      "later step kept failing)"),
    R("attempts_unfinished", r"the earlier attempts ended without finishing \(the process died, or a later step "
                             r"kept failing\)",
      "прежние попытки не завершились (процесс прервался или следующий шаг снова и снова падал)",
      "the earlier attempts ended without finishing (the process died, or a later step kept failing)"),
    # --- a file's message (the ledger's, in the summary: «Сообщение», «Примечание») ----------------------------
    R("superseded", r"superseded by newer ", "заменён более новым файлом ", "superseded by newer Ostatki_MP_2.xlsx"),
    R("same_content", r"same content as (.+) \(import (\d+)\), already applied",
      r"то же содержимое, что у \1 (импорт \2), уже применено", "same content as Ostatki_MP_1.xlsx (import 4), "
                                                                 "already applied"),
    R("older", r"older than the already applied (.+) \((\S+) < (\S+)\): recorded, not applied",
      r"старше уже применённого \1 (\2 < \3): записан, не применён",
      "older than the already applied Ostatki_MP_2.xlsx (2026-12-05T10:00:00+03:00 < 2026-12-05T11:00:00+03:00): "
      "recorded, not applied"),
    R("part_of_exchange", r"part of the exchange recorded as import (\d+)", r"часть обмена, записанного как импорт \1",
      "part of the exchange recorded as import 12"),
    R("price_counts", r"(\d+) rows applied, (\d+) unchanged, (\d+) held, (\d+) rejected",
      r"применено строк: \1, без изменений: \2, отложено: \3, отклонено: \4",
      "3 rows applied, 32 unchanged, 1 held, 0 rejected"),
    R("catalog_counts", r"(\d+) created, (\d+) updated, (\d+) deactivated, (\d+) prices, (\d+) stock rows; (\d+) "
                        r"rejected/held", r"создано: \1, обновлено: \2, снято с продажи: \3, цен: \4, строк "
                                          r"остатков: \5; отклонено или отложено: \6",
      "5 created, 2 updated, 0 deactivated, 7 prices, 7 stock rows; 1 rejected/held; partial file"),
    R("partial_file", r"; partial file$", "; частичная выгрузка", "1 rejected/held; partial file"),
    # --- the parts of a status or summary the imports add ---------------------------------------------------
    R("not_listed", r"^(\d+) applied or unchanged rows are not listed \(more than (\d+)\); every rejected row is",
      r"\1 применённых строк и строк без изменений не показаны (их больше \2); все отклонённые показаны",
      "200001 applied or unchanged rows are not listed (more than 200000); every rejected row is"),
    R("known_rows", r"^(\d+) known rows \(more than (\d+)\)", r"\1 известных строк (больше \2)",
      "300000 known rows (more than 200000)"),
    R("new_product", r"^: new product$", ": новый товар", "applied: new product"),
    R("inactive_full", r"^: marked inactive \(not in this full file\)", ": снят с продажи (нет в полной выгрузке)",
      "applied: marked inactive (not in this full file)"),
    R("inactive_mark", r"^: marked inactive \(1C deletion mark\)", ": снят с продажи (пометка удаления в 1С)",
      "applied: marked inactive (1C deletion mark)"),
    R("cleaned_status", r"^, cleaned: ", ", очищено: ", "applied, cleaned: Наименование: removed 1 "
                                                         "control/non-character(s) (U+0007)"),
    R("catalog_price", r"^: price ([\d.]+|None): ", r": цена \1: ", "held: price 10.00: price is zero"),
    R("price_prefix", r"^price: ", "цена: ", "price: not a number: 'x'"),
    R("column", r"\(column ([^)]*)\)", r"(колонка \1)", "not a number: 'x' (column C)"),
]


def phrases() -> list[tuple[str, str | Callable[[re.Match], str]]]:
    """(pattern, Russian) in the order result_labels applies them."""
    return [(r.pattern, r.ru) for r in REASONS]
