"""Every reason a staff member can read in a result file has a Russian text (mpsync.reason_labels).

Two checks: each known reason code translates its own example with no English left; and every reason the
code under plugins/mpsync/onec and plugins/mpsync/imports can give (found in the source: FileRefused, Reject,
BadValue, a collector's reject(), a ledger message, the refusal rules and the helpers that word a reason; the
price guards' statuses from their SQL) is translated by some code. A new reason without a Russian text fails the second.
Parts from a library (an exception's message) are placeholders here and stay as they are in the file.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from mpsync import reason_labels, result_labels
from mpsync.imports.price import stage as price_stage

PLUGINS = Path(__file__).resolve().parents[1] / "plugins" / "mpsync"
ROOTS = [PLUGINS / "onec", PLUGINS / "imports"]
# Sample text for a placeholder, by its expression (a field name must be translated too); others: 7.
SAMPLES = {"what": "price", "column": "price", "mp": "ozon", "field": "name"}
# ... where a module words it otherwise: a signal's name, a format, a BadValue's reason (covered on its own).
SAMPLES_IN = {"bounded.py": {"what": "SIGKILL"}, "reader.py": {"what": ".xls"},
              "values.py": {"most": ": at most 999999999999.99"}, "price.py": {"exc": "price is not a number: 'x'"}}
LIBRARY = "boom"                      # an exception's message: a library's text, kept as it is
# Functions whose returned text is a reason (value_limits' *_problem return (column, reason)).
HELPERS = {"_death", "_too_long", "cleaned_note"}
HELPER_SUFFIXES = ("_refusal", "_problem")
# Words that are no English to translate: formats, config keys, XML, units the Russian text keeps.
# A file's or a part's name, an exception's class, a signal, an encoding: names, not words.
ALLOWED = re.compile(r"parse_limits\.\w+|commerceml\.\w+|numeric|\b(?:CSV|XML|xlsx|zip|DTD|DOCTYPE|Excel|"
                     r"CommerceML|Ид|U|SIG[A-Z]+|utf-\d+|cp\d+)\b|<[^>]*>|'[^']*'|\"[^\"]*\"|\S*/\S*|"
                     r"[\w-]+\.(?:xlsx|xls|xml|csv|txt|zip)\b|\.\w+\b|\b[A-Z][a-z]+[A-Z]\w*\b")


def _name(call: ast.Call) -> str | None:
    f = call.func
    return f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else None


def _reason_arg(call: ast.Call) -> ast.AST | None:
    name, kw = _name(call), {k.arg: k.value for k in call.keywords}
    if name == "FileRefused":
        return call.args[1] if len(call.args) > 1 else kw.get("reason")
    if name == "BadValue":
        return call.args[0] if call.args else None
    if name == "Reject":
        return call.args[4] if len(call.args) > 4 else kw.get("reason")
    if name == "reject" and isinstance(call.func, ast.Attribute):      # StockCollector.reject(row, col, art, why)
        return call.args[3] if len(call.args) > 3 else None
    if name == "update" and "message" in kw:                           # ledger.update(...): the summary's message
        return kw["message"]
    return None


def _sample(node: ast.AST, samples: dict[str, str]) -> str | None:
    """A str expression as a sample reason; None when it is not built from literals (str(exc), a variable)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        out = ""
        for v in node.values:
            if isinstance(v, ast.Constant):
                out += v.value
                continue
            src = ast.unparse(v.value)
            spec = ast.unparse(v.format_spec) if v.format_spec else ""
            text = samples.get(src, LIBRARY if src in ("exc", "str(exc)") else "7")
            out += repr(text) if v.conversion == ord("r") else text + ("%" if "%" in spec else "")
        return out
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _sample(node.left, samples), _sample(node.right, samples)
        return None if left is None else left + (right if right is not None else "7")
    return None


def _assigned(fn: ast.AST, name: str) -> list[ast.AST]:
    return [a.value for a in ast.walk(fn) if isinstance(a, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == name for t in a.targets)]


def reasons_in(source: str, where: str, module: str) -> set[tuple[str, str]]:
    """(where:line, sample reason) for every reason worded in one module's source."""
    found: set[tuple[str, str]] = set()
    tree = ast.parse(source)
    samples = {**SAMPLES, **SAMPLES_IN.get(module, {})}
    for fn in [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]:
        nodes: list[ast.AST] = []
        if fn.name in HELPERS or fn.name.endswith(HELPER_SUFFIXES):
            for r in ast.walk(fn):
                if isinstance(r, ast.Return) and r.value is not None:
                    nodes.append(r.value.elts[-1] if isinstance(r.value, ast.Tuple) else r.value)
        for call in [n for n in ast.walk(fn) if isinstance(n, ast.Call)]:
            arg = _reason_arg(call)
            nodes += _assigned(fn, arg.id) if isinstance(arg, ast.Name) else [arg] if arg else []
        for node in nodes:
            text = _sample(node, samples)
            if text is not None and text.strip() not in ("", "7", LIBRARY):
                found.add((f"{where}:{getattr(node, 'lineno', '?')}", text))
    return found


def reasons_in_source() -> list[tuple[str, str]]:
    """(where, sample reason) for every reason worded in the imports' and parsers' source."""
    found: set[tuple[str, str]] = set()
    for root in ROOTS:
        for path in sorted(root.rglob("*.py")):
            found |= reasons_in(path.read_text(encoding="utf-8"), str(path.relative_to(PLUGINS.parent)), path.name)
    # The price guards' statuses are worded in SQL (imports/price/stage.py): one sample of each.
    sql = price_stage.EVALUATE_SQL
    assert "'held: price is zero'" in sql and "' is below the floor '" in sql and "'%% vs the current price '" in sql
    found |= {("price/stage.py EVALUATE_SQL", s) for s in (
        "rejected: unknown article (no such product in the catalog)", "held: price is zero",
        "held: price 0.50 is below the floor 1", "held: +60% vs the current price 100.00 (allowed ±50%)")}
    return sorted(found)


def _as_staff_read(reason: str) -> str:
    """A reason, or a row status carrying one (`held: ...`), as the staff's file writes it."""
    if result_labels.status_kind(reason):
        return result_labels.status_text(reason, "ru")
    return result_labels.reason_text(reason, "ru")


def english_left(reason: str) -> list[str]:
    """The English words a reason still has in the staff's file (its library parts and samples aside)."""
    text = _as_staff_read(reason)
    text = ALLOWED.sub(" ", text.replace(LIBRARY, " ").replace("ozon", " "))
    return re.findall(r"[A-Za-z]{2,}", text)


SOURCE_REASONS = reasons_in_source()


def test_the_source_scan_finds_the_reasons():
    """The scan itself works: it sees reasons of every kind of site (a broken scan would pass everything)."""
    texts = [t for _, t in SOURCE_REASONS]
    assert len(texts) > 80
    for expected in ("the sheet is empty", "price without an article", "price is empty",
                     "no known articles among 7 rows (7 rejected)",                    # a refusal rule
                     "reading it took longer than 7 s (parse_limits.seconds)",        # a helper's return
                     "the file does not end with a line break"):
        assert any(t.startswith(expected) for t in texts), expected
    assert english_left("a reason nobody wrote a Russian text for") == ["reason", "nobody", "wrote", "Russian",
                                                                        "text", "for"]


def test_a_new_reason_without_a_russian_text_is_caught():
    """What a developer adding a reason would write: found by the scan, and it has English left."""
    source = (
        "def parse(name, n, sheet):\n"
        "    if n > 9:\n"
        "        raise FileRefused(name, f'the sheet has {n} merged header rows, at most 9 are read')\n"
        "    reason = 'a brand new refusal'\n"
        "    raise FileRefused(name, reason)\n")
    found = sorted(reasons_in(source, "new.py", "new.py"))
    assert sorted(t for _, t in found) == ["a brand new refusal",
                                           "the sheet has 7 merged header rows, at most 9 are read"]
    assert all(english_left(t) for _, t in found)


@pytest.mark.parametrize("reason", reason_labels.REASONS, ids=lambda r: r.code)
def test_every_known_reason_code_has_a_russian_text(reason):
    kind = result_labels.status_kind(reason.example)
    own = reason.example[len(kind):] if kind else reason.example          # a status: its reason part
    assert re.compile(reason.pattern).search(own), "the example must be the code's own wording"
    assert english_left(reason.example) == [], _as_staff_read(reason.example)
    assert result_labels.reason_text(reason.example, "en") == reason.example       # English stays English


def test_codes_are_unique():
    codes = [r.code for r in reason_labels.REASONS]
    assert len(codes) == len(set(codes))


@pytest.mark.parametrize("where, reason", SOURCE_REASONS, ids=[w for w, _ in SOURCE_REASONS])
def test_every_reason_the_code_gives_has_a_russian_text(where, reason):
    assert english_left(reason) == [], (f"{where}: {reason!r} reads {_as_staff_read(reason)!r} "
                                        "in a staff's result file: give it a Russian text in mpsync.reason_labels")


@pytest.mark.parametrize("reason, russian", [
    ("price is not a number: 'abc'", "цена не число: 'abc'"),
    ("ozon: price is not a number: 'x'", "ozon: цена не число: 'x'"),
    ("old price is not a number: 'x'", "старая цена не число: 'x'"),
    ("negative quantity -3", "количество отрицательное: -3"),
    ("ozon price 1E+15 is too large for the database (numeric(14, 2): at most 999999999999.99)",
     "цена (ozon) 1E+15 слишком велико для базы (numeric(14, 2): не больше 999999999999.99)"),
    ("no stock rows found (1 rejected row(s), first: x.csv: row 7, column B (article 'A-1'): not a number: 'x')",
     "не найдено ни одной строки остатков (отклонено строк: 1, первая: x.csv: строка 7, колонка B (артикул 'A-1'): "
     "не число: 'x')"),
])
def test_reasons_read_as_staff_write(reason, russian):
    assert result_labels.reason_text(reason, "ru") == russian
