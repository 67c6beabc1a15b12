"""Hostile READ requests on both stores: each is refused with a clear 4xx naming what is wrong, never
a crash, never a 5xx, never database text; server errors name only a request id (issue #10).

The 2,000-level filter that segfaulted the native CQL2 parser is sent to a server in a child
process, so that a regression kills the child, not pytest; the test then checks the child lives.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from cim.errors import CIMError, InvalidQuery, StoreError
from cim.limits import limits
from cim.store import parse_filter
from support.server import free_port

ITEMS = "/collections/buildings/items"
ROOT = Path(__file__).resolve().parent.parent
#: database error texts a client must never read
INTERNALS = ("Error:", "Exception", "Traceback", "duckdb", "psycopg", "LinearRing", "INT64", "SQL")


def nested(levels: int, inner: str = "floors>1") -> str:
    return "(" * levels + inner + ")" * levels


def assert_ogc_4xx(response: httpx.Response, status: int, *words: str) -> dict[str, Any]:
    assert response.status_code == status, (response.status_code, response.text[:500])
    doc = response.json()
    assert set(doc) == {"code", "type", "description"}, doc
    for word in words:
        assert word in doc["description"], (word, doc)
    for secret in INTERNALS:
        assert secret not in doc["description"], (secret, doc)
    return doc


# --- the native parser's crash: in a child server process --------------------------------------


@pytest.fixture(scope="module")
def child_server(
    demo_store_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[subprocess.Popen[bytes], str, Path]]:
    """``cim serve``'s app (uvicorn) over the demo store in a child process (its log in a file)."""
    log = tmp_path_factory.mktemp("child") / "server.log"
    port = free_port()
    env = {**os.environ, "CIM_STORE": demo_store_url, "CIM_SERVER_URL": f"http://127.0.0.1:{port}"}
    child = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "ogcapi.app:app_from_environment",
         "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log.open("wb"),
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        if child.poll() is not None:
            pytest.fail(f"child server died at start: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/conformance", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            child.kill()
            pytest.fail("child server did not start")
        time.sleep(0.2)
    yield child, url, log
    child.terminate()
    child.wait(timeout=20)


def test_2000_nested_parentheses_are_400_and_the_server_lives(
    child_server: tuple[subprocess.Popen[bytes], str, Path],
) -> None:
    child, url, log = child_server
    response = httpx.get(f"{url}{ITEMS}", params={"filter": nested(2000)}, timeout=30)
    assert_ogc_4xx(response, 400, "filter", "nested", str(limits().max_filter_depth))
    deep_json = "[" * 2000 + "]" * 2000  # percent-encoded: 12,000 bytes, within max_query_bytes
    response = httpx.get(f"{url}{ITEMS}", params={"filter": deep_json, "filter-lang": "cql2-json"}, timeout=30)
    assert_ogc_4xx(response, 400, "filter", "nested")
    assert child.poll() is None, f"the server process died: {log.read_text()[-2000:]}"
    response = httpx.get(f"{url}{ITEMS}", params={"filter": "floors>1", "limit": 1}, timeout=30)
    assert response.status_code == 200, log.read_text()[-3000:]


def test_filter_within_the_depth_limit_still_works(api_client: TestClient) -> None:
    deepest = limits().max_filter_depth - 1  # the comparison's own parentheses are not there: depth = levels
    response = api_client.get(ITEMS, params={"filter": nested(deepest), "limit": 1})
    assert response.status_code == 200, response.text


def test_python_api_parse_refuses_deep_and_long_filters_before_parsing() -> None:
    with pytest.raises(InvalidQuery, match="nested 150 levels"):
        parse_filter(nested(150))
    with pytest.raises(InvalidQuery, match="nested"):
        parse_filter(_deep_json(150))
    with pytest.raises(InvalidQuery, match="bytes"):
        parse_filter("floors = 1" + " OR floors = 1" * 1000)
    assert parse_filter(nested(50)).source == nested(50)


def _deep_json(levels: int) -> dict[str, Any]:
    expr: dict[str, Any] = {"op": ">", "args": [{"property": "floors"}, 1]}
    for _ in range(levels):
        expr = {"op": "not", "args": [expr]}
    return expr


# --- sizes and characters: the request guard -------------------------------------------------------


def test_query_string_too_long_is_414(api_client: TestClient) -> None:
    response = api_client.get(ITEMS, params={"name": "x" * (limits().max_query_bytes + 1)})
    assert_ogc_4xx(response, 414, "query string", str(limits().max_query_bytes))


def test_filter_too_long_is_414(api_client: TestClient) -> None:
    text = "floors = 1" + " OR floors = 1" * (limits().max_filter_bytes // 14 + 1)
    response = api_client.get(ITEMS, params={"filter": text})
    assert_ogc_4xx(response, 414, "filter", str(limits().max_filter_bytes))


@pytest.mark.parametrize(
    ("params", "name"),
    [({"name": "a\x00b"}, "name"), ({"filter": "name = 'a\x00'"}, "filter"), ({"datetime": "\x00"}, "datetime"),
     ({"f\x00": "1"}, "f")],
)  # fmt: skip
def test_nul_in_a_query_parameter_is_400_naming_it(api_client: TestClient, params: dict[str, str], name: str) -> None:
    assert_ogc_4xx(api_client.get(ITEMS, params=params), 400, name, "NUL")


def test_body_larger_than_the_limit_is_413_before_reading(api_client: TestClient) -> None:
    size = limits().max_body_bytes + 1
    response = api_client.post(ITEMS, content=b"x", headers={"Content-Length": str(size), "Content-Type": "application/geo+json"})
    assert_ogc_4xx(response, 413, str(limits().max_body_bytes))


def test_streamed_body_is_cut_at_the_limit() -> None:
    """A body without Content-Length (chunked) is counted while it streams."""
    from ogcapi.errors import install_handlers
    from ogcapi.request_guard import RequestGuard

    async def echo(request: Request) -> JSONResponse:
        return JSONResponse({"bytes": len(await request.body())})

    app = FastAPI(routes=[Route("/echo", echo, methods=["POST"])])
    app.add_middleware(RequestGuard)
    install_handlers(app)
    chunk = b"x" * 65536

    def body(chunks: int) -> Iterator[bytes]:
        yield from (chunk for _ in range(chunks))

    with TestClient(app) as client:
        assert client.post("/echo", content=body(2)).json() == {"bytes": 2 * len(chunk)}
        over = limits().max_body_bytes // len(chunk) + 2
        response = client.post("/echo", content=body(over))
    assert response.status_code == 413 and response.json()["code"] == "ContentTooLarge"


# --- typed parameters: ogcapi/parameters.py ---------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "status", "words"),
    [
        ("/tiles/WebMercatorQuad/¹/0/0", 404, ("tile matrix",)),  # int('¹') crashed: 500
        ("/tiles/WebMercatorQuad/١/0/0", 404, ("tile matrix",)),  # Arabic-Indic 1 was read as 1
        ("/tiles/WebMercatorQuad/0/0/١", 400, ("tileCol",)),
        ("/tiles/WebMercatorQuad/0/٠/0", 400, ("tileRow",)),
        ("/collections/buildings/tiles/WebMercatorQuad/0/0/0%C2%B2", 400, ("tileCol",)),
        ("/tiles/WebMercatorQuad/0/0/" + "9" * 40, 400, ("tileCol",)),
        ("/tiles/WebMercatorQuad/" + "1" * 30 + "/0/0", 404, ("tile matrix",)),
        ("/collections/buildings/items/١", 404, ("no feature",)),
    ],
)
def test_unicode_and_huge_digits_in_paths(api_client: TestClient, path: str, status: int, words: tuple[str, ...]) -> None:
    assert_ogc_4xx(api_client.get(path), status, *words)


def test_ascii_tile_addresses_still_work(api_client: TestClient) -> None:
    assert api_client.get("/tiles/WebMercatorQuad/14/4742/9327").status_code in (200, 204)
    assert api_client.get("/tiles/WebMercatorQuad/014/4742/9327").status_code in (200, 204)


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"bbox": "nan,nan,nan,nan"}, ("bbox",)),
        ({"bbox": "inf,0,1,1"}, ("bbox",)),
        ({"bbox": "-Infinity,0,1,1"}, ("bbox",)),
        ({"bbox": "1e999,0,1,1"}, ("bbox", "finite")),
        ({"bbox": "0,0,1,1,2"}, ("bbox", "4 or 6")),
        ({"bbox": "0,50,1,40"}, ("bbox", "minimum y")),
        ({"bbox": "500,0,501,1"}, ("bbox", "longitude")),
        ({"bbox": "0,-95,1,1"}, ("bbox", "latitude")),
        ({"bbox": "٢٤,60,25,61"}, ("bbox",)),
        ({"bbox": "0x10,0,1,1"}, ("bbox",)),
        ({"offset": "9223372036854775808"}, ("offset",)),
        ({"offset": "-1"}, ("offset",)),
        ({"offset": "١"}, ("offset",)),
        ({"limit": "9223372036854775808"}, ("limit", str(limits().max_features))),
        ({"limit": str(limits().max_features + 1)}, ("limit", str(limits().max_features))),
        ({"limit": "0"}, ("limit",)),
        ({"limit": "²"}, ("limit",)),
        ({"datetime": "2024-13-45"}, ("datetime",)),
        ({"cursor": base64.urlsafe_b64encode(b"[" * 5000).decode()}, ("cursor",)),
        ({"cursor": base64.urlsafe_b64encode(json.dumps({"s": [], "k": [], "f": 1, "p": 10**30}).encode()).decode()},
         ("cursor",)),
    ],
)  # fmt: skip
def test_bad_items_parameters_are_400_naming_them(api_client: TestClient, params: dict[str, str], words: tuple[str, ...]) -> None:
    assert_ogc_4xx(api_client.get(ITEMS, params=params), 400, *words)


def test_valid_items_parameters_still_work(api_client: TestClient) -> None:
    response = api_client.get(
        ITEMS, params={"bbox": "24.9,60.1,25.0,60.2", "limit": str(limits().max_features), "offset": "0"}
    )
    assert response.status_code == 200, response.text
    assert api_client.get(ITEMS, params={"bbox": "24.9,60.1,0,25.0,60.2,100", "limit": 1}).status_code == 200



def test_a_raised_max_features_is_the_maximum_for_pygeoapi_too(demo_store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """pygeoapi checks ``limit`` again after ogcapi/parameters.py: it takes the same maximum."""
    from ogcapi.app import create_app

    monkeypatch.setenv("CIM_LIMIT_MAX_FEATURES", "20000")
    limits.cache_clear()
    try:
        with TestClient(create_app(demo_store_url, server_url="http://testserver")) as client:
            response = client.get("/collections/pois/items", params={"limit": "15000"})
            assert response.status_code == 200, response.text
            assert response.json()["numberReturned"] == response.json()["numberMatched"]
            assert_ogc_4xx(client.get("/collections/pois/items", params={"limit": "20001"}), 400, "limit", "20000")
    finally:
        monkeypatch.delenv("CIM_LIMIT_MAX_FEATURES")
        limits.cache_clear()

# --- server errors: a request id, no internals --------------------------------------------------------


def test_store_error_is_503_with_a_request_id_and_no_database_text(caplog: pytest.LogCaptureFixture) -> None:
    from ogcapi.errors import REQUEST_ID, cim_error_response

    REQUEST_ID.set("feedc0de12345678")
    with caplog.at_level("ERROR"):
        response = cim_error_response(StoreError("query failed: Catalog Error: Table secret_table does not exist"))
    body = json.loads(response.body)
    assert response.status_code == 503 and response.headers["X-Request-Id"] == "feedc0de12345678"
    assert "feedc0de12345678" in body["description"] and "secret_table" not in body["description"]
    assert any("feedc0de12345678" in r.getMessage() and r.exc_info for r in caplog.records)


def test_database_refusing_a_value_is_400() -> None:
    import duckdb

    from ogcapi.errors import cim_error_response

    try:
        duckdb.sql("SELECT CAST(9223372036854775808 AS BIGINT)").fetchall()
    except duckdb.Error as exc:
        error = StoreError(f"query failed: {exc}")
        error.__cause__ = exc
    response = cim_error_response(error)
    assert response.status_code == 400 and "INT64" not in json.loads(response.body)["description"]


def test_provider_hides_store_errors_from_pygeoapi_documents() -> None:
    from ogcapi.pygeoapi.provider import StoreUnavailable, _translate

    translated = _translate(StoreError("query failed: relation \"secret\" does not exist"))
    assert isinstance(translated, StoreUnavailable) and "secret" not in translated.user_msg
    assert "request id" in translated.user_msg


def test_unhandled_exception_is_500_with_request_id_and_recursion_is_400() -> None:
    from ogcapi.errors import install_handlers
    from ogcapi.request_guard import RequestGuard

    async def broken(request: Request) -> JSONResponse:
        raise KeyError("internal detail")

    async def deep(request: Request) -> JSONResponse:
        raise RecursionError("maximum recursion depth exceeded")

    async def cim_500(request: Request) -> JSONResponse:
        raise CIMError("secret internals")

    app = FastAPI(routes=[Route("/broken", broken), Route("/deep", deep), Route("/cim", cim_500)])
    app.add_middleware(RequestGuard)
    install_handlers(app)
    with TestClient(app, raise_server_exceptions=False) as client:
        for path in ("/broken", "/cim"):
            response = client.get(path)
            assert response.status_code == 500
            rid = response.headers["X-Request-Id"]
            assert rid in response.json()["description"]
            assert "internal detail" not in response.text and "KeyError" not in response.text
            assert "secret" not in response.text
        assert client.get("/deep").status_code == 400


# --- the OpenAPI document refers to nothing outside itself ----------------------------------------


def _resolve(doc: Any, pointer: str) -> Any:
    node = doc
    for part in pointer.lstrip("/").split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


def test_openapi_document_is_self_contained(api_client: TestClient) -> None:
    doc = api_client.get("/openapi", params={"f": "json"}).json()
    refs: list[str] = []
    stack: list[Any] = [doc]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                refs.append(node["$ref"])
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    assert len(refs) > 20
    for ref in set(refs):
        document, _, fragment = ref.partition("#")
        if document:  # a document on this server, which must answer it
            assert document.startswith("http://testserver/"), ref
            target = api_client.get(document).json()
        else:
            target = doc
        assert isinstance(_resolve(target, fragment), dict), ref


def test_like_pattern_ending_with_the_escape_character_is_400(api_client: TestClient) -> None:
    """Both databases refused it at query time with their own error (a 503 naming DuckDB's text)."""
    assert_ogc_4xx(api_client.get(ITEMS, params={"filter": "name LIKE 'a\\'"}), 400, "LIKE", "escape")
    assert api_client.get(ITEMS, params={"filter": "name LIKE 'a\\\\%'", "limit": 1}).status_code == 200
