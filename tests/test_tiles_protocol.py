"""The protocol-level tile fast path (ogcapi/tiles_protocol.py) on a real uvicorn server over raw sockets.

A repeated tile is written by the HTTP protocol itself — proved by the fast path's ``answered``
counter and by the ASGI app (wrapped in a counter, which the protocol must also see through) not
being called — with the bytes and headers of the app's answer; everything else (HTTP/1.0,
``Connection: close``, HEAD, requests queued behind another, other URLs, a tile of a release no
longer current) takes uvicorn's normal way. DuckDB store: the protocol does not depend on the backend.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

import pytest
import uvicorn

from cim.store import LayerData, ReleaseDraft, open_store
from support.citydata import TIANJIN, building_frame
from layers.catalog import CATALOG
from ogcapi.app import create_app
from ogcapi.tiles_fastpath import TileFastPath
from ogcapi.tiles_protocol import TileProtocol, find_fast_path
from support.tiles import tile_at, tile_path, wait_until

TILE = tile_path("/tiles", "WebMercatorQuad", tile_at("WebMercatorQuad", 13, *TIANJIN[1]))
EMPTY_TILE = tile_path("/tiles", "WebMercatorQuad", tile_at("WebMercatorQuad", 18, 117.1800, 39.1430))  # between the buildings
OTHER_TILE = tile_path("/collections/buildings/tiles", "WebMercatorQuad", tile_at("WebMercatorQuad", 13, *TIANJIN[1]))


class Counting:
    """An ASGI wrapper counting the HTTP requests that reach the app (a ``.app`` like uvicorn's own)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.calls = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.calls += 1
        await self.app(scope, receive, send)


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def same_as(self, other: Reply) -> bool:
        """Equal but for the ``date`` header (its second may have turned)."""
        strip = lambda h: {k: v for k, v in h.items() if k != "date"}  # noqa: E731
        return (self.status, strip(self.headers), self.body) == (other.status, strip(other.headers), other.body)


class Server:
    """The app under uvicorn with :class:`TileProtocol` on a free port, in a thread."""

    def __init__(self, store_url: str) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.app = Counting(create_app(store_url, server_url=f"http://127.0.0.1:{self.port}"))
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning", access_log=False, http=TileProtocol)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline and self.thread.is_alive(), "test server did not start"
            time.sleep(0.05)

    @property
    def fast_path(self) -> TileFastPath:
        found = find_fast_path(self.app)
        assert found is not None
        return found

    def connect(self) -> Connection:
        return Connection(socket.create_connection(("127.0.0.1", self.port), timeout=10))

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


class Connection:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.file: BinaryIO = sock.makefile("rb")

    def send(self, *requests: bytes) -> None:
        self.sock.sendall(b"".join(requests))

    def get(self, path: str, *headers: str, method: str = "GET", version: str = "1.1") -> Reply:
        self.send(request(path, *headers, method=method, version=version))
        return self.read(head=method == "HEAD")

    def read(self, head: bool = False) -> Reply:
        line = self.file.readline()
        if not line:
            raise EOFError("connection closed")
        status = int(line.split()[1])
        headers: dict[str, str] = {}
        while (header := self.file.readline()) not in (b"\r\n", b""):
            name, value = header.decode("latin-1").split(":", 1)
            assert name.lower() not in headers, f"repeated header {name}"
            headers[name.lower()] = value.strip()
        if head or status in (204, 304):
            body = b""
        elif "content-length" in headers:
            body = self.file.read(int(headers["content-length"]))
        else:
            assert headers.get("transfer-encoding") == "chunked"
            body = b""
            while size := int(self.file.readline(), 16):
                body += self.file.read(size)
                self.file.readline()
            self.file.readline()
        return Reply(status, headers, body)

    def closed(self) -> bool:
        return self.file.read(1) == b""

    def close(self) -> None:
        self.file.close()
        self.sock.close()


def request(path: str, *headers: str, method: str = "GET", version: str = "1.1") -> bytes:
    lines = [f"{method} {path} HTTP/{version}", "Host: 127.0.0.1", *headers, "", ""]
    return "\r\n".join(lines).encode()


def buildings(n: int) -> LayerData:
    return LayerData(CATALOG["buildings"], building_frame(4490).iloc[:n])


@pytest.fixture(scope="module")
def store_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = str(tmp_path_factory.mktemp("protocol") / "city.duckdb")
    with open_store(url) as store:
        store.publish(ReleaseDraft([buildings(3)], srid=4490))
    return url


@pytest.fixture(scope="module")
def server(store_url: str) -> Iterator[Server]:
    running = Server(store_url)
    yield running
    running.stop()


@pytest.fixture
def conn(server: Server) -> Iterator[Connection]:
    connection = server.connect()
    yield connection
    connection.close()


def test_a_repeated_tile_is_written_by_the_protocol_with_the_apps_bytes(server: Server, conn: Connection) -> None:
    first = conn.get(TILE)
    assert first.status == 200 and first.body and first.headers["content-type"] == "application/vnd.mapbox-vector-tile"
    calls, answered = server.app.calls, server.fast_path.answered
    for n in range(1, 4):  # keep-alive: the connection goes on after each
        again = conn.get(TILE)
        assert again.same_as(first)
        assert (server.app.calls, server.fast_path.answered) == (calls, answered + n)
    assert {"date", "server", "etag", "cache-control", "content-length"} <= set(again.headers)
    assert "connection" not in again.headers
    # another connection, another Accept: the same key rules as the ASGI fast path
    other = server.connect()
    assert other.get(TILE).same_as(first) and server.fast_path.answered == answered + 4
    assert other.get(TILE, "Accept: application/vnd.mapbox-vector-tile").same_as(first)
    assert server.app.calls == calls + 1 and server.fast_path.answered == answered + 4
    other.close()


def test_if_none_match_gets_304_as_from_the_app(server: Server, conn: Connection) -> None:
    etag = conn.get(TILE).headers["etag"]
    answered = server.fast_path.answered
    not_modified = conn.get(TILE, f"If-None-Match: {etag}")
    assert (not_modified.status, not_modified.body, server.fast_path.answered) == (304, b"", answered + 1)
    assert not_modified.headers["etag"] == etag and "content-length" not in not_modified.headers
    # the same 304 through uvicorn and the app (Connection: close takes the normal way)
    closing = server.connect()
    through = closing.get(TILE, f"If-None-Match: {etag}", "Connection: close")
    assert through.headers.pop("connection") == "close" and closing.closed()
    assert through.same_as(not_modified) and server.fast_path.answered == answered + 1
    assert conn.get(TILE, 'If-None-Match: "other"').status == 200 and server.fast_path.answered == answered + 2


def test_http_1_0_connection_close_and_head_take_the_normal_way(server: Server) -> None:
    warm = server.connect()
    first = warm.get(TILE)
    warm.get(TILE)
    answered = server.fast_path.answered
    for headers, version in ((("Connection: close",), "1.1"), ((), "1.0")):
        conn = server.connect()
        reply = conn.get(TILE, *headers, version=version)
        assert reply.headers.pop("connection") == "close" and conn.closed()
        assert reply.same_as(first)
        conn.close()
    head = warm.get(TILE, method="HEAD")
    assert head.status == 200 and head.body == b"" and head.headers["etag"] == first.headers["etag"]
    assert server.fast_path.answered == answered
    warm.close()


def test_pipelined_requests_are_answered_in_order(server: Server, conn: Connection) -> None:
    tile, other = conn.get(TILE), conn.get(OTHER_TILE)
    answered = server.fast_path.answered
    # cached, app, cached (queued behind the app's), app, cached — all in one write
    conn.send(request(TILE), request("/conformance"), request(OTHER_TILE), request("/conformance"), request(TILE))
    replies = [conn.read() for _ in range(5)]
    assert replies[0].same_as(tile) and replies[2].same_as(other) and replies[4].same_as(tile)
    assert [r.headers["content-type"] for r in replies[1::2]] == ["application/json"] * 2
    assert b"conformsTo" in replies[1].body and replies[1].same_as(replies[3])
    assert server.fast_path.answered >= answered + 1  # the first one at least; the queued ones wait their turn
    assert conn.get(TILE).same_as(tile)  # and the connection goes on
    answered = server.fast_path.answered
    conn.send(request(TILE), request(OTHER_TILE), request(TILE))  # nothing in flight: each written at once
    assert [conn.read().same_as(expected) for expected in (tile, other, tile)] == [True] * 3
    assert server.fast_path.answered == answered + 3


def test_an_empty_tile_is_repeated_as_204_without_a_body(server: Server, conn: Connection) -> None:
    first = conn.get(EMPTY_TILE)
    answered = server.fast_path.answered
    again = conn.get(EMPTY_TILE)
    assert first.status == 204 and again.same_as(first) and server.fast_path.answered == answered + 1
    assert "content-length" not in again.headers and "transfer-encoding" not in again.headers
    assert conn.get(TILE).status == 200  # the connection's framing is intact


def test_an_access_line_to_log_takes_the_normal_way(server: Server, conn: Connection) -> None:
    """pytest listens on uvicorn's access logger; at INFO the base class must write its line."""
    access = logging.getLogger("uvicorn.access")
    conn.get(TILE)
    level, answered = access.level, server.fast_path.answered
    access.setLevel(logging.INFO)
    try:
        assert conn.get(TILE).status == 200 and server.fast_path.answered == answered
    finally:
        access.setLevel(level)
    assert conn.get(TILE).status == 200 and server.fast_path.answered == answered + 1


def test_other_urls_are_not_affected(server: Server, conn: Connection) -> None:
    answered, calls = server.fast_path.answered, server.app.calls
    for _ in range(2):
        reply = conn.get("/conformance")
        assert reply.status == 200 and b"conformsTo" in reply.body
    assert conn.get("/no/such/page").status == 404
    assert (server.fast_path.answered, server.app.calls) == (answered, calls + 3)


@pytest.mark.slow  # publishes its own releases on the embedded store (~2-3 s each)
def test_a_new_release_is_never_answered_with_the_old_tile(server: Server, conn: Connection, store_url: str) -> None:
    old = conn.get(TILE)
    assert conn.get(TILE).same_as(old)
    with open_store(store_url) as store:
        store.publish(ReleaseDraft([buildings(2)], srid=4490))
    answered = server.fast_path.answered
    assert wait_until(lambda: conn.get(TILE).headers["etag"] != old.headers["etag"])
    new = conn.get(TILE)  # now the new release's, repeated by the protocol again
    assert new.body != old.body and conn.get(TILE).same_as(new)
    assert server.fast_path.answered == answered + 2 and len(server.fast_path) >= 1


def test_without_a_fast_path_the_protocol_is_uvicorns() -> None:
    async def bare(scope: Any, receive: Any, send: Any) -> None:  # pragma: no cover - never called
        pass

    assert find_fast_path(bare) is None
    assert find_fast_path(uvicorn.middleware.proxy_headers.ProxyHeadersMiddleware(bare)) is None  # type: ignore[arg-type]
    fast = TileFastPath(bare, lambda: 1)
    assert find_fast_path(uvicorn.middleware.proxy_headers.ProxyHeadersMiddleware(Counting(fast))) is fast  # type: ignore[arg-type]


def test_cim_serve_uses_the_protocol() -> None:
    from ogcapi.server import http_protocol

    assert http_protocol() is TileProtocol
