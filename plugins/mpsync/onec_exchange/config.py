"""The `onec_exchange:` section: 1C's site exchange for orders (docs/onec-exchange.md). Errors name the key."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mpsync.settings import ConfigError, Settings, settings

SECTION = "onec_exchange"
SUBSCRIBER = "onec_orders"          # the `sync` table's subscriber column for what 1C confirmed
OBJECT_TYPE = "onec_order"          # one object per marketplace order: '<marketplace>:<account>:<order id>'
VERSIONS = ("2.08", "2.10")
ENCODINGS = {"utf-8": "UTF-8", "windows-1251": "windows-1251", "cp1251": "windows-1251"}
# How 1C's document names the buyer when the config does not (Контрагент/Наименование).
BUYER_NAMES = {"ozon": "Ozon", "yandex": "Яндекс Маркет", "megamarket": "Мегамаркет", "taobao": "Taobao",
               "site": "Интернет-магазин"}


FTP_MODES = ("copy", "files")


@dataclass(frozen=True)
class FtpCopy:
    """The documents as files on the FTP (`onec_ftp`), one file per exchange.

    mode `copy`: every HTTP `query` document is also written (1C's HTTP exchange drives it);
    mode `files`: 1C only loads files: the `onec_orders_files` DAG writes the pending orders itself.
    """

    enabled: bool = False
    folder: str = "/1c/orders"
    mode: str = "copy"

    @property
    def copies_queries(self) -> bool:
        return self.enabled and self.mode == "copy"

    @property
    def writes_files(self) -> bool:
        return self.enabled and self.mode == "files"


@dataclass(frozen=True)
class ExchangeSettings:
    conn_id: str = "onec_exchange"        # Airflow Connection: login/password 1C uses (HTTP basic auth)
    schema_version: str = "2.10"          # ВерсияСхемы of the documents (2.08 or 2.10)
    encoding: str = "windows-1251"        # of the documents and the text answers (XML declaration says it)
    zip: bool = True                      # init answers zip=yes: 1C may send its file as a zip archive
    file_limit: int = 10 * 1024 * 1024    # init answers file_limit=: 1C sends larger files in parts
    max_upload_bytes: int = 100 * 1024 * 1024   # 1C's file (after unzip): larger is refused
    query_limit: int = 5000               # orders in one query's document; the rest go in the next exchange
    max_order_age_days: int | None = 90   # orders created before this are never offered to 1C (None: all)
    claim_lease_seconds: float = 3600     # an unconfirmed query's orders are offered again after this at most
    session_hours: float = 12             # a cookie older than this is refused (1C logs in again)
    max_unconfirmed: int = 10             # queries of the same version never confirmed before it is parked
    retry_base_seconds: float = 0         # backoff after an unconfirmed query (0: offered at the next query)
    retry_max_seconds: float = 3600
    scan_lookback_seconds: float = 120
    full_scan_hours: float = 24
    currency: str = "RUB"
    buyers: dict[str, str] = field(default_factory=dict)      # marketplace -> Контрагент name
    ftp: FtpCopy = field(default_factory=FtpCopy)

    @property
    def xml_encoding(self) -> str:
        return ENCODINGS[self.encoding]

    def buyer_name(self, marketplace: str) -> str:
        return self.buyers.get(marketplace) or BUYER_NAMES.get(marketplace, marketplace)


def _positive(sec: dict, key: str, default: Any, where: str, kind=int) -> Any:
    value = sec.get(key, default)
    try:
        value = kind(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}.{key}' must be a number, got {sec.get(key)!r}") from None
    if value < 0 or (value == 0 and key not in ("retry_base_seconds",)):
        raise ConfigError(f"{where}.{key}' must be > 0, got {value!r}")
    return value


def exchange_settings(base: Settings | None = None) -> ExchangeSettings:
    base = base or settings()
    sec = base.section(SECTION)
    where = f"{base.source}: '{SECTION}"
    d = ExchangeSettings()
    version = str(sec.get("schema_version", d.schema_version))
    if version not in VERSIONS:
        raise ConfigError(f"{where}.schema_version' must be one of {VERSIONS}, got {version!r}")
    encoding = str(sec.get("encoding", d.encoding)).lower()
    if encoding not in ENCODINGS:
        raise ConfigError(f"{where}.encoding' must be one of {sorted(ENCODINGS)}, got {encoding!r}")
    ftp = sec.get("ftp") or {}
    buyers = sec.get("buyers") or {}
    if not isinstance(ftp, dict) or not isinstance(buyers, dict):
        raise ConfigError(f"{where}.ftp' and '{SECTION}.buyers' must be mappings")
    mode = str(ftp.get("mode", "copy"))
    if mode not in FTP_MODES:
        raise ConfigError(f"{where}.ftp.mode' must be one of {FTP_MODES}, got {mode!r}")
    age = sec.get("max_order_age_days", d.max_order_age_days)
    return ExchangeSettings(
        conn_id=str(sec.get("conn_id", d.conn_id)),
        schema_version=version,
        encoding="windows-1251" if encoding == "cp1251" else encoding,
        zip=bool(sec.get("zip", d.zip)),
        file_limit=_positive(sec, "file_limit", d.file_limit, where),
        max_upload_bytes=_positive(sec, "max_upload_bytes", d.max_upload_bytes, where),
        query_limit=_positive(sec, "query_limit", d.query_limit, where),
        max_order_age_days=None if age is None else _positive(sec, "max_order_age_days", age, where),
        claim_lease_seconds=_positive(sec, "claim_lease_seconds", d.claim_lease_seconds, where, float),
        session_hours=_positive(sec, "session_hours", d.session_hours, where, float),
        max_unconfirmed=_positive(sec, "max_unconfirmed", d.max_unconfirmed, where),
        retry_base_seconds=_positive(sec, "retry_base_seconds", d.retry_base_seconds, where, float),
        retry_max_seconds=_positive(sec, "retry_max_seconds", d.retry_max_seconds, where, float),
        scan_lookback_seconds=_positive(sec, "scan_lookback_seconds", d.scan_lookback_seconds, where, float),
        full_scan_hours=_positive(sec, "full_scan_hours", d.full_scan_hours, where, float),
        currency=str(sec.get("currency", d.currency)),
        buyers={str(k): str(v) for k, v in buyers.items()},
        ftp=FtpCopy(enabled=bool(ftp.get("enabled", False)), folder=str(ftp.get("folder", "/1c/orders")), mode=mode),
    )
