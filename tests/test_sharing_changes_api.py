"""The change feed over HTTP (``GET /collections/{id}/changes``), on both stores: a department applies
it page by page (following the next links) to its copy of release N and gets release M, and the
current release with API edits (Part 4); links, OpenAPI, restricted layers, bad input as OGC
exception JSON."""

from __future__ import annotations

import time
from typing import Any, Iterator
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from cim.crs import CRS84_URI
from cim.store import ReleaseDraft, open_store
from support.change_feeds import apply_feature, assert_same_copy, copy_of, publish_three_releases, release_three
from support.planning_city import geojson_box
from support.postgis import BACKENDS, backend_store
from support.server import app_client
from test_api_edits import pem
from test_auth_access import bearer, client, publish, restricted_parcels

KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def editor() -> dict[str, str]:
    claims = {"sub": "planner-1", "roles": ["editor"], "exp": int(time.time()) + 600}
    return {"Authorization": f"Bearer {jwt.encode(claims, KEY, algorithm='RS256')}"}


@pytest.fixture(scope="module", params=BACKENDS)
def reader(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, str]]:
    """The app over releases 1..3 of the planned city, for the tests that only read."""
    with backend_store(request, "changes_api", tmp_path_factory.mktemp("changes_api")) as url:
        publish_three_releases(url)
        with app_client(url) as c:
            yield c, url


@pytest.fixture
def api(store_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, str]]:
    """The app over releases 1..3, for tests that edit or prune (an editor token verifies)."""
    publish_three_releases(store_url)
    monkeypatch.setenv("CIM_JWT_PUBLIC_KEY", pem(KEY))
    with app_client(store_url) as c:
        yield c, store_url


def local(href: str) -> str:
    return href.replace("http://testserver", "")


def whole_feed(client: Any, path: str) -> list[dict[str, Any]]:
    """Every feature of the feed starting at ``path``, following next links."""
    features, seen = [], set()
    while path:
        response = client.get(path)
        assert response.status_code == 200, response.text[:400]
        assert response.headers["content-type"].startswith("application/geo+json")
        doc = response.json()
        assert doc["numberReturned"] == len(doc["features"]) and doc["type"] == "FeatureCollection"
        features.extend(doc["features"])
        links = {link["rel"]: link["href"] for link in doc["links"]}
        assert "self" in links
        path = local(links["next"]) if "next" in links else ""
        assert path not in seen
        seen.add(path)
    return features


def test_a_department_keeps_its_copy_in_step(reader) -> None:
    client, url = reader
    with open_store(url) as store:
        copy = copy_of(store.read_frame("buildings", release=1))
        for feature in whole_feed(client, "/collections/buildings/changes?from=1&to=3&limit=3"):
            apply_feature(copy, feature)
        assert_same_copy(copy, copy_of(store.read_frame("buildings", release=3)))


def test_document_from_to_and_crs(reader) -> None:
    client, _ = reader
    response = client.get("/collections/buildings/changes", params={"from": 2, "limit": 2})
    doc = response.json()
    assert (doc["from"], doc["to"], doc["numberMatched"], doc["numberReturned"]) == (2, 3, 7, 2)
    assert response.headers["Content-Crs"] == f"<{CRS84_URI}>"
    nxt = parse_qs(urlsplit(next(link["href"] for link in doc["links"] if link["rel"] == "next")).query)
    assert nxt["from"] == ["2"] and nxt["to"] == ["3"] and nxt["limit"] == ["2"] and nxt["cursor"]
    lon, lat = doc["features"][0]["geometry"]["coordinates"][0][0][0]
    assert 116 < lon < 118 and 39 < lat < 40
    flipped = client.get("/collections/buildings/changes", params={"from": 2, "limit": 2, "crs": "http://www.opengis.net/def/crs/EPSG/0/4326"})
    assert flipped.headers["Content-Crs"] == "<http://www.opengis.net/def/crs/EPSG/0/4326>"
    assert flipped.json()["features"][0]["geometry"]["coordinates"][0][0][0] == [lat, lon]
    assert "crs=" in next(link["href"] for link in flipped.json()["links"] if link["rel"] == "next")
    empty = client.get("/collections/buildings/changes", params={"from": 2, "to": 2}).json()
    assert empty["features"] == [] and empty["numberMatched"] == 0


def test_feed_to_the_current_release_includes_api_edits(api) -> None:
    client, url = api
    items = client.get("/collections/parcels/items", params={"limit": 10}).json()["features"]
    by_id = {f["properties"]["source_id"]: f["id"] for f in items}
    assert client.patch(f"/collections/parcels/items/{by_id['P1']}", json={"properties": {"land_use": "G1"}}, headers=editor()).status_code == 204
    assert client.delete(f"/collections/parcels/items/{by_id['P3']}", headers=editor()).status_code == 204
    body = {"type": "Feature", "geometry": geojson_box(100, 100, 150, 150),
            "properties": {"parcel_id": "P9", "land_use": "R2", "area_m2": 2500.0, "source_id": "api-9"}}  # fmt: skip
    assert client.post("/collections/parcels/items", json=body, headers=editor()).status_code == 201
    feed = whole_feed(client, "/collections/parcels/changes?from=3&limit=1")
    assert {f["properties"]["source_id"]: f["change"]["type"] for f in feed} == {"P1": "changed", "P3": "removed", "api-9": "added"}
    with open_store(url) as store:
        copy = copy_of(store.read_frame("parcels", release=1))
        for feature in whole_feed(client, "/collections/parcels/changes?from=1&limit=2"):
            apply_feature(copy, feature)
        assert_same_copy(copy, copy_of(store.read_frame("parcels")))


def test_links_and_openapi(reader) -> None:
    client, _ = reader
    links = client.get("/collections/buildings", params={"f": "json"}).json()["links"]
    feed = [link for link in links if link["rel"] == "changes"]
    assert feed and feed[0]["href"].endswith("/collections/buildings/changes") and feed[0]["title"]
    listed = client.get("/collections", params={"f": "json"}).json()["collections"]
    assert all(any(link["rel"] == "changes" for link in c["links"]) for c in listed if c["id"] == "parcels")
    spec = client.get("/openapi", params={"f": "json"}).json()
    operation = spec["paths"]["/collections/{collectionId}/changes"]["get"]
    assert {p["name"] for p in operation["parameters"]} >= {"collectionId", "from", "to", "limit", "cursor", "crs"}
    assert "$ref" not in str(operation)


BAD = [
    ("", 400, "from is required"),
    ("from=abc", 400, "from must be an integer"),
    ("from=-1", 400, "from must be an integer"),
    ("from=0", 400, "from must be between"),
    ("from=99999999999", 400, "from must be an integer"),
    ("from=１", 400, "from must be an integer"),
    ("from=3&to=2", 400, "forward"),
    ("from=1&to=9", 404, "releases kept: 1, 2, 3"),
    ("from=1&limit=0", 400, "limit"),
    ("from=1&limit=10001", 400, "limit"),
    ("from=1&cursor=%21%21", 400, "cursor"),
    ("from=1&cursor=" + "A" * 3000, 400, "cursor"),
    ("from=1&from=2", 400, "more than once"),
    ("from=1&bbox=1,2,3,4", 400, "unknown parameter"),
    ("from=1&crs=EPSG:9999", 400, "unsupported crs"),
    ("from=1&f=html", 400, "unsupported format"),
]


@pytest.mark.parametrize("query,status,message", BAD)
def test_bad_input_is_an_ogc_exception(reader, query, status, message) -> None:
    client, _ = reader
    response = client.get(f"/collections/buildings/changes?{query}")
    assert response.status_code == status, response.text[:300]
    body = response.json()
    assert set(body) >= {"code", "description"} and message in body["description"], body


def test_foreign_cursor_unknown_collection_and_pruned_release(api) -> None:
    client, url = api
    doc = client.get("/collections/buildings/changes", params={"from": 1, "to": 3, "limit": 1}).json()
    cursor = parse_qs(urlsplit(next(link["href"] for link in doc["links"] if link["rel"] == "next")).query)["cursor"][0]
    foreign = client.get("/collections/parcels/changes", params={"from": 1, "to": 3, "cursor": cursor})
    assert foreign.status_code == 400 and "another change feed" in foreign.json()["description"]
    assert client.get("/collections/trees/changes?from=1").status_code == 404
    with open_store(url) as store:
        store.publish(ReleaseDraft(layers=release_three(), srid=4326), keep=2)  # release 4; 1 and 2 pruned
    gone = client.get("/collections/buildings/changes?from=1")
    assert gone.status_code == 410 and "releases kept: 3, 4" in gone.json()["description"]


def test_restricted_layer_feed_needs_its_role(store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    publish(store_url, restricted_parcels())
    with client(store_url, monkeypatch) as c:
        assert c.get("/collections/parcels/changes?from=1").status_code == 401
        assert c.get("/collections/parcels/changes?from=1", headers=bearer("editor")).status_code == 403
        allowed = c.get("/collections/parcels/changes?from=1", headers=bearer("reader"))
        assert allowed.status_code == 200 and allowed.headers["Cache-Control"] == "private, no-cache"
        assert c.get("/collections/buildings/changes?from=1").status_code == 200
    from cim.store import _shared

    shared = _shared.pop(store_url, None)
    if shared is not None:
        shared.close()


def test_raster_and_live_collections_have_no_feed(api_client: Any) -> None:
    store = api_client.app.state.store
    number = store.current_number()
    names = [i.name for i in store.layers() if i.spec.kind == "raster" or i.spec.live]
    assert names
    for name in names:
        response = api_client.get(f"/collections/{name}/changes?from={number}")
        assert response.status_code == 400, response.text[:300]
        assert "no change feed" in response.json()["description"] or "live layer" in response.json()["description"]
    links = api_client.get("/collections/warnings", params={"f": "json"}).json()["links"]
    assert not any(link["rel"] == "changes" for link in links)
