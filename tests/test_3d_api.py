"""OGC API – 3D GeoVolumes over HTTP, both stores (ogcapi/threed_routes.py, docs/3d-api.md): the demo
city's buildings collection links its 3D Tiles tileset and has a 3D box; the tileset's content URIs
resolve to GLBs with ETags, 304s and release-dependent caching; a new release moves the contents'
release; hostile paths and parameters are 400/404 OGC exceptions; the landing page, /conformance and
the OpenAPI document name it all; restricted lod1 layers need their role."""

from __future__ import annotations

import dataclasses
from typing import Any, Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient

from cim.store import LayerData, ReleaseDraft, open_store
from ogcapi.tiles_responses import IMMUTABLE, SHORT
from support.postgis import BACKENDS, backend_store
from support.tileset_check import check_tileset
from tiles.threed.model import CONF_GEOVOLUMES, GLB_MEDIA_TYPE, REL_3D_GEOVOLUMES, TILESET_LINK_TYPE

BASE = "http://testserver"
TILESET = "/collections/buildings/3dtiles"
#: glTF binary header: magic "glTF", version 2
GLB_MAGIC = b"glTF\x02\x00\x00\x00"


def local(href: str) -> str:
    assert href.startswith(BASE), href
    return href[len(BASE):]


def contents(tileset: dict[str, Any]) -> list[str]:
    """Every content URI of a tileset, parents before children."""
    out: list[str] = []
    stack = [tileset["root"]]
    while stack:
        tile = stack.pop()
        if "content" in tile:
            out.append(tile["content"]["uri"])
        stack.extend(reversed(tile.get("children", [])))
    return out


def released(uri: str) -> int:
    (value,) = parse_qs(urlsplit(uri).query)["release"]
    return int(value)


def assert_exception(response: Any, status: int, *words: str) -> None:
    assert response.status_code == status, (response.status_code, response.text[:300])
    body = response.json()
    assert {"code", "description"} <= body.keys(), body
    for word in words:
        assert word in body["description"], body


# -- the demo city (session store, read only) -------------------------------------------------------


def test_collection_links_its_tileset_and_has_a_3d_box(api_client: TestClient) -> None:
    doc = api_client.get("/collections/buildings", params={"f": "json"}).json()
    links = [link for link in doc["links"] if link["rel"] == REL_3D_GEOVOLUMES]
    assert links and {link["type"] for link in links} == {TILESET_LINK_TYPE}
    assert {link["href"] for link in links} == {BASE + TILESET}
    box2d, box3d = doc["extent"]["spatial"]["bbox"]
    west, south, low, east, north, high = box3d
    # the blocks stand inside the footprints' box (a centroid-free check: the same extent, to 1e-6 degrees)
    assert box2d[0] - 1e-6 <= west < east <= box2d[2] + 1e-6 and box2d[1] - 1e-6 <= south < north <= box2d[3] + 1e-6
    assert low < high and 0 < high - low < 1000
    response = api_client.get(local(links[0]["href"]))
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/json")
    tileset = response.json()
    assert tileset["asset"]["version"] == "1.1"
    assert len(tileset["root"]["boundingVolume"]["region"]) == 6 and tileset["geometricError"] > 0
    # the same in the collection list, and none for a collection without LOD1 blocks
    listed = {c["id"]: c for c in api_client.get("/collections").json()["collections"]}
    assert any(link["rel"] == REL_3D_GEOVOLUMES for link in listed["buildings"]["links"])
    assert listed["buildings"]["extent"]["spatial"]["bbox"] == doc["extent"]["spatial"]["bbox"]
    assert not any(link["rel"] == REL_3D_GEOVOLUMES for link in listed["roads"]["links"])
    assert len(listed["roads"]["extent"]["spatial"]["bbox"]) == 1
    # the HTML page lists the link too (pygeoapi renders the collection's links)
    html = api_client.get("/collections/buildings", params={"f": "html"}).text
    assert BASE + TILESET in html


def test_tileset_contents_are_glbs_with_etags(api_client: TestClient) -> None:
    response = api_client.get(TILESET)
    tileset = response.json()
    assert response.headers["cache-control"] == SHORT and response.headers["etag"]
    assert api_client.get(TILESET, headers={"If-None-Match": response.headers["etag"]}).status_code == 304
    # sent gzip-compressed to clients that accept it (each encoding its own ETag), plain to others
    assert response.headers["content-encoding"] == "gzip" and response.headers["vary"] == "Accept-Encoding"
    plain = api_client.get(TILESET, headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers and plain.json() == tileset
    assert plain.headers["etag"] != response.headers["etag"]
    assert api_client.get(TILESET, headers={"Accept-Encoding": "identity", "If-None-Match": plain.headers["etag"]}).status_code == 304
    uris = contents(tileset)
    assert len(uris) > 1 and len(set(uris)) == len(uris)
    assert {released(u) for u in uris} == {1}
    for uri in uris[:3]:
        assert urlsplit(uri).path.endswith(".glb")
        glb = api_client.get(local(uri))
        assert glb.status_code == 200, glb.text[:300]
        assert glb.headers["content-type"] == GLB_MEDIA_TYPE and glb.content[:8] == GLB_MAGIC
        etag = glb.headers["etag"]
        assert glb.headers["cache-control"] == IMMUTABLE  # pinned to the release it belongs to
        again = api_client.get(local(uri), headers={"If-None-Match": etag})
        assert again.status_code == 304 and again.headers["etag"] == etag and not again.content
        unpinned = api_client.get(urlsplit(uri).path)
        assert unpinned.status_code == 200 and unpinned.content == glb.content
        assert unpinned.headers["etag"] == etag and unpinned.headers["cache-control"] == SHORT
        head = api_client.head(local(uri))
        assert head.status_code == 200 and head.headers["etag"] == etag and not head.content
        assert head.headers["content-type"] == GLB_MEDIA_TYPE
    # the served tileset is valid and every content it names is served, inside its tile's region
    # (GeoVolumes /req/3dtiles/tileset: "all tiled 3D data referenced by tileset SHALL be available")

    def resolve(uri: str) -> bytes | None:
        found = api_client.get(local(uri))
        return found.content if found.status_code == 200 else None

    assert check_tileset(tileset, resolve) == []
    # CesiumJS repeats the tileset URL's query on content URIs that carry it already: the same value twice
    assert api_client.get(local(uris[0]) + "&release=1").status_code == 200
    assert api_client.head(TILESET).status_code == 200


@pytest.mark.parametrize(
    ("path", "status", "word"),
    [
        ("/collections/nosuch/3dtiles", 404, "nosuch"),
        ("/collections/roads/3dtiles", 404, "roads"),  # a collection without LOD1 blocks
        (TILESET + "?release=abc", 400, "release"),
        (TILESET + "?release=-1", 400, "release"),
        (TILESET + "?release=0", 400, "release"),
        (TILESET + "?release=99999999999999999999", 400, "release"),
        (TILESET + "?release=999", 404, "999"),
        (TILESET + "?release=1&release=2", 400, "release"),
        (TILESET + "?f=html", 400, "f=json"),
        (TILESET + "/0/0/0", 404, "glb"),  # no .glb
        (TILESET + "/0/0/0.png", 404, "glb"),
        (TILESET + "/a/0/0.glb", 400, "level"),
        (TILESET + "/-1/0/0.glb", 400, "level"),
        (TILESET + "/0/-1/0.glb", 400, "x"),
        (TILESET + "/0/0/1e3.glb", 400, "y"),
        (TILESET + "/99999999999999999999/0/0.glb", 400, "level"),
        (TILESET + "/31/0/0.glb", 404, "31"),
        (TILESET + "/2/4/0.glb", 404, "2/4/0"),
        (TILESET + "/0/0/99999999999.glb", 400, "y"),
        (TILESET + "/25/0/0.glb", 404, "25/0/0"),  # a cell with no content
        (TILESET + "/0/0/0.glb?release=x", 400, "release"),
        (TILESET + "/0/0/0.glb?f=mvt", 400, "f=glb"),
        ("/collections/nosuch/3dtiles/0/0/0.glb", 404, "nosuch"),
    ],
)
def test_bad_requests_are_ogc_exceptions(api_client: TestClient, path: str, status: int, word: str) -> None:
    assert_exception(api_client.get(path), status, word)


def test_landing_page_conformance_and_openapi(api_client: TestClient) -> None:
    links = api_client.get("/", params={"f": "json"}).json()["links"]
    assert [link["href"] for link in links if link["rel"] == REL_3D_GEOVOLUMES] == [BASE + TILESET]
    assert {"rel": "http://www.opengis.net/def/rel/ogc/1.0/map", "type": "text/html", "title": "3D viewer",
            "href": BASE + "/viewer/3d"} in links  # fmt: skip
    conforms = api_client.get("/conformance").json()["conformsTo"]
    assert set(CONF_GEOVOLUMES) <= set(conforms)
    paths = api_client.get("/openapi", params={"f": "json"}).json()["paths"]
    tileset = paths["/collections/{collectionId}/3dtiles"]["get"]
    content = paths["/collections/{collectionId}/3dtiles/{level}/{x}/{y}.glb"]["get"]
    assert tileset["parameters"][0]["schema"]["enum"] == ["buildings"]
    assert GLB_MEDIA_TYPE in content["responses"]["200"]["content"]
    assert {p["name"] for p in content["parameters"]} == {"collectionId", "level", "x", "y", "release"}


# -- releases (a store of this module: the demo's buildings, then fewer of them) --------------------


@pytest.fixture(scope="module", params=BACKENDS)
def releases_client(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, demo_layers: list[LayerData]
) -> Iterator[TestClient]:
    """Release 1: the demo's buildings; release 2: the first 300 of them. Tests only read."""
    from ogcapi.app import create_app

    (buildings,) = [layer for layer in demo_layers if layer.spec.name == "buildings"]
    directory = tmp_path_factory.mktemp("threed_api")
    with backend_store(request, "threed_api", directory) as url:
        with open_store(url) as store:
            store.publish(ReleaseDraft(layers=[buildings], srid=4326))
            store.publish(ReleaseDraft(layers=[LayerData(buildings.spec, buildings.frame.iloc[:300])], srid=4326))
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("CIM_TILE_CACHE", str(directory / "cache"))
            with TestClient(create_app(url, server_url=BASE)) as client:
                yield client


def test_a_new_release_moves_the_contents(releases_client: TestClient) -> None:
    current = releases_client.get(TILESET).json()
    first = releases_client.get(TILESET, params={"release": 1}).json()
    assert {released(u) for u in contents(current)} == {2}
    assert {released(u) for u in contents(first)} == {1}
    assert len(contents(first)) > len(contents(current))  # 300 buildings need fewer tiles than all of them
    old, new = contents(first)[0], contents(current)[0]
    past = releases_client.get(local(old))
    assert past.status_code == 200 and past.content[:8] == GLB_MAGIC
    assert past.headers["cache-control"] == IMMUTABLE  # a kept past release never changes
    now = releases_client.get(local(new))
    assert now.status_code == 200 and now.headers["etag"] != past.headers["etag"]
    # release 1's ETag is not release 2's: an If-None-Match from before the publish gets new content
    assert releases_client.get(urlsplit(new).path, headers={"If-None-Match": past.headers["etag"]}).status_code == 200


# -- restricted lod1 layers -------------------------------------------------------------------------


def test_a_restricted_lod1_layer_needs_its_role(store_url: str, demo_layers: list[LayerData], monkeypatch: pytest.MonkeyPatch) -> None:
    from test_auth_access import bearer, client

    (buildings,) = [layer for layer in demo_layers if layer.spec.name == "buildings"]
    secret = LayerData(dataclasses.replace(buildings.spec, restricted=True), buildings.frame.iloc[:200])
    with open_store(store_url) as store:
        store.publish(ReleaseDraft(layers=[secret], srid=4326))
    try:
        with client(store_url, monkeypatch) as app:
            refused = app.get(TILESET)
            assert refused.status_code == 401 and refused.headers["WWW-Authenticate"].startswith("Bearer")
            assert app.get(TILESET, headers=bearer("someone-else")).status_code == 403
            allowed = app.get(TILESET, headers=bearer("reader"))
            assert allowed.status_code == 200 and allowed.headers["cache-control"] == "private, no-cache"
            uri = contents(allowed.json())[0]
            assert app.get(local(uri)).status_code == 401
            glb = app.get(local(uri), headers=bearer("reader"))
            assert glb.status_code == 200 and glb.content[:8] == GLB_MAGIC
            assert glb.headers["cache-control"] == "private, no-cache"
            assert app.get(local(uri)).status_code == 401  # never repeated from the fast path
    finally:
        from cim.store import _shared

        shared = _shared.pop(store_url, None)
        if shared is not None:
            shared.close()


def test_an_empty_lod1_layer_has_no_3d_box_and_no_content(store_url: str) -> None:
    from support.citydata import building_frame
    from support.server import app_client

    from layers.catalog import CATALOG

    with open_store(store_url) as store:
        store.publish(ReleaseDraft([LayerData(CATALOG["buildings"], building_frame(4326).iloc[:0])], srid=4326))
    with app_client(store_url) as app:
        doc = app.get("/collections/buildings", params={"f": "json"}).json()
        assert [len(box) for box in doc["extent"]["spatial"]["bbox"]] == [4]  # no blocks, no 3D box
        tileset = app.get(TILESET)
        assert tileset.status_code == 200 and contents(tileset.json()) == []
        assert check_tileset(tileset.json()) == []
        assert_exception(app.get(TILESET + "/0/0/0.glb"), 404, "0/0/0")
