"""The tile fast path (ogcapi/tiles_fastpath.py): repeats marked tile responses from memory while their
release is current, and nothing else.

The middleware is tested over a small ASGI app that counts what reaches it, then over the real app
on both stores: a repeated tile is byte- and header-identical to the first answer."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ogcapi.tiles_fastpath import TileFastPath, mark_release
from support.tiles import decode, tile_at, tile_path


class Inner:
    """An ASGI app answering ``/tile`` (marked with ``release``), ``/other`` (not marked), ``/error``."""

    def __init__(self) -> None:
        self.calls = 0
        self.release = 1
        self.generation = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self.calls += 1
        path = scope["path"]
        status = 404 if path == "/error" else 200
        body = f"{path} r{self.release} e{self.generation} {scope['query_string'].decode()}".encode()
        if path == "/tile":
            mark_release(scope, self.release)
        elif path == "/edited":  # a tile of a tileset with an editable layer
            mark_release(scope, self.release, self.generation)
        headers = [(b"content-type", b"application/x-test"), (b"etag", f'"r{self.release}"'.encode()),
                   (b"cache-control", b"public, max-age=60"), (b"content-length", str(len(body)).encode())]  # fmt: skip
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def call(app: TileFastPath, path: str, method: str = "GET", query: bytes = b"", **headers: str) -> tuple[int, dict[str, str], bytes]:
    scope = {"type": "http", "method": method, "path": path, "query_string": query,
             "headers": [(k.replace("_", "-").lower().encode(), v.encode()) for k, v in headers.items()]}  # fmt: skip
    messages: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    asyncio.run(app(scope, receive, send))
    start = messages[0]
    body = b"".join(m.get("body", b"") for m in messages[1:])
    return start["status"], {k.decode(): v.decode() for k, v in start["headers"]}, body


@pytest.fixture
def inner() -> Inner:
    return Inner()


def test_a_marked_response_is_repeated_while_its_release_is_current(inner: Inner) -> None:
    current: list[int | None] = [1]
    app = TileFastPath(inner, lambda: current[0])
    first = call(app, "/tile", query=b"release=1")
    assert call(app, "/tile", query=b"release=1") == first and inner.calls == 1
    assert call(app, "/tile", query=b"f=mvt")[2] == b"/tile r1 e0 f=mvt" and inner.calls == 2  # another query
    assert call(app, "/tile", query=b"release=1", accept="image/png") == first and inner.calls == 3  # another Accept

    current[0] = None  # the store cannot tell without a query: the route answers (and re-reads it)
    assert call(app, "/tile", query=b"release=1") == first and inner.calls == 4
    inner.release = current[0] = 2  # a new release: never the old answer
    status, headers, body = call(app, "/tile", query=b"release=1")
    assert (status, headers["etag"], body) == (200, '"r2"', b"/tile r2 e0 release=1") and inner.calls == 5
    assert call(app, "/tile", query=b"release=1")[2] == b"/tile r2 e0 release=1" and inner.calls == 5


def test_a_tile_marked_with_an_edit_generation_is_repeated_only_while_it_is_the_stores(inner: Inner) -> None:
    generation: list[int | None] = [0]
    app = TileFastPath(inner, lambda: 1, lambda: generation[0])
    first = call(app, "/edited")
    assert call(app, "/edited") == first and inner.calls == 1
    inner.generation = generation[0] = 1  # an edit
    assert call(app, "/edited")[2] == b"/edited r1 e1 " and inner.calls == 2
    assert call(app, "/edited")[2] == b"/edited r1 e1 " and inner.calls == 2
    generation[0] = None  # the store cannot tell without a query: the route answers
    call(app, "/edited")
    assert inner.calls == 3
    assert call(app, "/tile") == call(app, "/tile") and inner.calls == 4  # not tied to edits


def test_if_none_match_gets_304_with_the_etag(inner: Inner) -> None:
    app = TileFastPath(inner, lambda: 1)
    call(app, "/tile")
    status, headers, body = call(app, "/tile", if_none_match='"r1"')
    assert (status, body) == (304, b"") and inner.calls == 1
    assert headers == {"etag": '"r1"', "cache-control": "public, max-age=60"}
    assert call(app, "/tile", if_none_match='W/"r0", "r1"')[0] == 304
    assert call(app, "/tile", if_none_match='"r0"')[0] == 200 and inner.calls == 1


def test_unmarked_failed_and_non_get_responses_always_reach_the_app(inner: Inner) -> None:
    app = TileFastPath(inner, lambda: 1)
    for path, method in (("/other", "GET"), ("/error", "GET"), ("/tile", "HEAD"), ("/tile", "POST")):
        before = inner.calls
        call(app, path, method)
        call(app, path, method)
        assert inner.calls == before + 2, (path, method)
    assert len(app) == 0


def test_a_response_marked_after_it_started_is_not_kept() -> None:
    async def late(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        mark_release(scope, 1)
        await send({"type": "http.response.body", "body": b"streamed"})

    app = TileFastPath(late, lambda: 1)
    assert call(app, "/tile")[2] == b"streamed"
    assert len(app) == 0


def test_memory_is_bounded_oldest_first(inner: Inner) -> None:
    app = TileFastPath(inner, lambda: 1, max_bytes=36)
    for n in range(4):  # bodies of 15 bytes: two fit
        call(app, "/tile", query=f"n={n}".encode())
    assert len(app) == 2
    calls = inner.calls
    call(app, "/tile", query=b"n=3")
    call(app, "/tile", query=b"n=2")
    assert inner.calls == calls
    call(app, "/tile", query=b"n=0")
    assert inner.calls == calls + 1


def test_repeated_tiles_of_the_real_app_are_identical(api_client: TestClient) -> None:
    path = tile_path("/collections/buildings/tiles", "WebMercatorQuad", tile_at("WebMercatorQuad", 15))  # Helsinki
    first = api_client.get(path)
    again = api_client.get(path)
    assert first.status_code == 200 and decode(first.content)["buildings"]["features"]
    assert (again.status_code, again.content, dict(again.headers)) == (first.status_code, first.content, dict(first.headers))
    etag = first.headers["etag"]
    not_modified = api_client.get(path, headers={"If-None-Match": etag})
    assert not_modified.status_code == 304 and not_modified.headers["etag"] == etag
