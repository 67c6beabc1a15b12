"""What the Server-Sent Events streams share (``/warnings/stream``, ``/releases/stream``): the hub
of one process's subscribers, the 503 beyond the cap and the EventSource response.

The hub (:class:`StreamHub`) gets each event from a watcher (on the watcher's thread) and puts it
into every subscriber's bounded queue on that subscriber's event loop; a slow subscriber never
delays the others: when its queue overflows it is disconnected (its client resumes with
Last-Event-ID). At most ``limits().sse_clients`` subscribers per hub: 503 + Retry-After beyond.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Iterable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from sse_starlette.sse import EventSourceResponse
from starlette.requests import Request
from starlette.responses import Response

from cim.limits import limits
from ogcapi.errors import ogc_exception
from ogcapi.retry_after import RETRY_AFTER_SECONDS

LOGGER = logging.getLogger(__name__)

#: seconds between keep-alive comments
PING_SECONDS = 15
#: reconnection delay suggested to EventSource clients (ms)
RETRY_MS = 3000
#: a send to a client that takes longer than this closes its stream
SEND_TIMEOUT_SECONDS = 30
CLOSED = None  # queue sentinel: the hub dropped this subscriber


class EventFilter(Protocol):
    def accepts(self, event: Any) -> bool: ...


class AcceptAll:
    def accepts(self, event: Any) -> bool:
        return True


@dataclass(eq=False)
class Subscription:
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[Any]
    filter: EventFilter
    dropped: bool = False
    hub: StreamHub | None = field(default=None, repr=False)

    def offer(self, event: Any) -> None:
        """On the subscriber's loop: queue ``event``; on overflow drop the subscriber."""
        if self.dropped:
            return
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.dropped = True
            while not self.queue.empty():
                self.queue.get_nowait()
            self.queue.put_nowait(CLOSED)
            if self.hub is not None:
                self.hub.remove(self, overflowed=True)


class TooManySubscribers(Exception):
    pass


class StreamHub:
    """The SSE subscribers of one stream in one process; :meth:`deliver` is the watcher's callback."""

    def __init__(self, max_clients: int | None = None, queue_size: int | None = None, name: str = "event stream") -> None:
        self.max_clients = limits().sse_clients if max_clients is None else max_clients
        self.queue_size = max(1, limits().sse_queue if queue_size is None else queue_size)
        self.name = name
        self._subs: set[Subscription] = set()
        self._lock = threading.Lock()
        #: subscribers disconnected because their queue overflowed
        self.overflowed = 0

    def __len__(self) -> int:
        return len(self._subs)

    def add(self, stream_filter: EventFilter | None = None) -> Subscription:
        sub = Subscription(asyncio.get_running_loop(), asyncio.Queue(self.queue_size), stream_filter or AcceptAll(), hub=self)
        with self._lock:
            if len(self._subs) >= self.max_clients:
                raise TooManySubscribers
            self._subs.add(sub)
        return sub

    def remove(self, sub: Subscription, overflowed: bool = False) -> None:
        with self._lock:
            if sub in self._subs:
                self._subs.discard(sub)
                if overflowed:
                    self.overflowed += 1
                    LOGGER.warning("%s: a subscriber fell %d events behind and was disconnected", self.name, self.queue_size)

    def deliver(self, event: Any) -> None:
        """Hand ``event`` to every subscriber whose filter takes it; never blocks (any thread)."""
        with self._lock:
            subs = list(self._subs)
        for sub in subs:
            if sub.filter.accepts(event):
                try:
                    sub.loop.call_soon_threadsafe(sub.offer, event)
                except RuntimeError:  # its loop is closed
                    self.remove(sub)

    def full_response(self, path: str) -> Response | None:
        """The 503 (OGC exception, Retry-After) when the hub has no room; None when it has."""
        if len(self) < self.max_clients:
            return None
        response = ogc_exception(
            503, f"too many subscribers of {path} (at most {self.max_clients}); try again later", "ServiceUnavailable"
        )
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response


def too_many_message() -> dict[str, Any]:
    """What a stream sends before it ends when the hub filled up between the check and the subscription."""
    return {"retry": RETRY_AFTER_SECONDS * 1000, "comment": "too many subscribers; try again later"}


def last_event_id(request: Request) -> tuple[str | None, str]:
    """The resumption point a client gave: ``?lastEventId=`` (for clients that cannot set headers)
    over the ``Last-Event-ID`` header; (raw text or None, where it came from). Empty is None."""
    raw, source = request.headers.get("last-event-id"), "Last-Event-ID header"
    if request.query_params.get("lastEventId") is not None:
        raw, source = request.query_params["lastEventId"], "lastEventId"
    if raw is None or raw.strip() == "":
        return None, source
    return raw.strip(), source


def event_source(events: AsyncIterator[dict[str, Any]]) -> EventSourceResponse:
    """The ``text/event-stream`` response of ``events`` (keep-alive comments, send timeout, no caching)."""
    return EventSourceResponse(
        events,
        ping=PING_SECONDS,
        send_timeout=SEND_TIMEOUT_SECONDS,
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


@asynccontextmanager
async def running(watchers: Iterable[Any]) -> AsyncIterator[None]:
    """Start the watchers (``start()``/``stop()``, blocking: in a thread) for as long as the block runs."""
    async with AsyncExitStack() as stack:
        for watcher in watchers:
            if watcher is None:
                continue
            await asyncio.to_thread(watcher.start)
            stack.push_async_callback(asyncio.to_thread, watcher.stop)
        yield


__all__ = ["CLOSED", "PING_SECONDS", "RETRY_MS", "AcceptAll", "EventFilter", "StreamHub", "Subscription",
           "TooManySubscribers", "event_source", "last_event_id", "running", "too_many_message"]
