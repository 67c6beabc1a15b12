"""OGC API - Features Part 1 (Core) over the demo city, on both stores.

The assertions follow what the OGC CITE suite (ets-ogcapi-features10) checks: landing page links,
OpenAPI `limit`, collections with CRS84 extents, items paging and links, single features, and 400s
for invalid parameters — every error an OGC exception document.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest
import shapely

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
DEMO_LAYERS = {"buildings", "roads", "landuse", "pois", "water", "parcels", "admin_divisions", "warnings"}  # warnings: the live layer every store has


def rels(doc: dict) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for link in doc["links"]:
        out.setdefault(link["rel"], []).append(link)
    return out


def local(href: str) -> str:
    parts = urlsplit(href)
    return parts.path + ("?" + parts.query if parts.query else "")


def assert_ogc_exception(response, status: int) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert {"code", "description"} <= body.keys()
    return body


def test_landing_page_links(api_client) -> None:
    doc = api_client.get("/", params={"f": "json"}).json()
    links = rels(doc)
    assert "service-desc" in links or "service-doc" in links
    assert "conformance" in links
    assert "data" in links
    assert api_client.get(local(links["conformance"][0]["href"])).status_code == 200


def test_openapi_declares_limit(api_client) -> None:
    response = api_client.get("/openapi", params={"f": "json"})
    assert response.status_code == 200
    spec = response.json()
    assert spec["openapi"].startswith("3.0")
    parameters = spec["paths"]["/collections/buildings/items"]["get"]["parameters"]
    (limit,) = [p for p in parameters if p.get("name") == "limit"]
    assert limit["in"] == "query"
    schema = limit["schema"]
    assert schema["type"] == "integer" and schema["minimum"] == 1
    assert schema["default"] == 10 and schema["maximum"] == 10000


def test_collections_list_demo_layers_with_crs84_extents(api_client) -> None:
    doc = api_client.get("/collections").json()
    by_id = {c["id"]: c for c in doc["collections"]}
    assert DEMO_LAYERS <= by_id.keys()
    for collection in by_id.values():
        assert "items" in rels(collection)
        # one 2D box; lod1 collections (buildings) add their 3D box after it (OGC API - 3D GeoVolumes, docs/3d-api.md)
        bbox, *boxes3d = collection["extent"]["spatial"]["bbox"]
        assert len(boxes3d) == (1 if collection["id"] == "buildings" else 0)
        minx, miny, maxx, maxy = bbox
        assert -180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90
        assert collection["extent"]["spatial"].get("crs", CRS84) == CRS84
        assert collection["crs"][0] == CRS84
        assert collection["storageCrs"] == CRS84  # the demo is stored in lon/lat WGS84


def test_more_than_2500_real_buildings(api_client) -> None:
    doc = api_client.get("/collections/buildings/items", params={"limit": 1}).json()
    assert doc["numberMatched"] > 2500
    assert doc["features"][0]["properties"]["source"].startswith("osm:")


def test_items_limit_bbox_and_links(api_client) -> None:
    bbox = (24.94, 60.165, 24.955, 60.175)
    response = api_client.get("/collections/buildings/items", params={"limit": 7, "bbox": ",".join(map(str, bbox))})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/geo+json") or response.headers[
        "content-type"
    ].startswith("application/json")
    assert response.headers["Content-Crs"] == f"<{CRS84}>"
    doc = response.json()
    assert doc["type"] == "FeatureCollection"
    assert doc["numberReturned"] == len(doc["features"]) == 7
    assert doc["numberMatched"] > 7
    links = rels(doc)
    assert "self" in links and "alternate" in links and "next" in links
    box = shapely.box(*bbox)
    for feature in doc["features"]:
        assert shapely.geometry.shape(feature["geometry"]).intersects(box)
        x, y = shapely.geometry.shape(feature["geometry"]).representative_point().coords[0]
        assert 24 < x < 27 and 60 < y < 61  # CRS84: longitude first


def test_following_next_links_visits_every_feature_once(api_client) -> None:
    first = api_client.get("/collections/water/items", params={"limit": 4}).json()
    total = first["numberMatched"]
    seen = [f["id"] for f in first["features"]]
    doc = first
    while "next" in rels(doc):
        doc = api_client.get(local(rels(doc)["next"][0]["href"])).json()
        seen += [f["id"] for f in doc["features"]]
    assert len(seen) == len(set(seen)) == total == 14


def test_property_equality_filter(api_client) -> None:
    doc = api_client.get("/collections/roads/items", params={"road_class": "footway", "limit": 50}).json()
    assert doc["numberMatched"] > 0
    assert {f["properties"]["road_class"] for f in doc["features"]} == {"footway"}


def test_properties_and_sortby(api_client) -> None:
    doc = api_client.get(
        "/collections/buildings/items", params={"properties": "height_m,floors", "sortby": "-height_m", "limit": 3}
    ).json()
    heights = [f["properties"]["height_m"] for f in doc["features"]]
    assert heights == sorted(heights, reverse=True) and heights[0] is not None
    assert set(doc["features"][0]["properties"]) == {"height_m", "floors"}


def test_single_feature_links_and_404(api_client) -> None:
    response = api_client.get("/collections/buildings/items/1")
    assert response.status_code == 200
    feature = response.json()
    assert feature["type"] == "Feature" and str(feature["id"]) == "1"
    links = rels(feature)
    assert {"self", "alternate", "collection"} <= links.keys()
    assert_ogc_exception(api_client.get("/collections/buildings/items/999999"), 404)
    assert_ogc_exception(api_client.get("/collections/buildings/items/not-a-number"), 404)


@pytest.mark.parametrize(
    "params",
    [
        {"limit": "abc"},
        {"limit": "0"},
        {"limit": "-5"},
        {"limit": "100001"},
        {"bbox": "1,2,3"},
        {"bbox": "a,b,c,d"},
        {"bbox": "25,61,24,60"},
        {"offset": "-1"},
        {"sortby": "colour"},
        {"properties": "colour"},
        {"floors": "three"},
        {"no_such_parameter": "1"},
        {"q": "tower"},
        {"filter": "floors >"},
        {"filter": "colour = 'red'"},
        {"datetime": "yesterday"},
        {"cursor": "not-a-cursor"},
        {"crs": "http://www.opengis.net/def/crs/EPSG/0/99999"},
        {"bbox": "24.9,60.1,25,60.2", "bbox-crs": "http://www.opengis.net/def/crs/EPSG/0/99999"},
    ],
)
def test_invalid_parameters_give_400(api_client, params: dict) -> None:
    assert_ogc_exception(api_client.get("/collections/buildings/items", params=params), 400)


def test_malformed_cql2_filter_is_explained(api_client) -> None:
    body = assert_ogc_exception(api_client.get("/collections/buildings/items", params={"filter": "floors >"}), 400)
    assert "malformed cql2-text filter" in body["description"]


def test_unknown_parameter_is_named(api_client) -> None:
    body = assert_ogc_exception(api_client.get("/collections/buildings/items", params={"bbbox": "1,2,3,4"}), 400)
    assert "bbbox" in body["description"]


def test_unknown_collection_and_path_are_ogc_404s(api_client) -> None:
    assert_ogc_exception(api_client.get("/collections/nope"), 404)
    assert_ogc_exception(api_client.get("/collections/nope/items"), 404)
    assert_ogc_exception(api_client.get("/no/such/path"), 404)


def test_html_pages(api_client) -> None:
    for path in ("/", "/collections", "/collections/buildings", "/collections/buildings/items", "/collections/buildings/items/1"):
        response = api_client.get(path, params={"f": "html"})
        assert response.status_code == 200, path
        assert response.headers["content-type"].startswith("text/html")
        assert "<html" in response.text.lower()


def test_next_link_keeps_query_parameters(api_client) -> None:
    doc = api_client.get("/collections/roads/items", params={"road_class": "footway", "limit": 2}).json()
    query = parse_qs(urlsplit(rels(doc)["next"][0]["href"]).query)
    assert query["road_class"] == ["footway"] and query["limit"] == ["2"]


def test_geojson_geometries_pass_through_exactly(api_client, demo_store_url: str) -> None:
    """GeoJSON items embed the database's GeoJSON text (no parse and re-encode): the same
    geometries and properties as the store's features, UTF-8 names intact, valid JSON."""
    from cim.store import FeatureQuery, open_store

    response = api_client.get("/collections/pois/items", params={"limit": 500})
    assert response.headers["content-type"] == "application/geo+json"  # Part 1 /req/geojson/content
    served = json.loads(response.content.decode("utf-8"))["features"]
    with open_store(demo_store_url) as store:
        expected = store.query(FeatureQuery("pois", limit=500)).features
    assert [f["geometry"] for f in served] == [f["geometry"] for f in expected]
    assert [f["properties"] for f in served] == [f["properties"] for f in expected]
    assert any(ch in (f["properties"].get("name") or "") for f in served for ch in "äöå")
    one = api_client.get(f"/collections/pois/items/{served[0]['id']}")
    assert one.headers["content-type"] == "application/geo+json"
    assert one.json()["geometry"] == expected[0]["geometry"]
    html = api_client.get("/collections/pois/items", params={"limit": 5, "f": "html"})
    assert html.status_code == 200 and "<html" in html.text.lower()
