"""The watcher thread both push channels run (cim/warnings/watcher.py, cim/sharing/release_watcher.py):
a daemon thread per server process that polls the store (store calls block; they never run on an
event loop), hands what it finds to its subscribers (the SSE hubs) and, when this process holds the
channel's MQTT leader lock (leadership.py), to the MQTT publisher. It never dies: a failed round is
logged, counted and tried again after ``retry_seconds``.

A subclass gives :meth:`Poller.initialise` (where to start, before the server takes requests: read
again by the thread until the store answers), :meth:`Poller.step` (one round) and may change
:meth:`Poller.next_timeout`, :meth:`Poller.after_error` and :meth:`Poller.took_leadership`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, Protocol

from cim.events.leadership import Leadership
from cim.events.subscribers import Subscribers

LOGGER = logging.getLogger(__name__)

#: the back-off after a failed store call, and between attempts to become the MQTT leader
RETRY_SECONDS = 2.0


class Publisher(Protocol):
    def start(self) -> None: ...
    def stop(self) -> None: ...


class Poller:
    """See the module's doc. ``start()``/``stop()``; thread-safe ``subscribe``/``poke``."""

    #: names the thread and the log lines
    label = "watcher"

    def __init__(self, store: Any, publisher: Any, leadership: Leadership | None, poll_seconds: float,
                 retry_seconds: float = RETRY_SECONDS) -> None:  # fmt: skip
        self.store = store
        self.publisher = publisher
        self.leadership = leadership
        self.poll_seconds = poll_seconds
        self.retry_seconds = retry_seconds
        self._subscribers = Subscribers(self.label)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.ready = threading.Event()
        self.errors = 0

    # -- what a subclass gives -------------------------------------------------------------------
    def initialise(self) -> None:
        """Read where to start (raises when the store cannot answer: tried again)."""
        raise NotImplementedError

    def step(self) -> Any:
        """One round."""
        raise NotImplementedError

    def next_timeout(self) -> float:
        """Seconds until the next round (unless poked)."""
        return self.poll_seconds

    def after_error(self) -> None:
        """Forget what a failed round may have left half done."""

    def took_leadership(self) -> None:
        """Called on the round this process became the MQTT leader."""

    # -- subscribers -----------------------------------------------------------------------------
    def subscribe(self, callback: Callable[[Any], None]) -> Callable[[], None]:
        """Call ``callback(event)`` (on the watcher's thread; it must not block) for each event
        from now on; returns the function that unsubscribes."""
        return self._subscribers.subscribe(callback)

    def hand_on(self, event: Any, label: object) -> None:
        self._subscribers.hand_on(event, label)

    def poke(self) -> None:
        """Look at the store now (after a write in this process)."""
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
        # where to start, before the server takes requests (lifespan): nothing between the start
        # and a first subscriber is taken for history
        try:
            self.initialise()
            self.ready.set()
        except Exception:  # the store is away: the thread tries again
            LOGGER.exception("%s: cannot read the store; retrying", self.label)
        self._thread = threading.Thread(target=self._run, name=f"cim-{self.label.replace(' ', '-')}", daemon=True)
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

    # -- the loop --------------------------------------------------------------------------------
    def _run(self) -> None:
        while not self.ready.is_set() and not self._stop.is_set():
            try:
                self.initialise()
                break
            except Exception:  # the store is away: try again, never die
                self.errors += 1
                LOGGER.exception("%s: cannot read the store; retrying", self.label)
                self._stop.wait(self.retry_seconds)
        self.ready.set()
        while not self._stop.is_set():
            try:
                self.step()
                timeout = self.next_timeout()
            except Exception:
                self.errors += 1
                LOGGER.exception("%s: a step failed; retrying in %.0f s", self.label, self.retry_seconds)
                self.after_error()
                timeout = self.retry_seconds
            self._wake.wait(timeout)
            self._wake.clear()

    def try_leadership(self) -> None:
        """Take the MQTT leader lock when it is free (at most every ``retry_seconds``)."""
        if self.publisher is None or self.leadership is None:
            return
        if self.leadership.take_when_free(self.retry_seconds):
            LOGGER.info("%s: this process publishes to MQTT (lock %s)", self.label, self.leadership.path)
            self.took_leadership()


__all__ = ["RETRY_SECONDS", "Poller", "Publisher"]
