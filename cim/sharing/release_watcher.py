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
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from cim.events.leadership import Leadership
from cim.events.mqtt import QUEUE_SIZE, MqttClient, environment_url
from cim.events.poller import Poller
from cim.sharing.announce import CURRENT, PUBLISHED, Announcement, announcement
from cim.sharing.releases import previous_number

LOGGER = logging.getLogger(__name__)

CHANNEL = "releases"
POLL_SECONDS = 0.25


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


class ReleaseWatcher(Poller):
    """See the module's doc. ``start()``/``stop()``; thread-safe ``subscribe``/``poke`` (cim/events/poller.py)."""

    label = "release watcher"

    def __init__(
        self,
        store: Any,
        base_url: str,
        publisher: ReleasePublisher | None = None,
        *,
        poll_seconds: float = POLL_SECONDS,
        leadership: Leadership | None = None,
    ) -> None:
        super().__init__(
            store, publisher,
            leadership if leadership is not None else (
                Leadership(getattr(store, "url", repr(store)), CHANNEL) if publisher is not None else None
            ),
            poll_seconds,
        )  # fmt: skip
        self.publisher: ReleasePublisher | None = publisher
        self.base = base_url.rstrip("/")
        #: the current release seen last (None: not read yet)
        self.current: int | None = None
        #: the newest release number seen
        self.newest = 0
        #: announcements made (all kinds)
        self.announced = 0
        self._retain_pending = False

    def subscribe(self, callback: Callable[[Announcement], None]) -> Callable[[], None]:
        """Call ``callback(announcement)`` (on the watcher's thread; it must not block) from now on."""
        return super().subscribe(callback)

    def initialise(self) -> None:
        releases = self.store.releases()
        self.newest = max((r.number for r in releases), default=0)
        self.current = self._current_number()

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
        self.try_leadership()
        if self._retain_pending:
            self._retain_current()
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
        self.hand_on(event, event.id)
        if self.publisher is not None and self.is_leader:
            self.publisher.publish(event)

    def took_leadership(self) -> None:
        self._retain_pending = True  # published by the round (again by the next if it fails)

    def _retain_current(self) -> None:
        retained = self.retained_announcement()
        if retained is not None and self.publisher is not None:
            self.publisher.retain(retained)
        self._retain_pending = False

    def retained_announcement(self) -> Announcement | None:
        """What ``{root}/current`` should hold now: the current release's ``published``
        announcement when it is the newest kept release, else a ``current`` one."""
        releases = self.store.releases()
        current = next((r for r in releases if r.current), None)
        if current is None:
            return None
        previous = previous_number(releases, current.number)
        newest = max(r.number for r in releases)
        kind = PUBLISHED if current.number == newest else CURRENT
        return announcement(kind, current, self._layers(current.number), previous, self.base,
                            at=datetime.now(UTC))  # fmt: skip


__all__ = ["CHANNEL", "ReleasePublisher", "ReleaseWatcher"]
