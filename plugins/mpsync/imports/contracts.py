"""What passes between an import's tasks (prepare -> fragments -> finish), and the one refusal.

Frozen dataclasses with to_dict()/from_dict(): the DAG's tasks hand them over as plain JSON through XCom.
(Airflow 3 can carry dataclasses itself, but only for classes listed in `core.allowed_deserialization_classes`
of every deployment, and it flattens nested dataclasses to dicts on the way back: plain JSON is simpler and
shows as readable JSON in the UI.)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any


class ImportRefused(Exception):
    """The file was refused whole, for its content: nothing of it was applied, and retrying cannot change
    that (airflow_glue.failures fails the task without retry). The message is the one-line cause for
    operators; `reason` is what the staff's result file says."""

    kind = "import"

    def __init__(self, message: str, reason: str = "", *, given_up: bool = False):
        super().__init__(message)
        self.reason = reason or message
        # Given up after imports.max_attempts (give_up.py): its result file and move are done already.
        self.given_up = given_up


class StockFileRefused(ImportRefused):
    kind = "stock"


class PriceFileRefused(ImportRefused):
    kind = "price"


class CatalogFileRefused(ImportRefused):
    kind = "catalog"


REFUSED = {c.kind: c for c in (StockFileRefused, PriceFileRefused, CatalogFileRefused)}


def _known(cls, d: dict) -> dict:
    """The keys of `d` that are fields of `cls` (a newer or older task's extra keys are ignored)."""
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in d.items() if k in names}


@dataclass(frozen=True)
class Fragment:
    """Staged rows [first_seq, last_seq] of one file, applied in one transaction by one mapped task."""
    import_file_id: int
    first_seq: int
    last_seq: int
    label: str                      # "rows 2–2001 of Ostatki_MP.xlsx": the mapped task's name in the UI
    valid_from: str | None = None   # when the file's values became true (1C's report time, else the FTP time)
    fresh_possible: bool = True     # stock: False when every row was in the last applied report

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: "dict | Fragment") -> "Fragment":
        return d if isinstance(d, Fragment) else cls(**_known(cls, d))


@dataclass(frozen=True)
class SourceFile:
    """A file on the FTP as prepare found it (dropfolder.DropFile's fields, JSON-safe)."""
    path: str
    name: str
    size: int = 0
    modified_at: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class PreparedFile:
    """What prepare did with the file it took: its ledger id and the fragments to apply (none when there is
    nothing to apply: same content, stale, dry run)."""
    kind: str
    import_file_id: int | None
    name: str
    path: str
    fragments: tuple[Fragment, ...] = ()
    # Files of the same run that are archived with this one: older ones it superseded, or the other files
    # of a CommerceML exchange.
    companions: tuple[SourceFile, ...] = ()
    items: int = 0
    rejected: int = 0
    note: str = ""                  # why nothing is applied (same content, stale), for the result file
    dry_run: bool = False
    result_file: str | None = None  # a dry run's result, written by prepare
    waiting: tuple[str, ...] = ()   # price: files left for the next runs
    details: dict[str, Any] = field(default_factory=dict)      # the kind's own numbers (JSON-safe)
    # For the staff's result file: the rows of the file's table that hold data (below the header; title,
    # header, blank, group and total rows not counted), and the 1C column headers as written in the file
    # (stock: one per configured warehouse column, "" where the header has no text).
    data_rows: int = 0
    headers: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        d = asdict(self)
        d["fragments"], d["companions"], d["waiting"] = \
            [f.to_dict() for f in self.fragments], [c.to_dict() for c in self.companions], list(self.waiting)
        d["headers"] = list(self.headers)
        return d

    @classmethod
    def from_dict(cls, d: "dict | PreparedFile") -> "PreparedFile":
        if isinstance(d, PreparedFile):
            return d
        d = _known(cls, d)
        return cls(**{**d, "fragments": tuple(Fragment.from_dict(f) for f in d.get("fragments", ())),
                      "companions": tuple(SourceFile(**c) for c in d.get("companions", ())),
                      "waiting": tuple(d.get("waiting", ())), "headers": tuple(d.get("headers", ()))})


@dataclass(frozen=True)
class ImportSummary:
    """How an import ended: the finish task's return value and the catalog_changed event's extra."""
    kind: str
    file: str
    import_file_id: int | None
    status: str                     # the ledger's: applied, unchanged, stale, refused, failed (dry run: "dry run")
    changed: int = 0                # rows written: catalog_changed is announced only when > 0
    items: int = 0
    rejected: int = 0
    result_file: str | None = None  # the staff's result file on the FTP
    checkpoint: str | None = None
    message: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ImportSummary":
        return cls(**_known(cls, d))
