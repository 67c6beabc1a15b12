"""``GET /collections/{id}/downloads/{format}`` on both stores, as a client sees it: ETag = sha256 of
the bytes, 304 on If-None-Match, Range, HEAD, Content-Disposition, ``?release=N``, an edit making a
new current file, 410 for a pruned release, OGC exception JSON for every bad request, eight
simultaneous requests for a new file all answered with it, ``enclosure`` links and the OpenAPI path,
and restricted layers needing their role."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Iterator

import anyio
import geopandas as gpd
import httpx
import pytest
from fastapi.testclient import TestClient

import cim.sharing.download_cache as download_cache
from cim.store import Edit, ReleaseDraft
from support.planning_city import publish_planning_city, release_layers
from support.postgis import BACKENDS, backend_store
from test_tiles_rasters import raster_store_url  # noqa: F401 - the fixture: a store with a DEM and imagery

GK = 4548
PATH = "/collections/{collectionId}/downloads/{format}"


def _client(url: str, cache: Path) -> Iterator[TestClient]:
    from ogcapi.app import create_app

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CIM_DOWNLOAD_CACHE", str(cache))
        with TestClient(create_app(url, server_url="http://testserver")) as client:
            yield client


@pytest.fixture(scope="module", params=BACKENDS)
def client(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """The planned city (EPSG:4548, releases 1 and 2) served; tests of this client only read."""
    directory = tmp_path_factory.mktemp("downloads_api")
    with backend_store(request, "downloads_api", directory) as url:
        publish_planning_city(url, srid=GK, releases=2)
        yield from _client(url, directory / "cache")


@pytest.fixture
def fresh(store_url: str, tmp_path: Path) -> Iterator[TestClient]:
    """The planned city served, for tests that edit it or publish."""
    publish_planning_city(store_url, srid=GK, releases=2)
    yield from _client(store_url, tmp_path / "cache")
    from cim.store import _shared

    shared = _shared.pop(store_url, None)
    if shared is not None:
        shared.close()


def assert_exception(response: httpx.Response, status: int, text: str = "") -> None:
    assert response.status_code == status, response.text[:300]
    body = response.json()
    assert set(body) == {"code", "type", "description"} and text in body["description"]


def test_download_headers_etag_range_head(client: TestClient) -> None:
    r = client.get("/collections/buildings/downloads/parquet")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/vnd.apache.parquet"
    etag = r.headers["etag"]
    assert etag == f'"{hashlib.sha256(r.content).hexdigest()}"'
    assert r.headers["content-disposition"] == 'attachment; filename="buildings-r2.parquet"'
    assert r.headers["cache-control"] == "public, no-cache"
    assert len(gpd.read_parquet(io.BytesIO(r.content))) == 7
    again = client.get("/collections/buildings/downloads/parquet", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
    assert client.get("/collections/buildings/downloads/parquet", headers={"If-None-Match": '"other"'}).status_code == 200
    part = client.get("/collections/buildings/downloads/parquet", headers={"Range": "bytes=0-3"})
    assert part.status_code == 206 and part.content == b"PAR1"
    assert part.headers["content-range"] == f"bytes 0-3/{len(r.content)}"
    head = client.head("/collections/buildings/downloads/parquet")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["etag"] == etag and head.headers["content-length"] == str(len(r.content))
    for fmt, media_type in (("gpkg", "application/geopackage+sqlite3"), ("fgb", "application/flatgeobuf")):
        r = client.get(f"/collections/roads/downloads/{fmt}")
        assert r.status_code == 200 and r.headers["content-type"] == media_type
        assert r.headers["etag"] == f'"{hashlib.sha256(r.content).hexdigest()}"'
        assert r.headers["content-disposition"] == f'attachment; filename="roads-r2.{fmt}"'


def test_a_past_release(client: TestClient) -> None:
    r = client.get("/collections/buildings/downloads/gpkg?release=1")
    assert r.status_code == 200
    assert r.headers["content-disposition"] == 'attachment; filename="buildings-r1.gpkg"'
    assert r.headers["cache-control"].endswith("immutable")
    frame = gpd.read_file(io.BytesIO(r.content))
    assert sorted(frame["name"]) == ["B1", "B2", "B3", "B4", "B5", "B6", "B7"]
    assert frame.crs.to_epsg() == GK
    current = client.get("/collections/buildings/downloads/gpkg")
    assert current.headers["etag"] != r.headers["etag"]


@pytest.mark.parametrize(
    ("path", "status", "text"),
    [
        ("/collections/buildings/downloads/shp", 400, "gpkg, parquet, fgb"),
        ("/collections/buildings/downloads/" + "x" * 5000, 400, "unknown download format"),
        ("/collections/nowhere/downloads/gpkg", 404, "nowhere"),
        ("/collections/buildings/downloads/gpkg?release=9", 404, "releases kept: 1, 2"),
        ("/collections/buildings/downloads/gpkg?release=0", 400, "release"),
        ("/collections/buildings/downloads/gpkg?release=-1", 400, "release"),
        ("/collections/buildings/downloads/gpkg?release=1.5", 400, "release"),
        ("/collections/buildings/downloads/gpkg?release=99999999999999999999", 400, "release"),
        ("/collections/buildings/downloads/gpkg?release=%00", 400, "release"),
        ("/collections/buildings/downloads/gpkg?release=1&release=1", 400, "more than once"),
        ("/collections/buildings/downloads/gpkg?bbox=1,2,3,4", 400, "bbox"),
    ],
)
def test_bad_requests(client: TestClient, path: str, status: int, text: str) -> None:
    assert_exception(client.get(path), status, text)


def test_a_raster_layer_has_no_download(raster_store_url: str, tmp_path: Path) -> None:  # noqa: F811 - the fixture
    for client in _client(raster_store_url, tmp_path):
        rasters = [i.name for i in client.app.state.store.layers() if i.spec.kind == "raster"]
        assert rasters
        for name in rasters:
            assert_exception(client.get(f"/collections/{name}/downloads/gpkg"), 400, "raster")
            assert_exception(client.get(f"/collections/{name}/downloads/parquet?release=1"), 400, "raster")
        assert all(link["rel"] != "enclosure" for link in client.get(f"/collections/{rasters[0]}").json().get("links", []))


def test_an_edit_changes_the_current_file_and_a_pruned_release_is_gone(fresh: TestClient) -> None:
    store = fresh.app.state.store
    before = fresh.get("/collections/parcels/downloads/fgb")
    pinned = fresh.get("/collections/parcels/downloads/fgb?release=2")
    fid = int(store.find_features("parcels", [("source_id", "P1")]).index[0])
    store.edit(Edit("parcels", "update", "planner", fid, {"properties": {"land_use": "G1"}}))
    after = fresh.get("/collections/parcels/downloads/fgb")
    assert after.status_code == 200 and after.headers["etag"] != before.headers["etag"]
    assert fresh.get("/collections/parcels/downloads/fgb", headers={"If-None-Match": before.headers["etag"]}).status_code == 200
    edited = gpd.read_file(io.BytesIO(after.content)).set_index("fid")
    assert edited.loc[fid, "land_use"] == "G1"
    assert fresh.get("/collections/parcels/downloads/fgb?release=2").headers["etag"] == pinned.headers["etag"]
    store.publish(ReleaseDraft(layers=release_layers(GK, 2), srid=GK), keep=2)
    assert_exception(fresh.get("/collections/parcels/downloads/fgb?release=1"), 410, "releases kept: 2, 3")


def test_eight_simultaneous_requests_get_one_file(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    writes: list[str] = []
    real = download_cache.write_download

    def counting(batches, fmt, path):
        writes.append(fmt.name)
        return real(batches, fmt, path)

    monkeypatch.setattr(download_cache, "write_download", counting)

    async def fetch_all() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=client.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            responses: list[httpx.Response] = []

            async def one() -> None:
                responses.append(await http.get("/collections/pois/downloads/gpkg"))

            async with anyio.create_task_group() as group:
                for _ in range(8):
                    group.start_soon(one)
            return responses

    responses = anyio.run(fetch_all)
    assert [r.status_code for r in responses] == [200] * 8
    assert len({r.headers["etag"] for r in responses}) == 1
    assert len({r.content for r in responses}) == 1
    assert writes == ["gpkg"]


def test_enclosure_links_and_openapi(client: TestClient) -> None:
    links = [link for link in client.get("/collections/buildings").json()["links"] if link["rel"] == "enclosure"]
    assert {link["type"] for link in links} == {
        "application/geopackage+sqlite3", "application/vnd.apache.parquet", "application/flatgeobuf"}
    for link in links:
        assert link["title"] and link["href"].startswith("http://testserver/collections/buildings/downloads/")
        assert client.get(link["href"].removeprefix("http://testserver")).headers["content-type"] == link["type"]
    listed = {c["id"]: c for c in client.get("/collections").json()["collections"]}
    assert sum(link["rel"] == "enclosure" for link in listed["roads"]["links"]) == 3
    doc = client.get("/openapi?f=json").json()
    operation = doc["paths"][PATH]["get"]
    assert {p["name"] for p in operation["parameters"]} == {"collectionId", "format", "release"}
    assert set(operation["responses"]) >= {"200", "304", "400", "404", "410"}
    assert "$ref" not in str(doc["paths"][PATH])


def test_a_restricted_layer_needs_its_role(store_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from test_auth_access import bearer, client as auth_client, publish, restricted_parcels

    monkeypatch.setenv("CIM_DOWNLOAD_CACHE", str(tmp_path))
    publish(store_url, restricted_parcels())
    try:
        with auth_client(store_url, monkeypatch) as c:
            refused = c.get("/collections/parcels/downloads/gpkg")
            assert refused.status_code == 401 and refused.headers["WWW-Authenticate"].startswith("Bearer")
            assert c.get("/collections/parcels/downloads/gpkg", headers=bearer("editor")).status_code == 403
            allowed = c.get("/collections/parcels/downloads/gpkg", headers=bearer("reader"))
            assert allowed.status_code == 200 and allowed.headers["cache-control"] == "private, no-cache"
            assert c.get("/collections/buildings/downloads/gpkg").status_code == 200  # public
    finally:
        from cim.store import _shared

        shared = _shared.pop(store_url, None)
        if shared is not None:
            shared.close()
