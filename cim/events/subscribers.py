"""The callbacks a watcher thread hands its events to (the SSE hubs): registered and removed from
any thread, each called on the watcher's thread; one that raises is logged and the others still run."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

LOGGER = logging.getLogger(__name__)


class Subscribers:
    def __init__(self, name: str) -> None:
        self.name = name
        self._callbacks: dict[int, Callable[[Any], None]] = {}
        self._next_id = 0
        self._lock = threading.Lock()

    def subscribe(self, callback: Callable[[Any], None]) -> Callable[[], None]:
        """Call ``callback(event)`` (it must not block) for each event from now on; returns the
        function that unsubscribes."""
        with self._lock:
            key = self._next_id
            self._next_id += 1
            self._callbacks[key] = callback

        def unsubscribe() -> None:
            with self._lock:
                self._callbacks.pop(key, None)

        return unsubscribe

    def hand_on(self, event: Any, label: object = "") -> None:
        with self._lock:
            callbacks = list(self._callbacks.values())
        for callback in callbacks:
            try:
                callback(event)
            except Exception:
                LOGGER.exception("%s: a subscriber failed on event %s", self.name, label)


__all__ = ["Subscribers"]
