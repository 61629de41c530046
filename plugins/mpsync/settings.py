"""Project settings: one YAML file (include/config/mpsync.yaml, or $MPSYNC_CONFIG), validated on load.

Errors name the offending key so an operator can fix the file from the message alone.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from mpsync import INCLUDE_DIR

DEFAULT_CONFIG = INCLUDE_DIR / "config" / "mpsync.yaml"
MARKETPLACES = ("yandex", "ozon", "megamarket")
# Channels a seller may add: a warehouse may serve them, but no scheme requires one (issue 20).
OPTIONAL_MARKETPLACES = ("wildberries",)
SCHEMES = ("per_marketplace", "common")


class ConfigError(ValueError):
    """The configuration file is invalid; the message names the file and the key."""


class DuplicateKeyError(yaml.constructor.ConstructorError):
    """A mapping gives one key twice; `line` and `first_line` are 1-based."""

    def __init__(self, key: Any, line: int, first_line: int, node: yaml.Node):
        self.key, self.line, self.first_line = key, line, first_line
        super().__init__(None, None, f"key {key!r} given twice (first at line {first_line})", node.start_mark)


class UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping: plain YAML silently keeps the last one, so a
    pasted-twice section overrides the first without anyone noticing."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":   # `<<: *base` then overriding a key is meant
                    continue
                key = self.construct_object(key_node, deep=deep)
                try:
                    first = seen.setdefault(key, key_node.start_mark.line + 1)
                except TypeError:        # an unhashable key: SafeConstructor refuses it with its own error
                    continue
                if first != key_node.start_mark.line + 1:
                    raise DuplicateKeyError(key, key_node.start_mark.line + 1, first, key_node)
        return super().construct_mapping(node, deep=deep)


def non_negative_number(value: Any, where: str) -> Decimal:
    """A config value that must be a finite number >= 0 (quantities, prices, shares)."""
    try:
        d = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise ConfigError(f"{where} must be a number, got {value!r}") from None
    if not d.is_finite() or d < 0:
        raise ConfigError(f"{where} must be a number >= 0, got {value!r}")
    return d


@dataclass(frozen=True)
class Drop:
    kind: str
    folders: tuple[str, ...]
    pattern: str


@dataclass(frozen=True)
class Warehouse:
    code: str
    name: str
    marketplaces: tuple[str, ...]


@dataclass(frozen=True)
class StockImportSettings:
    min_fragment_rows: int = 10000      # a mapped task costs Airflow a second or two; 10,000 rows apply in ~1 s
    max_fragments: int = 200
    min_coverage_share: float = 0.5


@dataclass(frozen=True)
class Settings:
    source: Path
    ftp_conn_id: str
    stable_seconds: int
    poke_seconds: int
    timeout_seconds: int
    drops: dict[str, Drop]
    processed_folder: str
    results_folder: str
    scheme: str
    stock_columns: tuple[str, ...]
    warehouses: tuple[Warehouse, ...]
    stock_import: StockImportSettings
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def onec_timezone(self):
        """The zone of 1C's wall-clock times in report headers (onec.timezone, default Europe/Moscow)."""
        from zoneinfo import ZoneInfo

        return ZoneInfo(str((self.raw.get("onec") or {}).get("timezone", "Europe/Moscow")))

    @property
    def results_language(self) -> str:
        """The language of the staff's result files (results.language: ru, the default, or en)."""
        from mpsync.result_labels import language

        return language((self.raw.get("results") or {}).get("language"))

    @property
    def results_timezone(self) -> str:
        """The zone of the times in the staff's result files (results.timezone, default Europe/Moscow)."""
        from mpsync.result_labels import timezone

        return timezone((self.raw.get("results") or {}).get("timezone"))

    def warehouse(self, code: str) -> Warehouse:
        for w in self.warehouses:
            if w.code == code:
                return w
        raise KeyError(code)

    def warehouses_for(self, marketplace: str) -> tuple[str, ...]:
        """Warehouse codes whose stock is published to a marketplace (per the configured scheme)."""
        return tuple(w.code for w in self.warehouses if marketplace in w.marketplaces)

    def section(self, name: str) -> dict[str, Any]:
        """A raw top-level section for later features (feeds, orders, sync); {} when absent."""
        value = self.raw.get(name) or {}
        if not isinstance(value, dict):
            raise ConfigError(f"{self.source}: '{name}' must be a mapping")
        return value


def _req(d: dict, key: str, where: str, source: Path, kind: type | tuple = object):
    if not isinstance(d, dict) or key not in d:
        raise ConfigError(f"{source}: missing '{where}{key}'")
    value = d[key]
    if not isinstance(value, kind):
        raise ConfigError(f"{source}: '{where}{key}' must be {getattr(kind, '__name__', kind)}, got {value!r}")
    return value


def _check_results(raw: dict[str, Any], source: Path) -> None:
    from mpsync.result_labels import language, timezone

    section = raw.get("results") or {}
    if not isinstance(section, dict):
        raise ConfigError(f"{source}: 'results' must be a mapping")
    try:
        language(section.get("language"))
    except ValueError as exc:
        raise ConfigError(f"{source}: 'results.language' {exc}") from None
    try:
        timezone(section.get("timezone"))
    except ValueError as exc:
        raise ConfigError(f"{source}: 'results.timezone' {exc}") from None


def parse_settings(raw: dict[str, Any], source: Path) -> Settings:
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: top level must be a mapping")
    onec = _req(raw, "onec", "", source, dict)
    drops_raw = _req(onec, "drops", "onec.", source, dict)
    drops = {}
    for kind, d in drops_raw.items():
        folders = _req(d, "folders", f"onec.drops.{kind}.", source, list)
        if not folders:
            raise ConfigError(f"{source}: 'onec.drops.{kind}.folders' is empty")
        drops[kind] = Drop(kind, tuple(str(f) for f in folders), str(_req(d, "pattern", f"onec.drops.{kind}.", source)))
    wh = _req(raw, "warehouses", "", source, dict)
    scheme = _req(wh, "scheme", "warehouses.", source, str)
    if scheme not in SCHEMES:
        raise ConfigError(f"{source}: 'warehouses.scheme' must be one of {SCHEMES}, got {scheme!r}")
    warehouses = []
    for i, w in enumerate(_req(wh, "list", "warehouses.", source, list)):
        code = str(_req(w, "code", f"warehouses.list[{i}].", source))
        mps = tuple(_req(w, "marketplaces", f"warehouses.list[{i}].", source, list))
        bad = [m for m in mps if m not in MARKETPLACES + OPTIONAL_MARKETPLACES]
        if bad:
            raise ConfigError(f"{source}: 'warehouses.list[{i}].marketplaces' has unknown {bad}; "
                              f"known: {MARKETPLACES + OPTIONAL_MARKETPLACES}")
        warehouses.append(Warehouse(code, str(w.get("name", code)), mps))
    codes = [w.code for w in warehouses]
    if len(set(codes)) != len(codes):
        raise ConfigError(f"{source}: 'warehouses.list' has duplicate codes {codes}")
    columns = tuple(str(c) for c in _req(wh, "stock_columns", "warehouses.", source, list))
    unknown = [c for c in columns if c not in codes]
    if unknown or not columns:
        raise ConfigError(f"{source}: 'warehouses.stock_columns' must name listed warehouses; unknown {unknown}")
    if scheme == "common":
        if len(warehouses) != 1 or not set(MARKETPLACES) <= set(warehouses[0].marketplaces):
            raise ConfigError(f"{source}: scheme 'common' needs exactly one warehouse serving {MARKETPLACES}")
    else:
        for m in MARKETPLACES:
            if sum(m in w.marketplaces for w in warehouses) == 0:
                raise ConfigError(f"{source}: scheme 'per_marketplace' but no warehouse serves '{m}'")
    _check_results(raw, source)
    si = raw.get("stock_import") or {}
    stock_import = StockImportSettings(
        min_fragment_rows=int(si.get("min_fragment_rows", StockImportSettings.min_fragment_rows)),
        max_fragments=int(si.get("max_fragments", 200)),
        min_coverage_share=float(si.get("min_coverage_share", 0.5)),
    )
    if not 1 <= stock_import.max_fragments <= 1000:
        raise ConfigError(f"{source}: 'stock_import.max_fragments' must be 1..1000 (Airflow's max_map_length is 1024)")
    if not 0 <= stock_import.min_coverage_share <= 1:
        raise ConfigError(f"{source}: 'stock_import.min_coverage_share' must be within 0..1")
    return Settings(
        source=source,
        ftp_conn_id=str(onec.get("ftp_conn_id", "onec_ftp")),
        stable_seconds=int(onec.get("stable_seconds", 20)),
        poke_seconds=int(onec.get("poke_seconds", 60)),
        timeout_seconds=int(onec.get("timeout_seconds", 3300)),
        drops=drops,
        processed_folder=str(onec.get("processed_folder", "/1c/processed")),
        results_folder=str(onec.get("results_folder", "/1c/results")),
        scheme=scheme,
        stock_columns=columns,
        warehouses=tuple(warehouses),
        stock_import=stock_import,
        raw=raw,
    )


def load_settings(path: str | Path | None = None) -> Settings:
    source = Path(path or os.environ.get("MPSYNC_CONFIG") or DEFAULT_CONFIG)
    try:
        raw = yaml.load(source.read_text(encoding="utf-8"), Loader=UniqueKeyLoader)
    except FileNotFoundError:
        raise ConfigError(f"configuration file not found: {source}") from None
    except DuplicateKeyError as exc:
        raise ConfigError(f"{source}, line {exc.line}: key '{exc.key}' is given twice in one mapping (first at "
                          f"line {exc.first_line}); YAML would silently keep only the last") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {exc}") from None
    return parse_settings(raw, source)


@lru_cache(maxsize=8)
def _cached(path: str) -> Settings:
    return load_settings(path)


def settings() -> Settings:
    """The active settings, cached per config path (tests switch MPSYNC_CONFIG)."""
    return _cached(str(os.environ.get("MPSYNC_CONFIG") or DEFAULT_CONFIG))
