"""The fast path for tiles already served: answered from memory before FastAPI routes the request.

A tile of a release never changes, but answering one through FastAPI — routing past some two
hundred routes, a thread hop, the cache lookup, a ``Response`` object — costs about a millisecond
of CPU, a fifteenth of what serving the same bytes as a static file costs nginx. This ASGI
middleware, outermost in the app, keeps the complete responses (status, headers, body) of tile
requests the routes marked as belonging to one release (:func:`mark_release`) and answers a
repeated request for the same URL — path, query and ``Accept`` header — itself while that release
is still current, with ``304`` when ``If-None-Match`` names its ETag.

Tiles of a tileset with an editable layer change with edits too: the route marks them with the
store's edit generation they are keyed by, and they are repeated only while that generation is
still the store's. Whether the release (and generation) is still current is asked of the store
without I/O that could block the event loop (``Store.known_current_number`` and
``known_edit_generation``: DuckDB reads its release and overlay symlinks, PostGIS answers from the
state it re-reads every second); when the store cannot tell, the request takes the route, which
re-reads it. A release switch or an edit therefore reaches this path no later than the routes.

Behind this middleware, ogcapi/tiles_protocol.py answers the same entries a level further out, in
uvicorn's HTTP protocol, before any ASGI scope or task exists: both ask :meth:`TileFastPath.current_entry`,
and each entry carries its header block already serialised (:attr:`_Entry.wire_head`) for it.

Responses of restricted layers (ogcapi/access.py marks them with :func:`mark_private`) and responses
marked ``Cache-Control: private`` or ``no-store`` are never kept: what is kept is answered to anyone.

Memory: responses are kept up to ``max_bytes`` of bodies per process (the app passes
``$CIM_TILE_MEMORY_MB``, tiles/cache.py; 0 keeps none); past that the oldest go first (first in,
first out: a hit costs no bookkeeping).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: scope key through which a route marks its response as cacheable here (see :func:`mark_release`)
SLOT = "cim.tiles_fastpath"
#: bodies kept per process by default
MAX_BYTES = 128 * 2**20
#: response headers a 304 repeats (RFC 9110 15.4.5)
_NOT_MODIFIED_HEADERS = (b"etag", b"cache-control", b"vary", b"expires", b"content-location", b"date")


def mark_release(scope: Scope, release: int, generation: int | None = None) -> None:
    """Called by a tile route: this response belongs to ``release`` (and, unless None, to the store's
    edit ``generation``) and to nothing else of the request than its URL and ``Accept`` header, so it
    may be repeated while they are current."""
    slot = scope.get(SLOT)
    if slot is not None:
        slot["release"], slot["generation"] = release, generation


def mark_private(scope: Scope) -> None:
    """Called by the access check (ogcapi/access.py) for a response only some may see (a restricted
    layer's tile): it is never kept here, whatever the route marks, so it is never repeated from
    memory — here or in ogcapi/tiles_protocol.py — to a request that did not pass the check."""
    slot = scope.get(SLOT)
    if slot is not None:
        slot["private"] = True


def _shareable(headers: list[tuple[bytes, bytes]]) -> bool:
    """Whether a response may be repeated to anyone: not ``Cache-Control: private`` / ``no-store``."""
    for name, value in headers:
        if name == b"cache-control" and (b"private" in value.lower() or b"no-store" in value.lower()):
            return False
    return True


#: a request's key here: path, query string, ``Accept``
Key = tuple[str, bytes, bytes | None]


def _wire(headers: list[tuple[bytes, bytes]]) -> bytes:
    """``headers`` as HTTP/1.1 header lines, ending with the blank line."""
    return b"".join(b"%s: %s\r\n" % pair for pair in headers) + b"\r\n"


@dataclass(frozen=True)
class _Entry:
    release: int
    #: the edit generation the response depends on (None: it does not)
    generation: int | None
    status: int
    #: lower-case names, as the app sent them
    headers: list[tuple[bytes, bytes]]
    body: bytes
    etag: str | None
    #: the header lines of the response (with ``content-length``) and of its 304, each up to and
    #: including the blank line, for a server writing HTTP itself; ``wire_head`` is None when the
    #: headers take part in the connection's framing (``connection``, ``transfer-encoding``)
    wire_head: bytes | None
    wire_not_modified: bytes

    @classmethod
    def make(cls, release: int, generation: int | None, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> _Entry:
        names = {k for k, _ in headers}
        etag = next((v.decode("latin-1") for k, v in headers if k == b"etag"), None)
        framed = headers if b"content-length" in names or status == 204 else [*headers, (b"content-length", b"%d" % len(body))]
        head = None if names & {b"connection", b"transfer-encoding", b"upgrade"} else _wire(framed)
        return cls(release, generation, status, headers, body, etag, head, _wire(not_modified(headers)))

    def not_modified(self) -> list[tuple[bytes, bytes]]:
        return not_modified(self.headers)


def not_modified(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The headers of a 304 in place of a response with ``headers``."""
    return [(k, v) for k, v in headers if k in _NOT_MODIFIED_HEADERS]


def request_key(path: str, query: bytes, headers: list[tuple[bytes, bytes]]) -> tuple[Key, bytes | None]:
    """The key of a request (lower-case ``headers``) and its ``If-None-Match`` value, if any."""
    accept = if_none_match = None
    for name, value in headers:
        if name == b"accept":
            accept = value
        elif name == b"if-none-match":
            if_none_match = value
    return (path, query, accept), if_none_match


def etag_matches(header: str | None, etag: str) -> bool:
    """Whether an ``If-None-Match`` value names ``etag`` (or is ``*``); weak tags compare by value."""
    if not header:
        return False
    if header.strip() == "*":
        return True
    return any(tag.strip().removeprefix("W/") == etag for tag in header.split(","))


class TileFastPath:
    """ASGI middleware; ``current()`` / ``generation()``: the store's release / edit generation when
    known without blocking, else None."""

    def __init__(
        self,
        app: ASGIApp | None,
        current: Callable[[], int | None],
        generation: Callable[[], int | None] = lambda: None,
        max_bytes: int = MAX_BYTES,
    ) -> None:
        self.app: ASGIApp = app  # type: ignore[assignment]  # None until the app's stack is built (ogcapi/app.py)
        self.current = current
        self.generation = generation
        self.max_bytes = max_bytes
        self._entries: dict[Key, _Entry] = {}
        self._bytes = 0
        #: responses written from entries here by the HTTP protocol itself (ogcapi/tiles_protocol.py)
        self.answered = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        key, if_none_match = request_key(scope["path"], scope["query_string"], scope["headers"])
        entry = self.current_entry(key)
        if entry is not None:
            await self._answer(entry, if_none_match, send)
            return
        await self._through(scope, receive, send, key)

    def current_entry(self, key: Key) -> _Entry | None:
        """The response kept for ``key`` if it may be repeated now: its release is the store's current
        one and, for a response tied to edits, its generation the store's. None when not kept, stale
        (an older release's is dropped) or when the store cannot tell without I/O."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        release = self.current()
        if release == entry.release and (entry.generation is None or self.generation() == entry.generation):
            return entry
        if release is not None and release != entry.release:  # an older release's: gone for good
            self._drop(key)
        return None

    @staticmethod
    async def _answer(entry: _Entry, if_none_match: bytes | None, send: Send) -> None:
        if if_none_match is not None and entry.etag is not None and etag_matches(if_none_match.decode("latin-1"), entry.etag):
            await send({"type": "http.response.start", "status": 304, "headers": entry.not_modified()})
            await send({"type": "http.response.body", "body": b""})
            return
        await send({"type": "http.response.start", "status": entry.status, "headers": entry.headers})
        await send({"type": "http.response.body", "body": entry.body})

    async def _through(self, scope: Scope, receive: Receive, send: Send, key: Key) -> None:
        """The route answers; a marked 200/204 is kept."""
        slot: dict[str, Any] = {}
        scope[SLOT] = slot
        start: Message | None = None
        chunks: list[bytes] = []
        complete = False

        async def capture(message: Message) -> None:
            nonlocal start, complete
            if message["type"] == "http.response.start":
                # routes mark before they answer: anything else (a streamed export, a page of
                # features) is passed on without keeping its body
                start = message if "release" in slot else None
            elif message["type"] == "http.response.body" and start is not None:
                chunks.append(message.get("body", b""))
                complete = not message.get("more_body", False)
            await send(message)

        await self.app(scope, receive, capture)
        release = slot.get("release")
        if release is None or start is None or not complete or start["status"] not in (200, 204) or slot.get("private"):
            return
        headers = [(bytes(k).lower(), bytes(v)) for k, v in start.get("headers", [])]
        if not _shareable(headers):
            return
        generation = slot.get("generation")
        entry = _Entry.make(int(release), None if generation is None else int(generation), start["status"], headers,
                            b"".join(chunks))  # fmt: skip
        self._keep(key, entry)

    def _keep(self, key: Key, entry: _Entry) -> None:
        if self.max_bytes <= 0 or len(entry.body) > self.max_bytes:
            return
        self._drop(key)
        while self._entries and self._bytes + len(entry.body) > self.max_bytes:
            self._drop(next(iter(self._entries)))
        self._entries[key] = entry
        self._bytes += len(entry.body)

    def _drop(self, key: Key) -> None:
        old = self._entries.pop(key, None)
        if old is not None:
            self._bytes -= len(old.body)

    def __len__(self) -> int:
        return len(self._entries)
