"""Render one feed: a Jinja2 template per marketplace, fed a lazy stream of offers, written as it renders.

Nothing holds the whole feed: the template's `{% for o in offers %}` pulls offers from the server-side
cursor, Jinja yields text pieces, and they are joined in small batches, encoded and written. Peak memory
is the cursor's fetch batch plus one write batch, whatever the product count.

The content hash ignores the value of `yml_catalog@date`, so a feed whose data did not change hashes the
same on every run and is not republished.
"""

from __future__ import annotations

import hashlib
from itertools import islice
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import jinja2
import psycopg
from jinja2.compiler import CodeGenerator

try:    # markupsafe's C escaper (str -> escaped str); its pure-Python twin where the C one is not built
    from markupsafe._speedups import _escape_inner
except ImportError:  # pragma: no cover
    from markupsafe._native import _escape_inner

from mpsync import TEMPLATES_DIR
from mpsync.categories import category_tree
from mpsync.feeds.config import Category, FeedsConfig, FeedSettings
from mpsync.feeds.offers import OFFER_FIELDS, OfferCounts, iter_offers

# Template pieces joined per write (about 200 offers); larger batches gain nothing measurable.
WRITE_BATCH_PIECES = 4000


class FeedRenderError(RuntimeError):
    """The template is broken or failed on a value; the message names the template and line."""


@dataclass
class RenderResult:
    path: Path
    date: str
    size: int
    sha256: str
    counts: OfferCounts


def _escape_to_text(value) -> str:
    """Jinja's autoescape, returning plain text instead of a Markup object: the output goes straight to
    a file, and building a Markup (a Python-level __new__) per value was a third of the render time."""
    if type(value) is str:
        return _escape_inner(value)
    if hasattr(value, "__html__"):      # already safe (a {% set %} block, |safe)
        return value.__html__()
    return _escape_inner(str(value))


class _JoinedOutput(CodeGenerator):
    """Compiles each run of template output into ONE `yield` of the joined pieces (stock Jinja yields
    every piece on its own: ~30 generator steps per offer instead of ~6). Same text out."""

    def visit_Output(self, node, frame) -> None:
        if frame.buffer is not None or frame.require_output_check:
            return super().visit_Output(node, frame)
        frame.buffer = "_feed_out"
        self.writeline("_feed_out = []")
        try:
            super().visit_Output(node, frame)
        finally:
            frame.buffer = None
        self.writeline('yield "".join(_feed_out)')


class _FeedTemplate(jinja2.Template):
    @classmethod
    def _from_namespace(cls, environment, namespace, globals):
        namespace["escape"] = _escape_to_text      # what the compiled output code calls for {{ value }}
        return super()._from_namespace(environment, namespace, globals)


class FeedEnvironment(jinja2.Environment):
    code_generator_class = _JoinedOutput
    template_class = _FeedTemplate


def environment(templates_dir: Path | None = None) -> jinja2.Environment:
    env = FeedEnvironment(
        loader=jinja2.FileSystemLoader(str(templates_dir or TEMPLATES_DIR)),
        autoescape=True,                    # every value is XML-escaped: & < > " '
        undefined=jinja2.StrictUndefined,   # a misspelt field fails the render instead of writing nothing
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    # `{% for outlet, instock in outlets|zip(stock) %}`: pairs without Jinja's per-offer `loop` object.
    env.filters["zip"] = zip
    return env


def feed_categories(conn: psycopg.Connection, cfg: FeedsConfig) -> list[Category]:
    """The config's categories (the overrides and the default) followed by the tree imported from 1C."""
    return list(cfg.categories) + [Category(cid, name, parent) for cid, parent, name in category_tree(conn)]


def feed_date(cfg: FeedsConfig, now: datetime | None = None) -> str:
    """RFC 3339 with the zone offset, to the minute, as the marketplaces show it: 2026-11-22T10:00+03:00."""
    now = (now or datetime.now(cfg.tz())).astimezone(cfg.tz())
    return now.isoformat(timespec="minutes")


class _HashingWriter:
    """Writes encoded text and hashes it, with the catalogue date's value blanked out of the hash."""

    def __init__(self, fh, date_attr: str):
        self.fh = fh
        self.sha = hashlib.sha256()
        self.size = 0
        self._date_attr = date_attr     # 'date="2026-11-22T10:00+03:00"' until seen once

    def write(self, text: str) -> None:
        data = text.encode("utf-8")
        self.fh.write(data)
        self.size += len(data)
        if self._date_attr and self._date_attr in text:
            text = text.replace(self._date_attr, 'date=""', 1)
            self._date_attr = ""
            data = text.encode("utf-8")
        self.sha.update(data)


def render_feed(conn: psycopg.Connection, cfg: FeedsConfig, fs: FeedSettings, path: Path,
                now: datetime | None = None, env: jinja2.Environment | None = None) -> RenderResult:
    """Render feed `fs` into `path` (overwritten) from one pass over the exchange database."""
    env = env or environment()
    try:
        template = env.get_template(fs.template)
    except jinja2.TemplateSyntaxError as exc:
        raise FeedRenderError(f"template {exc.filename or fs.template} line {exc.lineno}: {exc.message}") from exc
    except jinja2.TemplateNotFound as exc:
        raise FeedRenderError(f"template not found: {exc.name} in {env.loader.searchpath}") from exc  # type: ignore[union-attr]
    check_offers_loop(env, fs.template)
    date = feed_date(cfg, now)
    counts = OfferCounts()
    context = {
        "date": date, "shop": cfg.shop, "currency": cfg.currency, "categories": feed_categories(conn, cfg),
        "feed": fs, "outlets": fs.outlets, "vat": fs.vat, "shipment_options": fs.shipment_options,
        "offers": iter_offers(conn, cfg, fs, counts),
    }
    with open(path, "wb", buffering=1 << 20) as fh:
        out = _HashingWriter(fh, f'date="{date}"')
        pieces = template.generate(context)
        try:
            while batch := list(islice(pieces, WRITE_BATCH_PIECES)):    # gathered in C, no per-piece Python
                out.write("".join(batch))
        except (jinja2.TemplateError, TypeError, AttributeError) as exc:
            line = _template_line(exc, fs.template)
            raise FeedRenderError(f"template {fs.template}{line}: {type(exc).__name__}: {exc}") from exc
        finally:
            context["offers"].close()   # release the server-side cursor even when rendering failed
    return RenderResult(path, date, out.size, out.sha.hexdigest(), counts)


def check_offers_loop(env: jinja2.Environment, name: str) -> None:
    """The template's offers loop must unpack exactly the Offer fields, in order: a renamed or swapped
    name would otherwise publish, say, the old price as the price."""
    source = env.loader.get_source(env, name)[0]  # type: ignore[union-attr]
    loops = [n for n in env.parse(source).find_all(jinja2.nodes.For)
             if isinstance(n.iter, jinja2.nodes.Name) and n.iter.name == "offers"]
    expected = ", ".join(OFFER_FIELDS)
    if len(loops) != 1:
        raise FeedRenderError(f"template {name}: needs exactly one `{{% for {expected} in offers %}}` loop")
    target = loops[0].target
    names = [t.name for t in target.items] if isinstance(target, jinja2.nodes.Tuple) else [getattr(target, "name", "?")]
    if tuple(names) != OFFER_FIELDS:
        raise FeedRenderError(f"template {name} line {loops[0].lineno}: the offers loop must read "
                              f"`{{% for {expected} in offers %}}`, found `for {', '.join(names)} in offers`")


def _template_line(exc: BaseException, name: str) -> str:
    tb = exc.__traceback__
    line = ""
    while tb is not None:
        if tb.tb_frame.f_code.co_filename.endswith(name):
            line = f" line {tb.tb_lineno}"
        tb = tb.tb_next
    return line
