"""The watcher: turns a store's warning event log into pushes, and emits expiry on time.

Every server process runs one :class:`Watcher` (a daemon thread; store calls are blocking and never
run on an event loop). It

- starts at the store's latest event (history is not replayed; SSE clients that want it resume
  with ``Last-Event-ID`` from the store itself),
- polls ``store.live_version("warnings")`` every ``poll_seconds`` (0.25 s) and, when it changed,
  reads the new events with ``store.live_events("warnings", after=last)``; :meth:`Watcher.poke` wakes
  it at once (``POST /warnings`` in the same process pokes after its write),
- hands each public event (CAP status Actual: Exercise, Test, System and Draft are kept off public
  views) to the subscribers' callbacks (the SSE hub) and, when this process is the MQTT leader, to
  the MQTT publisher,
- runs the expiry scheduler: sleeps until ``next_expiry(store)`` (read again after every write),
  then calls ``expire_due(store)``, whose ``expired`` events come back through the log like any
  other. ``expire_due`` is idempotent: every process may call it.

The MQTT leader rule: with several server processes on one host, each runs a watcher but only the
one holding an exclusive ``flock`` on ``$CIM_LOCK_DIR`` (default: the temp directory)
``/cim-warnings-<hash of the store URL>.lock`` publishes to MQTT; the others retry the lock every
few seconds and take over when the leader exits (the kernel frees the lock with its process).
Servers on several hosts sharing one PostGIS store: set ``CIM_MQTT_URL`` on one host only. The thread,
the lock and the subscribers are cim/events/ (poller.py, leadership.py, subscribers.py), shared with
the release announcements.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from cim.events.leadership import Leadership
from cim.events.poller import RETRY_SECONDS, Poller
from cim.store.live import LiveEvent
from cim.warnings.ingest import expire_due, next_expiry

LOGGER = logging.getLogger(__name__)

LAYER = "warnings"
POLL_SECONDS = 0.25
#: page size of ``live_events`` reads
PAGE = 1000

Subscriber = Callable[[LiveEvent], None]


class Publisher(Protocol):
    def start(self) -> None: ...
    def stop(self) -> None: ...
    def publish(self, event: LiveEvent) -> bool: ...



def is_public(event: LiveEvent) -> bool:
    """Whether an event may be pushed to public subscribers: CAP status Actual (or none given)."""
    status = (event.feature.get("properties") or {}).get("status")
    return status in (None, "", "Actual")


def latest_seq(store: Any, layer: str = LAYER) -> int:
    """The seq of the store's latest event of ``layer`` (0: none)."""
    last = 0
    while True:
        page = store.live_events(layer, after=last, limit=PAGE)
        if not page:
            return last
        last = page[-1].seq
        if len(page) < PAGE:
            return last


def _default_scheduler() -> tuple[Callable[..., Any], Callable[..., Any]]:
    return expire_due, next_expiry


class Watcher(Poller):
    """See the module's doc. ``start()``/``stop()``; thread-safe ``subscribe``/``poke`` (cim/events/poller.py)."""

    label = "warnings watcher"

    def __init__(
        self,
        store: Any,
        publisher: Publisher | None = None,
        *,
        layer: str = LAYER,
        poll_seconds: float = POLL_SECONDS,
        leadership: Leadership | None = None,
        scheduler: tuple[Callable[..., Any], Callable[..., Any]] | None | bool = True,
    ) -> None:
        super().__init__(
            store, publisher,
            leadership if leadership is not None else (
                Leadership(getattr(store, "url", repr(store))) if publisher is not None else None
            ),
            poll_seconds, RETRY_SECONDS,
        )  # fmt: skip
        self.layer = layer
        self._scheduler = _default_scheduler() if scheduler is True else (scheduler or None)
        #: seq of the last event handed on
        self.last_seq = 0
        self._version: Any = object()
        self._next_expiry: datetime | None = None
        self._expiry_known = False

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call ``callback(event)`` (on the watcher's thread; it must not block) for each public
        event from now on; returns the function that unsubscribes."""
        return super().subscribe(callback)

    # -- the poller's hooks ----------------------------------------------------------------------
    def initialise(self) -> None:
        self.last_seq = latest_seq(self.store, self.layer)

    def after_error(self) -> None:
        self._version = object()  # read everything again next time
        self._expiry_known = False

    def next_timeout(self) -> float:
        """The poll interval, or less when a warning expires sooner."""
        timeout = self.poll_seconds
        if self._next_expiry is not None:
            until = (self._next_expiry - datetime.now(UTC)).total_seconds()
            timeout = min(timeout, max(until, 0.0))
        return timeout

    def step(self) -> list[LiveEvent]:
        """One round: the MQTT lock, the log, the expiry scheduler; the events handed on."""
        self.try_leadership()
        events = self._read_log()
        if self._scheduler is not None:
            expire_due, next_expiry = self._scheduler
            if not self._expiry_known:
                self._next_expiry = _utc(next_expiry(self.store))
                self._expiry_known = True
            if self._next_expiry is not None and self._next_expiry <= datetime.now(UTC):
                expire_due(self.store)
                self._expiry_known = False
                events += self._read_log()  # the expired events, at once
                self._next_expiry = _utc(next_expiry(self.store))
                self._expiry_known = True
        return events

    def _read_log(self) -> list[LiveEvent]:
        version = self.store.live_version(self.layer)
        if version == self._version:
            return []
        handed: list[LiveEvent] = []
        while True:
            page = self.store.live_events(self.layer, after=self.last_seq, limit=PAGE)
            for event in page:
                self._hand_on(event)
                self.last_seq = event.seq
                handed.append(event)
            if len(page) < PAGE:
                break
        self._version = version
        self._expiry_known = False  # a write may have changed the next expiry
        return handed

    def _hand_on(self, event: LiveEvent) -> None:
        if not is_public(event):
            return
        self.hand_on(event, event.seq)
        if self.publisher is not None and self.is_leader:
            self.publisher.publish(event)


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


__all__ = ["LAYER", "PAGE", "POLL_SECONDS", "RETRY_SECONDS", "Publisher", "Watcher", "is_public", "latest_seq"]
