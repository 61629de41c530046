"""Limits on what an untrusted 1C file may make a parse do, and on the values it may hand to the database.

Section `parse_limits` of mpsync.yaml (every key optional; the defaults below). Two kinds:
- resources: memory and time a parse may use (onec.bounded), and the size of an .xlsx before any reader
  opens it (onec.archive_guard): unpacked bytes, compression ratio, declared rows/columns/cells;
- values, from the database's column types: text length, numeric range and precision (onec.value_limits).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from decimal import Decimal

from mpsync.settings import ConfigError, settings

# numeric(14, 3) (stock) and numeric(14, 2) (prices): what the column can hold, exactly.
QUANTITY_MAX_MILLI = 10 ** 14 - 1            # 99,999,999,999.999 in thousandths
PRICE_MAX = Decimal("999999999999.99")


@dataclass(frozen=True)
class ParseLimits:
    isolate: bool = True                # parse in a child process (False: in-process, e.g. for a debugger)
    memory_mb: int = 4096               # address space the parse may add to what the process already has
    seconds: int = 900                  # wall time of one parse
    max_unpacked_mb: int = 3072         # every member of an .xlsx, unpacked
    max_ratio: int = 200                # unpacked / packed size of any one member of an .xlsx
    max_members: int = 10_000
    max_rows: int = 2_000_000           # a sheet's declared dimension (the 1M-row report fits twice)
    max_columns: int = 2_000
    max_cells: int = 200_000_000
    max_article_chars: int = 255        # an article longer than this is no SKU a marketplace takes
    max_text_chars: int = 4_000         # names, brands, models, groups
    max_csv_line_kb: int = 1024         # a CSV line (Python's csv stops at 128 KB per field by default)

    @classmethod
    def from_settings(cls, cfg) -> "ParseLimits":
        raw = cfg.section("parse_limits") if cfg is not None else {}
        known = {f.name: f for f in fields(cls)}
        values = {}
        for key, value in raw.items():
            if key not in known:
                raise ConfigError(f"{cfg.source}: 'parse_limits.{key}' is not a limit; known: {sorted(known)}")
            want = bool if known[key].type in ("bool", bool) else int
            if not isinstance(value, want) or (want is int and (isinstance(value, bool) or value <= 0)):
                raise ConfigError(f"{cfg.source}: 'parse_limits.{key}' must be a positive {want.__name__}")
            values[key] = value
        return cls(**values)


def configured() -> ParseLimits:
    """The limits of the current configuration; the defaults when there is none (inspect on a laptop)."""
    try:
        return ParseLimits.from_settings(settings())
    except FileNotFoundError:
        return ParseLimits()
