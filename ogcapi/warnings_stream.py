"""``GET /warnings/stream``: warning events as Server-Sent Events, and the hub that feeds them.

Each event: ``id: <seq>``, ``event: created|updated|cancelled|expired``, ``data: <CloudEvent JSON>``
(cim/warnings/cloudevents.py). ``Last-Event-ID`` (header) or ``lastEventId`` (query, for clients
that cannot set headers) resumes: the stored events after it first (``store.live_events``), then the
live ones, without gaps or duplicates (the subscriber is registered before the stored events are
read; live events at or below the last one sent are skipped). Filters: ``severity`` (CAP severities,
comma separated) and ``division`` (a prefix of the GB/T 2260 division code). Keep-alive comments
every 15 s.

The hub (:class:`StreamHub`, ogcapi/event_stream.py, shared with ``/releases/stream``) gets each
event from the process's watcher (its thread) and puts it into every subscriber's bounded queue on
that subscriber's event loop; a slow subscriber never delays the others: when its queue overflows it
is disconnected (its client resumes with Last-Event-ID). At most ``limits().sse_clients``
subscribers per process: 503 + Retry-After beyond.
"""

from __future__ import annotations

import asyncio
import re
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from cim.errors import BadInput
from cim.store.live import LiveEvent
from cim.warnings.cloudevents import to_json
from cim.warnings.mqtt import MqttPublisher
from cim.warnings.versions import SEVERITIES
from cim.warnings.watcher import PAGE, Watcher, is_public
from ogcapi.event_stream import (
    CLOSED, RETRY_MS, StreamHub, Subscription, TooManySubscribers, event_source, last_event_id, running,
    too_many_message,
)  # fmt: skip

PATH = "/warnings/stream"
PARAMETERS = ("severity", "division", "lastEventId", "f")
_DIVISION = re.compile(r"^[0-9]{1,12}$")


@dataclass(frozen=True)
class StreamFilter:
    severities: frozenset[str] = frozenset()
    division: str = ""

    def accepts(self, event: LiveEvent) -> bool:
        if not is_public(event):
            return False
        properties = event.feature.get("properties") or {}
        if self.severities and properties.get("severity") not in self.severities:
            return False
        if self.division and not str(properties.get("division_code") or "").startswith(self.division):
            return False
        return True


def parse_parameters(request: Request) -> tuple[StreamFilter, int | None]:
    """The filter and the resumption point of a stream request; BadInput naming the bad parameter."""
    params = request.query_params
    for name in params:
        if name not in PARAMETERS:
            raise BadInput(f"unknown parameter {name!r} of {PATH} (parameters: {', '.join(PARAMETERS)})")
    for name in PARAMETERS:
        if len(params.getlist(name)) > 1:
            raise BadInput(f"parameter {name!r} given more than once")
    f = params.get("f")
    if f is not None and f not in ("text/event-stream", "sse"):
        raise BadInput(f"f={f!r}: the stream is only text/event-stream")
    severities: set[str] = set()
    raw = params.get("severity")
    if raw is not None:
        for value in raw.split(","):
            value = value.strip()
            match = next((s for s in SEVERITIES if s.lower() == value.lower()), None)
            if match is None:
                raise BadInput(f"severity={value!r} is not a CAP severity ({', '.join(SEVERITIES)})")
            severities.add(match)
    division = params.get("division", "").strip()
    if "division" in params and not _DIVISION.match(division):
        raise BadInput(f"division={params['division']!r} is not a GB/T 2260 division code prefix (1 to 12 digits)")
    last: int | None = None
    text, source = last_event_id(request)
    if text is not None:
        raw_last = text
        # ASCII digits only: int() would also take "١٢" or "1_000"
        if not (text.isascii() and text.isdigit()):
            raise BadInput(f"{source} {raw_last[:40]!r} is not an event id (a non-negative integer)")
        last = int(text)
        if last > 2**63 - 1:
            raise BadInput(f"{source} {raw_last[:40]!r} is not an event id (a non-negative integer)")
    return StreamFilter(frozenset(severities), division), last


class Messages:
    """The SSE message of each event, made once for all the subscribers (the last few kept)."""

    def __init__(self, source: str, keep: int = 256) -> None:
        self.source = source
        self.keep = keep
        self._made: OrderedDict[int, dict[str, Any]] = OrderedDict()

    def __call__(self, event: LiveEvent) -> dict[str, Any]:
        message = self._made.get(event.seq)
        if message is None:
            message = {"id": str(event.seq), "event": event.kind, "data": to_json(event, self.source)}
            self._made[event.seq] = message
            while len(self._made) > self.keep:
                self._made.popitem(last=False)
        return message


def stream_routes(store: Any, hub: StreamHub, server_url: str) -> list[Route]:
    message = Messages(source_url(server_url))  # used on the event loop only

    async def stream(request: Request) -> Response:
        stream_filter, last = parse_parameters(request)
        full = hub.full_response(PATH)
        if full is not None:
            return full

        async def events() -> AsyncIterator[dict[str, Any]]:
            # subscribed here, where the finally below is sure to run: a client gone before its
            # stream started never holds a place (one between the check above and here, when the
            # hub filled up meanwhile, gets a stream that ends at once and retries)
            try:
                sub = hub.add(stream_filter)
            except TooManySubscribers:
                yield too_many_message()
                return
            sent = last if last is not None else -1
            try:
                yield {"retry": RETRY_MS, "comment": "cim-basemap warnings"}
                if last is not None:
                    after = last
                    while True:  # the stored events after Last-Event-ID, page by page, in a thread
                        page = await asyncio.to_thread(store.live_events, "warnings", after, PAGE)
                        for event in page:
                            after = event.seq
                            if stream_filter.accepts(event):
                                yield message(event)
                        sent = max(sent, after)
                        if len(page) < PAGE:
                            break
                while True:
                    event = await sub.queue.get()
                    if event is CLOSED:
                        return
                    if event.seq <= sent:
                        continue  # already sent from the store
                    sent = event.seq
                    yield message(event)
            finally:
                hub.remove(sub)

        return event_source(events())

    return [Route(PATH, stream, methods=["GET"], name="warnings_stream")]


def source_url(server_url: str) -> str:
    return server_url.rstrip("/") + "/collections/warnings"


def install(app: Any, store: Any, server_url: str) -> None:
    """Mount ``/warnings/stream`` and make the watcher (``app.state.warnings_watcher``; ``poke()``
    it after a write) and the hub; the watcher runs while the app's lifespan does."""
    hub = StreamHub(name="warnings stream")
    publisher = MqttPublisher.from_environment(source_url(server_url))
    watcher = Watcher(store, publisher)
    watcher.subscribe(hub.deliver)
    app.state.warnings_hub = hub
    app.state.warnings_watcher = watcher
    app.router.routes.extend(stream_routes(store, hub, server_url))


@asynccontextmanager
async def lifespan(app: Any) -> AsyncIterator[None]:
    """Starts the warnings watcher (and its MQTT publisher) with the app, stops it with the app."""
    async with running([getattr(app.state, "warnings_watcher", None)]):
        yield


__all__ = ["PATH", "Messages", "StreamFilter", "StreamHub", "Subscription", "TooManySubscribers", "install",
           "lifespan", "parse_parameters", "stream_routes"]
