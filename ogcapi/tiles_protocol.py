"""Repeated tiles answered in uvicorn's HTTP protocol, before any ASGI scope or task is made.

The tile fast path (ogcapi/tiles_fastpath.py) answers a repeated tile in a few microseconds, but only
after uvicorn has made the request's ASGI scope, a ``RequestResponseCycle``, a task and its
``receive``/``send`` coroutines: a bare ASGI app returning a constant 20 KB did no more than ~24,000
requests/s on two workers here, half of what nginx serves as static files. :class:`TileProtocol`
— uvicorn's httptools protocol with one shortcut — looks the complete request up in the app's
:class:`~ogcapi.tiles_fastpath.TileFastPath` once its headers are parsed and, when the fast path
holds a current response for it, writes that response (status line, uvicorn's ``date``/``server``
headers, the entry's header block serialised when it was kept, the body) to the transport itself.

Everything else takes the base class's way, unchanged: a request that is not a plain ``GET`` (HEAD,
a body, ``Expect``, an upgrade), that is not HTTP/1.1 keep-alive (HTTP/1.0, ``Connection: close``),
that arrives while another request of the connection is in flight or queued (pipelined responses
keep their order), while writing is paused by flow control, when an access line would be logged, or past
``limit_concurrency``; a tile the fast path does not hold, or holds for a release (or edit
generation) no longer current, or when the store cannot tell. After a response written here the
connection goes on exactly as after one of the base class's (``on_response_complete``: request
count, reads resumed, keep-alive timer armed).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import urllib.parse
from typing import Any

import httptools
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

from ogcapi.tiles_fastpath import TileFastPath, etag_matches, request_key

#: request headers that announce a body or ask for an interim response: such requests take the app
_BODY_HEADERS = frozenset((b"content-length", b"transfer-encoding", b"expect"))


def find_fast_path(app: Any) -> TileFastPath | None:
    """The :class:`TileFastPath` of ``app`` (uvicorn's ``config.loaded_app``): the app itself, or
    registered on it as ``tile_fast_path`` (ogcapi/app.py ``CIMApp``), looking through the wrappers
    uvicorn and others put around it (``ProxyHeadersMiddleware`` and the like keep theirs in ``.app``)."""
    for _ in range(32):  # wrappers, not a cycle
        if isinstance(app, TileFastPath):
            return app
        registered = getattr(app, "tile_fast_path", None)
        if isinstance(registered, TileFastPath):
            return registered
        app = getattr(app, "app", None)
        if app is None:
            break
    return None


class TileProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, answering requests its app's tile fast path holds itself."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.fast_path = find_fast_path(self.app)
        #: status, header block and body decided at ``on_headers_complete``, written at message complete
        self._pending: tuple[int, bytes, bytes] | None = None
        #: uvicorn's default headers (renewed every second) and their header lines
        self._defaults: list[tuple[bytes, bytes]] | None = None
        self._defaults_wire = b""

    def on_headers_complete(self) -> None:
        if self.fast_path is not None and self._may_answer():
            try:
                self._pending = self._lookup(self.fast_path)
            except (ValueError, httptools.HttpParserInvalidURLError):  # a URL the base class reports its way
                self._pending = None
            if self._pending is not None:
                return  # no scope completed, no cycle, no task: answered at on_message_complete
        super().on_headers_complete()

    def _may_answer(self) -> bool:
        """Whether this request may be answered here, if the fast path holds it (see the module's doc)."""
        parser = self.parser
        if parser.get_method() != b"GET" or parser.get_http_version() != "1.1" or not parser.should_keep_alive():
            return False
        if parser.should_upgrade() or self.flow.write_paused or self.transport.is_closing():
            return False
        if self.access_log and self.access_logger.isEnabledFor(logging.INFO):
            return False  # the base class writes the access line (with the client ProxyHeadersMiddleware sets)
        if self.pipeline or (self.cycle is not None and not self.cycle.response_complete):
            return False  # a response is due first
        if self.limit_concurrency is not None and (
            len(self.connections) >= self.limit_concurrency or len(self.tasks) >= self.limit_concurrency
        ):
            return False  # the base class answers 503
        for name, _ in self.headers:
            if name in _BODY_HEADERS:
                return False
        return True

    def _lookup(self, fast_path: TileFastPath) -> tuple[int, bytes, bytes] | None:
        """The response to write for the request, as the ASGI fast path would send it, or None."""
        url = httptools.parse_url(self.url)
        path = url.path.decode("ascii")  # the path and query of the scope uvicorn would make
        if "%" in path:
            path = urllib.parse.unquote(path)
        key, if_none_match = request_key(self.root_path + path, url.query or b"", self.headers)
        entry = fast_path.current_entry(key)
        if entry is None or entry.wire_head is None:
            return None
        if if_none_match is not None and entry.etag is not None and etag_matches(if_none_match.decode("latin-1"), entry.etag):
            return 304, entry.wire_not_modified, b""
        return entry.status, entry.wire_head, entry.body

    def on_body(self, body: bytes) -> None:
        if self._pending is None:  # a request answered here has no body (_BODY_HEADERS)
            super().on_body(body)

    def on_message_complete(self) -> None:
        pending = self._pending
        if pending is None:
            super().on_message_complete()
            return
        self._pending = None
        status, head, body = pending
        self.transport.writelines((STATUS_LINE[status], self._default_headers(), head, body))
        self.fast_path.answered += 1  # type: ignore[union-attr]  # set whenever a response is pending
        self.on_response_complete()  # as the base class's cycle calls it after a keep-alive response

    def timeout_keep_alive_handler(self) -> None:
        """Close an idle keep-alive connection — unless a request has arrived on it meanwhile.

        The timer is armed when a response is complete. When the event loop was blocked for longer
        than the keep-alive timeout (work done on the loop after a release switch: opening the new
        release, rebuilding pygeoapi's API; a starved process), uvloop runs the expired timer before
        it reads the sockets, and uvicorn's handler closed connections whose client had already sent
        its next request: the client saw the connection close without a response (the "empty reply"
        of the 64-client runs with release switches; tests/test_serve_health.py). Such a request is read
        and answered instead; the timer is armed again after its response."""
        if not self.transport.is_closing() and _request_waiting(self.transport):
            return
        super().timeout_keep_alive_handler()

    def _default_headers(self) -> bytes:
        """uvicorn's ``date`` and ``server`` headers as the base class writes them (names lower-case)."""
        defaults = self.server_state.default_headers
        if defaults is not self._defaults:  # a new list every second (Server.on_tick)
            self._defaults = defaults
            self._defaults_wire = b"".join(b"%s: %s\r\n" % (name.lower(), value) for name, value in defaults)
        return self._defaults_wire


def _request_waiting(transport: asyncio.BaseTransport) -> bool:
    """Whether bytes from the client wait unread on ``transport``'s socket (peeked, not consumed)."""
    sock = transport.get_extra_info("socket")
    if sock is None:
        return False
    try:  # uvloop's transports give a pseudo-socket without recv: peek through a duplicate of its fd
        with socket.socket(fileno=os.dup(sock.fileno())) as peer:
            return bool(peer.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT))
    except (BlockingIOError, InterruptedError):
        return False  # nothing waiting
    except OSError:
        return False  # reset or closed: let the base class close it
