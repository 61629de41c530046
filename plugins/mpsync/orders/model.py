"""Plain values shared by the engine and the adapters."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

UTC = timezone.utc
CREATED = "created"      # the window filters by creation time (initial sync, creation re-syncs)
MODIFIED = "modified"    # the window filters by modification time (every incremental run)


class OrderSyncError(RuntimeError):
    """A sync step failed; nothing after the last committed window was advanced."""


class ApiError(OrderSyncError):
    """An API call failed for good (after retries) or answered something we cannot trust."""


class ApiRefused(ApiError):
    """The API rejected the request itself (bad parameter, auth): retrying cannot help."""


class TooManyResults(OrderSyncError):
    """The API refuses (or would truncate) a window this large: the engine splits it."""


@dataclass(frozen=True)
class Window:
    """A half-open period [start, end) on one time dimension."""

    start: datetime
    end: datetime

    def __post_init__(self):
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError(f"window bounds must be timezone-aware: {self.start!r}, {self.end!r}")
        if self.end <= self.start:
            raise ValueError(f"empty window [{self.start.isoformat()}, {self.end.isoformat()})")

    @property
    def length(self) -> timedelta:
        return self.end - self.start

    def split(self, precision: timedelta) -> tuple["Window", "Window"]:
        """Two halves, the middle rounded down to the API's time precision."""
        half = self.length / 2
        mid = self.start + (half // precision) * precision if half >= precision else self.start + precision
        if mid <= self.start or mid >= self.end:
            raise TooManyResults(f"window {self} cannot be split below {precision}")
        return Window(self.start, mid), Window(mid, self.end)

    def chunks(self, step: timedelta) -> list["Window"]:
        out, t = [], self.start
        while t < self.end:
            out.append(Window(t, min(t + step, self.end)))
            t += step
        return out

    def __str__(self) -> str:
        return f"[{self.start.isoformat()}, {self.end.isoformat()})"


@dataclass
class Order:
    """One version of one order, as the marketplace answered it."""

    order_id: str
    modified_at: datetime
    status: str | None = None
    created_at: datetime | None = None
    payload: dict[str, Any] = field(default_factory=dict)

    def newer(self, other: "Order | None") -> bool:
        return other is None or self.modified_at >= other.modified_at


@dataclass(frozen=True)
class Read:
    """What one read of a window returned, and whether the adapter can prove it holds the whole window.

    `complete` is a proof, never a hope: one answer that says there is no next page (a single answer is one
    snapshot), or a count the API gives (Taobao). Anything paged without such a proof is `complete=False`
    and the engine proves it (windows.py) before the checkpoint may pass it.
    """

    orders: tuple[Order, ...]
    complete: bool
    more: bool = False       # only the first page was read and the API says there are more

    @property
    def versions(self) -> dict[str, datetime]:
        return {o.order_id: o.modified_at for o in self.orders}


def merge(into: dict[str, Order], orders) -> None:
    """Keep the newest version per order id (a later read of the same version wins: it is no older)."""
    for o in orders:
        if o.newer(into.get(o.order_id)):
            into[o.order_id] = o


def utc(dt: datetime) -> datetime:
    if dt.tzinfo is None:
        raise ValueError(f"naive datetime {dt!r}: marketplace times must carry an offset")
    return dt.astimezone(UTC)


def parse_time(value: str) -> datetime:
    """ISO 8601 with an offset (Z allowed) -> aware UTC datetime."""
    if not isinstance(value, str) or not value:
        raise ApiError(f"expected a timestamp, got {value!r}")
    try:
        return utc(datetime.fromisoformat(value.replace("Z", "+00:00")))
    except ValueError as exc:
        raise ApiError(f"bad timestamp {value!r}: {exc}") from None
