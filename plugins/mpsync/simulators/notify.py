"""Order notifications a marketplace POSTs to the seller: Yandex's API notifications, Ozon's push.

A `Notifier` listens to a simulator's store and, at `deliver()`, POSTs one notification per change to the
seller's receiver (webhook.py) over real HTTP, in the simulator's format (`sim.notification(kind, order, t)`).

What the specs guarantee, and what they do not (an adversary, not a mirror):
- guaranteed: the body's format per type (Yandex ORDER_CREATED `createdAt`, ORDER_STATUS_UPDATED
  `updatedAt`; Ozon TYPE_NEW_POSTING `in_process_at`, TYPE_STATE_CHANGED `changed_state_date`); what the
  receiver must answer; a notification the receiver did not accept (not 200) is sent again.
- NOT guaranteed, so played against the receiver and the sync: delivery at all (`p_lost`: never sent);
  once-only delivery (`p_dup`: sent twice; Yandex documents DUPLICATED_EVENT); promptness (`p_late`: held
  back to the next delivery, after the sync that could have used it); order (each delivery shuffled);
  that the notified time is the list's time (Yandex: the time "may differ"; `jitter`: off by up to that
  many seconds either way). Changes made while the sync pages (the store's churn) are notified at the next
  delivery, i.e. late.
"""

from __future__ import annotations

import http.client
import json
import random
from dataclasses import dataclass
from urllib.parse import urlparse


@dataclass
class NoticeHostility:
    p_lost: float = 0.0
    p_dup: float = 0.0
    p_late: float = 0.0
    jitter: float = 0.0           # seconds


class Notifier:
    def __init__(self, sim, url: str, hostility: NoticeHostility | None = None, seed: int = 0):
        self.sim, self.url, self.h = sim, urlparse(url), hostility or NoticeHostility()
        self.rng = random.Random(seed)          # its own: notifying never changes the simulated world
        self.queue: list[tuple[str, int, float]] = []
        self.held: list[tuple[str, int, float]] = []
        self.sent = self.refused = self.lost = 0
        sim.store.listeners.append(lambda kind, order, t: self.queue.append((kind, order.order_id, t)))

    def deliver(self) -> int:
        """Send what changed since the last delivery (and what was held back); returns the POSTs made."""
        now, self.queue = self.held + self.queue, []
        self.held = []
        self.rng.shuffle(now)
        conn = http.client.HTTPConnection(self.url.hostname, self.url.port, timeout=10)
        posts = 0
        try:
            for item in now:
                r = self.rng.random()
                if r < self.h.p_lost:
                    self.lost += 1
                    continue
                if r < self.h.p_lost + self.h.p_late:
                    self.held.append(item)
                    continue
                kind, oid, t = item
                t += self.rng.uniform(-self.h.jitter, self.h.jitter) if self.h.jitter else 0.0
                body = json.dumps(self.sim.notification(kind, self.sim.store.orders[oid], t)).encode()
                for _ in range(2 if self.rng.random() < self.h.p_dup else 1):
                    posts += 1
                    if self._post(conn, body) != 200:
                        self.refused += 1
                        self.held.append(item)      # sent again at the next delivery
                        break
                    self.sent += 1
        finally:
            conn.close()
        return posts

    def _post(self, conn: http.client.HTTPConnection, body: bytes) -> int:
        conn.request("POST", self.url.path, body, {"Content-Type": "application/json"})
        answer = conn.getresponse()
        answer.read()
        return answer.status
