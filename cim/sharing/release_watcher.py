"""The release watcher: sees the store's current release change and announces it (SSE and MQTT).

Every server process runs one :class:`ReleaseWatcher` (a daemon thread; store calls block and never
run on an event loop). It polls ``store.peek_current_number()`` (one readlink for DuckDB; for
PostGIS ``current_number()``, a query at most once a second) every ``poll_seconds`` (0.25 s),
so a ``cim build`` or ``cim releases rollback`` in another process is seen within a fraction of a
second (a second for PostGIS, whose store caches the current release that long). On a change it
makes the announcements (cim/sharing/announce.py):

- the current number rose above every release seen before: ``published`` for each new kept release
  up to it, oldest first (two builds between two polls give two announcements, not one);
- otherwise (a rollback or a roll forward to a kept release): ``current``.

Each goes to the subscribers (this process's SSE hub) and, when this process is the MQTT leader for
the releases of the store (the per-host ``flock`` of cim/events/leadership.py, channel
``releases``), to MQTT: ``{root}/{kind}`` (QoS 1) and, retained, ``{root}/current`` (the current
release's latest announcement, for a department that connects later; ``current`` announcements go
there once). A process that becomes leader publishes the current release's announcement retained
at once (``published``, the same id as before, when it is the newest release), so the retained
message is right after builds made while no server ran. Nothing is published twice for one change:
one process of a host leads; servers on several hosts sharing one PostGIS store set
``CIM_MQTT_URL`` on one host only.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from cim.events.leadership import Leadership
from cim.events.mqtt import QUEUE_SIZE, MqttClient, environment_url
from cim.events.subscribers import Subscribers
from cim.sharing.announce import CURRENT, PUBLISHED, Announcement, announcement

LOGGER = logging.getLogger(__name__)

CHANNEL = "releases"
POLL_SECONDS = 0.25
#: seconds between attempts to become the MQTT leader, and the back-off after a failed store call
RETRY_SECONDS = 2.0


class ReleasePublisher(MqttClient):
    """Publishes release announcements under ``{prefix or cim}/releases``; never blocks."""

    def __init__(self, url: str, queue_size: int = QUEUE_SIZE, client_id: str | None = None) -> None:
        super().__init__(url, CHANNEL, queue_size, client_id)

    @classmethod
    def from_environment(cls) -> ReleasePublisher | None:
        url = environment_url()
        return cls(url) if url else None

    def topic(self, kind: str) -> str:
        return f"{self.broker.root}/{kind}"

    def publish(self, event: Announcement) -> bool:
        """``{root}/{kind}``, and the retained ``{root}/current`` (the same message for ``current``)."""
        what = f"release announcement {event.id}"
        payload = event.json
        if event.kind == CURRENT:
            return self.send(self.topic(CURRENT), payload, retain=True, what=what)
        sent = self.send(self.topic(event.kind), payload, what=what)
        return self.retain(event) and sent

    def retain(self, event: Announcement) -> bool:
        """Make ``event`` the retained message of ``{root}/current``."""
        return self.send(self.topic(CURRENT), event.json, retain=True, what=f"retained release announcement {event.id}")


class ReleaseWatcher:
    """See the module's doc. ``start()``/``stop()``; thread-safe ``subscribe``/``poke``."""

    def __init__(
        self,
        store: Any,
        base_url: str,
        publisher: ReleasePublisher | None = None,
        *,
        poll_seconds: float = POLL_SECONDS,
        leadership: Leadership | None = None,
    ) -> None:
        self.store = store
        self.base = base_url.rstrip("/")
        self.publisher = publisher
        self.poll_seconds = poll_seconds
        self.leadership = leadership if leadership is not None else (
            Leadership(getattr(store, "url", repr(store)), CHANNEL) if publisher is not None else None
        )
        self._subscribers = Subscribers("release watcher")
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: the current release seen last (None: not read yet)
        self.current: int | None = None
        #: the newest release number seen
        self.newest = 0
        self._next_leader_try = 0.0
        self.ready = threading.Event()
        self.errors = 0
        #: announcements made (all kinds), for the curious
        self.announced = 0

    def subscribe(self, callback: Callable[[Announcement], None]) -> Callable[[], None]:
        """Call ``callback(announcement)`` (on the watcher's thread; it must not block) from now on."""
        return self._subscribers.subscribe(callback)

    def poke(self) -> None:
        self._wake.set()

    @property
    def is_leader(self) -> bool:
        return self.leadership is not None and self.leadership.held

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        if self.publisher is not None:
            self.publisher.start()
        try:  # where to start, before the server takes requests: nothing old is announced
            self._read_start()
        except Exception:  # the store is away: the thread tries again
            LOGGER.exception("release watcher: cannot read the store's releases; retrying")
        self._thread = threading.Thread(target=self._run, name="cim-release-watcher", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        if self.publisher is not None:
            self.publisher.stop()
        if self.leadership is not None:
            self.leadership.release()

    def _read_start(self) -> None:
        releases = self.store.releases()
        self.newest = max((r.number for r in releases), default=0)
        self.current = self._current_number()
        self.ready.set()

    def _run(self) -> None:
        while not self.ready.is_set() and not self._stop.is_set():
            try:
                self._read_start()
            except Exception:
                self.errors += 1
                LOGGER.exception("release watcher: cannot read the store's releases; retrying")
                self._stop.wait(RETRY_SECONDS)
        while not self._stop.is_set():
            timeout = self.poll_seconds
            try:
                self.step()
            except Exception:
                self.errors += 1
                LOGGER.exception("release watcher: a step failed; retrying in %.0f s", RETRY_SECONDS)
                timeout = RETRY_SECONDS
            self._wake.wait(timeout)
            self._wake.clear()

    # -- one round -------------------------------------------------------------------------------
    def _current_number(self) -> int:
        return int(self.store.peek_current_number())

    def _layers(self, number: int) -> list[Any]:
        """The layers of release ``number``: the current release's as the server reads them when it
        is current (opening it here readies it for the next request: on DuckDB the first read of a
        release costs about a second), else as published."""
        if self._current_number() == number:
            layers = self.store.layers()
            if self.store.current_number() == number:
                return layers
        return self.store.release_layers(number)

    def step(self) -> list[Announcement]:
        """One round: the MQTT lock, the current release; the announcements made."""
        self._try_leadership()
        number = self._current_number()
        if number == self.current:
            return []
        previous = self.current
        releases = self.store.releases()
        made: list[Announcement] = []
        if number > self.newest:
            for release in releases:
                if self.newest < release.number <= number:
                    made.append(announcement(PUBLISHED, release, self._layers(release.number), previous, self.base))
                    previous = release.number
        if not made:
            release = next((r for r in releases if r.number == number), None)
            if release is None:  # gone between the two reads: next round
                return []
            made.append(announcement(CURRENT, release, self._layers(number), previous, self.base,
                                     at=datetime.now(UTC)))  # fmt: skip
        self.current = number
        self.newest = max(self.newest, number, *(r.number for r in releases))
        for event in made:
            self._hand_on(event)
        return made

    def _hand_on(self, event: Announcement) -> None:
        self.announced += 1
        LOGGER.info("release watcher: %s", event.id)
        self._subscribers.hand_on(event, event.id)
        if self.publisher is not None and self.is_leader:
            self.publisher.publish(event)

    def _try_leadership(self) -> None:
        if self.publisher is None or self.leadership is None or self.leadership.held:
            return
        now = time.monotonic()
        if now < self._next_leader_try:
            return
        self._next_leader_try = now + RETRY_SECONDS
        if self.leadership.try_acquire():
            LOGGER.info("release watcher: this process publishes releases to MQTT (lock %s)", self.leadership.path)
            retained = self.retained_announcement()
            if retained is not None:
                self.publisher.retain(retained)

    def retained_announcement(self) -> Announcement | None:
        """What ``{root}/current`` should hold now: the current release's ``published``
        announcement when it is the newest kept release, else a ``current`` one."""
        releases = self.store.releases()
        current = next((r for r in releases if r.current), None)
        if current is None:
            return None
        before = [r.number for r in releases if r.number < current.number]
        previous = max(before) if before else None
        newest = max(r.number for r in releases)
        kind = PUBLISHED if current.number == newest else CURRENT
        return announcement(kind, current, self._layers(current.number), previous, self.base,
                            at=datetime.now(UTC))  # fmt: skip


__all__ = ["CHANNEL", "ReleasePublisher", "ReleaseWatcher"]
