"""``GET /releases/stream``: release announcements as Server-Sent Events, and the watcher behind them.

Each event: ``event: published|current``, ``data: <CloudEvent JSON>`` (cim/sharing/announce.py);
``published`` events have ``id: <the CloudEvent id>`` (``release-<N>-published-<created>``),
``current`` ones no id (an EventSource keeps the last id it had, so it resumes after the last
release published). ``Last-Event-ID`` (header) or ``lastEventId`` (query) — an announcement id or
a release number — resumes: the ``published`` announcements of the kept releases after it, oldest
first, from the store, then the live ones, with no gaps and no duplicates (the subscription is made
before the store is read; a live ``published`` at or below the last one sent is skipped). Without
it nothing old is sent (``GET /releases`` says what is current). Keep-alive comments every 15 s;
the hub (ogcapi/event_stream.py, shared with ``/warnings/stream``) caps the subscribers (503 +
Retry-After) and drops one that falls behind.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from cim.sharing.announce import PUBLISHED, Announcement, announcement, resume_number
from cim.sharing.releases import previous_number
from cim.sharing.release_watcher import ReleasePublisher, ReleaseWatcher
from ogcapi.event_stream import (
    CLOSED, RETRY_MS, StreamHub, TooManySubscribers, event_source, last_event_id, running, too_many_message,
)  # fmt: skip
from ogcapi.releases_routes import STREAM_PATH, check_parameters

LOGGER = logging.getLogger(__name__)
PARAMETERS = ("lastEventId", "f")


def message(event: Announcement) -> dict[str, Any]:
    """The SSE message of an announcement (no id for ``current``: see the module's doc)."""
    if event.kind == PUBLISHED:
        return {"id": event.id, "event": event.kind, "data": event.json}
    return {"event": event.kind, "data": event.json}


def stored_announcements(store: Any, after: int, base: str) -> list[Announcement]:
    """``published`` announcements of the kept releases after ``after``, oldest first."""
    releases = store.releases()
    return [
        announcement(PUBLISHED, r, store.release_layers(r.number), previous_number(releases, r.number), base)
        for r in releases
        if r.number > after
    ]


def parse_stream_parameters(request: Request) -> int | None:
    """The release a stream resumes after (None: from now on); BadInput naming the bad parameter."""
    check_parameters(request, PARAMETERS, ("text/event-stream", "sse"))
    text, source = last_event_id(request)
    return None if text is None else resume_number(text, source)


def stream_routes(store: Any, hub: StreamHub, server_url: str) -> list[Route]:
    base = server_url.rstrip("/")

    async def stream(request: Request) -> Response:
        last = parse_stream_parameters(request)
        full = hub.full_response(STREAM_PATH)
        if full is not None:
            return full

        async def events() -> AsyncIterator[dict[str, Any]]:
            try:  # subscribed where the finally below is sure to run (as /warnings/stream)
                sub = hub.add()
            except TooManySubscribers:
                yield too_many_message()
                return
            sent = last if last is not None else None
            try:
                yield {"retry": RETRY_MS, "comment": "cim-basemap releases"}
                if last is not None:
                    try:
                        stored = await asyncio.to_thread(stored_announcements, store, last, base)
                    except Exception:  # e.g. a release pruned while read: end; the client resumes
                        LOGGER.exception("releases stream: cannot read the releases after %s", last)
                        return
                    for event in stored:
                        sent = event.number
                        yield message(event)
                while True:
                    event = await sub.queue.get()
                    if event is CLOSED:
                        return
                    if event.kind == PUBLISHED:
                        if sent is not None and event.number <= sent:
                            continue  # already sent from the store
                        sent = event.number
                    yield message(event)
            finally:
                hub.remove(sub)

        return event_source(events())

    return [Route(STREAM_PATH, stream, methods=["GET"], name="releases_stream")]


def install(app: Any, store: Any, server_url: str) -> None:
    """Mount ``/releases/stream`` and make the watcher (``app.state.release_watcher``) and its hub
    (``app.state.releases_hub``); the watcher runs while the app's lifespan does."""
    hub = StreamHub(name="releases stream")
    watcher = ReleaseWatcher(store, server_url, ReleasePublisher.from_environment())
    watcher.subscribe(hub.deliver)
    app.state.releases_hub = hub
    app.state.release_watcher = watcher
    app.router.routes.extend(stream_routes(store, hub, server_url))


@asynccontextmanager
async def lifespan(app: Any) -> AsyncIterator[None]:
    """Starts the release watcher (and its MQTT publisher) with the app, stops it with the app."""
    async with running([getattr(app.state, "release_watcher", None)]):
        yield


__all__ = ["PARAMETERS", "install", "lifespan", "message", "stored_announcements", "stream_routes"]
