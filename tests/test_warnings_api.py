"""POST /warnings and the warnings collection over HTTP, on both stores: roles, 201 + Location, the
same alert again, the hostile corpus (each a 4xx naming the problem, nothing stored, the server
unharmed), tiles before and after a cancel, the OpenAPI description, queryables' interval roles."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric import rsa

from support.server import app_client
from support.tiles import decode, tile_at, tile_path
from support.warnings import CORPUS, cap, fixture, publish_city, square_lonlat
from test_api_edits import pem, token

CAP = {"Content-Type": "application/cap+xml"}
#: a 2 km square in Heping district, Tianjin
RING = square_lonlat(117.19, 39.12, 117.21, 39.14)


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def app(store_url: str, rsa_key: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    publish_city(store_url)
    monkeypatch.setenv("CIM_JWT_PUBLIC_KEY", pem(rsa_key))
    with app_client(store_url) as client:
        yield client


def publisher(key: Any, **kwargs: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(key, sub='city-brain', roles=('warning-publisher',), **kwargs)}"}


def stored(app: Any) -> int:
    page = app.get("/collections/warnings/items", params={"f": "json", "datetime": "1970-01-01T00:00:00Z/..", "limit": 1000})
    assert page.status_code == 200
    return page.json()["numberMatched"]


def in_force_now(identifier: str) -> bytes:
    now = datetime.now(UTC)
    return cap(identifier, ring=RING, sent=now - timedelta(minutes=5), expires=now + timedelta(hours=2))


def test_a_publisher_posts_cap_and_finds_it_at_its_location(app, rsa_key) -> None:
    response = app.post("/warnings", content=in_force_now("TJ-API-1"), headers={**CAP, **publisher(rsa_key)})
    assert response.status_code == 201, response.text
    location = response.headers["location"]
    assert location.startswith("http://testserver/collections/warnings/items/")
    assert response.json()["properties"]["identifier"] == "TJ-API-1"
    item = app.get(location.removeprefix("http://testserver"), params={"f": "json"})
    assert item.status_code == 200 and item.json()["properties"]["state"] == "issued"
    now = app.get("/collections/warnings/items", params={"f": "json"}).json()
    assert [f["properties"]["identifier"] for f in now["features"]] == ["TJ-API-1"]
    again = app.post("/warnings", content=in_force_now("TJ-API-1").replace(b"", b""), headers={**CAP, **publisher(rsa_key)})
    # a second document with the same identifier: sent differs by the clock, so a conflict, or the same: 200
    assert again.status_code in (200, 409)
    same = app.post("/warnings", content=fixture("polygon.xml"), headers={**CAP, **publisher(rsa_key)})
    twice = app.post("/warnings", content=fixture("polygon.xml"), headers={**CAP, **publisher(rsa_key)})
    assert same.status_code == 201 and twice.status_code == 200
    assert twice.headers["location"] == same.headers["location"]


def test_geojson_warnings_are_posted_too(app, rsa_key) -> None:
    response = app.post("/warnings", content=fixture("warning.geojson"),
                        headers={"Content-Type": "application/geo+json", **publisher(rsa_key)})  # fmt: skip
    assert response.status_code == 201, response.text
    assert response.json()["properties"]["colour"] == "red"


def test_publishing_needs_the_role(app, rsa_key) -> None:
    body = in_force_now("TJ-API-ROLE")
    missing = app.post("/warnings", content=body, headers=CAP)
    assert missing.status_code == 401 and missing.headers["www-authenticate"].startswith("Bearer")
    editor = app.post("/warnings", content=body, headers={**CAP, "Authorization": f"Bearer {token(rsa_key)}"})
    assert editor.status_code == 403 and "warning-publisher" in editor.json()["description"]
    assert stored(app) == 0


def test_the_hostile_corpus_over_http(app, rsa_key) -> None:
    """Every document of tests/corpus/warnings/ POSTed: its 4xx, an OGC exception naming the problem
    (the parser's own message when sent with its own media type), nothing stored, the server answering."""
    expected_all = yaml.safe_load((CORPUS / "expected.yml").read_text())
    assert len(expected_all) >= 40
    headers = publisher(rsa_key)
    for name, expected in sorted(expected_all.items()):
        media_type = expected.get("media_type") or {".xml": "application/cap+xml", ".geojson": "application/geo+json"}.get(
            Path(name).suffix, "application/xml"
        )
        response = app.post("/warnings", content=(CORPUS / name).read_bytes(), headers={"Content-Type": media_type, **headers})
        assert response.status_code == expected["status"], (name, response.text)
        body = response.json()
        assert body["code"] and body["description"], (name, body)
        if Path(name).suffix != ".txt":
            assert expected["message"] in body["description"], (name, body)
    assert stored(app) == 0
    assert app.get("/collections/warnings", params={"f": "json"}).status_code == 200


def test_an_oversized_body_is_refused_before_it_is_read(app, rsa_key) -> None:
    big = b"<alert>" + b" " * (10 * 1024 * 1024) + b"</alert>"
    response = app.post("/warnings", content=big, headers={**CAP, **publisher(rsa_key)})
    assert response.status_code == 413 and "bytes" in response.json()["description"]  # the request guard's 5 MiB first
    small = app.post("/warnings", content=b"<alert>" + b" " * (2 * 1024 * 1024) + b"</alert>", headers={**CAP, **publisher(rsa_key)})
    assert small.status_code == 413 and "CIM_LIMIT_WARNING_BYTES" in small.json()["description"]
    text = app.post("/warnings", content=b"hello", headers={"Content-Type": "text/plain", **publisher(rsa_key)})
    assert text.status_code == 415


def test_a_cancelled_warning_leaves_the_tiles_at_once(app, rsa_key) -> None:
    now = datetime.now(UTC)
    sent = now - timedelta(minutes=5)
    alert = cap("TJ-TILE-1", ring=RING, sent=sent, expires=now + timedelta(hours=2))
    assert app.post("/warnings", content=alert, headers={**CAP, **publisher(rsa_key)}).status_code == 201
    tile = tile_at("WebMercatorQuad", 13, 117.20, 39.13)
    for prefix in ("/collections/warnings/tiles", "/tiles"):
        before = app.get(tile_path(prefix, "WebMercatorQuad", tile))
        assert before.status_code == 200, before.text
        layers = decode(before.content)
        assert [f["properties"]["identifier"] for f in layers["warnings"]["features"]] == ["TJ-TILE-1"]
    etag = before.headers["etag"]
    cancel = cap("TJ-TILE-1-C", msg_type="Cancel", references=(("TJ-TILE-1", sent),))
    assert app.post("/warnings", content=cancel, headers={**CAP, **publisher(rsa_key)}).status_code == 201
    for prefix in ("/collections/warnings/tiles", "/tiles"):
        after = app.get(tile_path(prefix, "WebMercatorQuad", tile))
        assert after.status_code in (200, 204)
        assert "warnings" not in (decode(after.content) if after.content else {})
    assert after.headers.get("etag") != etag
    assert app.get(tile_path("/tiles", "WebMercatorQuad", tile), headers={"If-None-Match": etag}).status_code != 304


def test_openapi_describes_posting_a_warning(app) -> None:
    doc = app.get("/openapi", params={"f": "json"}).json()
    post = doc["paths"]["/warnings"]["post"]
    assert set(post["requestBody"]["content"]) >= {"application/cap+xml", "application/geo+json"}
    assert {"201", "400", "401", "403", "409", "413", "415"} <= set(post["responses"])
    text = str(doc)
    assert "'$ref': 'http" not in text and "#/components/schemas/exception" in text
    assert "exception" in doc["components"]["schemas"]


def test_queryables_mark_the_validity_interval_and_the_extent_follows(app, rsa_key) -> None:
    queryables = app.get("/collections/warnings/queryables", params={"f": "json"}).json()["properties"]
    assert queryables["valid_from"]["x-ogc-role"] == "primary-interval-start"
    assert queryables["valid_until"]["x-ogc-role"] == "primary-interval-end"
    assert app.post("/warnings", content=fixture("polygon.xml"), headers={**CAP, **publisher(rsa_key)}).status_code == 201
    extent = app.get("/collections/warnings", params={"f": "json"}).json()["extent"]
    assert extent["temporal"]["interval"] == [["2026-12-03T00:30:00+00:00", "2026-12-03T12:00:00+00:00"]]
    assert extent["spatial"]["bbox"][0] == pytest.approx([117.15, 39.10, 117.25, 39.20])
    instant = app.get("/collections/warnings/items", params={"f": "json", "datetime": "2026-12-03T01:00:00Z"}).json()
    assert instant["numberMatched"] == 1
    before = app.get("/collections/warnings/items", params={"f": "json", "datetime": "2026-12-03T00:29:59Z"}).json()
    assert before["numberMatched"] == 0


def test_an_expired_warning_leaves_the_tiles_without_any_write(app, rsa_key) -> None:
    now = datetime.now(UTC)
    expires = (now + timedelta(seconds=3)).replace(microsecond=0) + timedelta(seconds=1)
    alert = cap("TJ-TILE-EXP", ring=RING, sent=now - timedelta(minutes=5), expires=expires)
    assert app.post("/warnings", content=alert, headers={**CAP, **publisher(rsa_key)}).status_code == 201
    path = tile_path("/tiles", "WebMercatorQuad", tile_at("WebMercatorQuad", 13, 117.20, 39.13))
    before = app.get(path)
    assert "warnings" in decode(before.content)
    time.sleep(max(0.0, (expires - datetime.now(UTC)).total_seconds()) + 0.2)
    after = app.get(path)  # the same release, no write since: the expiry alone changes the tile
    assert "warnings" not in (decode(after.content) if after.content else {})
    assert after.headers.get("etag") != before.headers["etag"]
