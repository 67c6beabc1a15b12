"""Our own run of the assertions of the OGC CITE suites for OGC API - Features 1.0 Part 1 (Core,
GeoJSON, OpenAPI 3.0) and Part 2 (CRS), walking the service as the ETS does: from the landing page,
by links only, over every collection, on both stores.

Each test names the abstract test (ATS) of the standard it follows, e.g. ``/ats/core/fc-links``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Iterator
from urllib.parse import urlsplit

import pytest
import shapely
from shapely.geometry import shape

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
GEOJSON = "application/geo+json"


def local(href: str) -> str:
    parts = urlsplit(href)
    return parts.path + ("?" + parts.query if parts.query else "")


def links(doc: dict[str, Any], rel: str) -> list[dict[str, Any]]:
    return [link for link in doc.get("links", []) if link.get("rel") == rel]


def follow(client: Any, doc: dict[str, Any], rel: str, **params: Any) -> Any:
    (link,) = [lk for lk in links(doc, rel) if lk.get("type", "application/json") in ("application/json", GEOJSON)][:1]
    return client.get(local(link["href"]), params=params)


def coordinates(geometry: dict[str, Any]) -> Iterator[tuple[float, float]]:
    for x, y, *_ in shapely.get_coordinates(shape(geometry)):
        yield float(x), float(y)


@pytest.fixture
def landing(api_client) -> dict[str, Any]:
    response = api_client.get("/", headers={"Accept": "application/json"})
    assert response.status_code == 200
    return response.json()


@pytest.fixture
def feature_collections(api_client, landing) -> list[dict[str, Any]]:
    """The collections of /collections (reached by the landing page's data link) that have items."""
    doc = follow(api_client, landing, "data").json()
    return [c for c in doc["collections"] if links(c, "items")]


def test_landing_page(api_client, landing) -> None:
    """/ats/core/landingpage-op, /ats/core/landingpage-success: links to the API definition,
    conformance and data, each resolving."""
    assert links(landing, "service-desc") or links(landing, "service-doc")
    for rel in ("conformance", "data"):
        assert follow(api_client, landing, rel).status_code == 200
    api = api_client.get(local(links(landing, "service-desc")[0]["href"]))
    assert api.status_code == 200 and api.json()["openapi"].startswith("3.0")


def test_conformance_declares_core_geojson_oas30_crs(api_client, landing) -> None:
    """/ats/core/conformance-success."""
    conforms = follow(api_client, landing, "conformance").json()["conformsTo"]
    for name in ("core", "geojson", "oas30"):
        assert f"http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/{name}" in conforms
    assert "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs" in conforms


def test_api_definition_describes_items_of_every_collection(api_client, landing, feature_collections) -> None:
    """/ats/oas30/oas-definition-*: each items path with ``limit`` (integer, minimum, maximum,
    default) and ``bbox`` (array of numbers, form style, not exploded)."""
    spec = api_client.get(local(links(landing, "service-desc")[0]["href"])).json()
    for collection in feature_collections:
        operation = spec["paths"][f"/collections/{collection['id']}/items"]["get"]
        params: dict[str, dict[str, Any]] = {}
        for p in operation["parameters"]:
            if "$ref" in p:
                assert p["$ref"].startswith("#/components/parameters/"), p["$ref"]
                p = spec["components"]["parameters"][p["$ref"].rsplit("/", 1)[1]]
            assert p["name"] not in params, f"parameter {p['name']} listed twice"  # OpenAPI 3.0: unique
            params[p["name"]] = p
        limit = params["limit"]["schema"]
        assert limit["type"] == "integer" and limit["minimum"] >= 1 and limit["maximum"] >= limit["default"] >= 1
        bbox = params["bbox"]
        assert bbox["in"] == "query" and bbox["schema"]["type"] == "array"
        assert bbox.get("style", "form") == "form" and bbox.get("explode") is False


def test_collections(api_client, landing, feature_collections) -> None:
    """/ats/core/fc-md-*: every collection has an id, an items link, a CRS84 extent; the single
    collection document says the same as its entry in the list. Part 2: a ``crs`` list with
    CRS84 and a ``storageCrs`` among them."""
    assert feature_collections
    for entry in feature_collections:
        assert entry["id"]
        (bbox, *_) = entry["extent"]["spatial"]["bbox"]
        assert entry["extent"]["spatial"].get("crs", CRS84) == CRS84
        minx, miny, maxx, maxy = bbox
        assert -180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90
        assert CRS84 in entry["crs"] and entry["storageCrs"] in entry["crs"]
        alone = api_client.get(f"/collections/{entry['id']}", headers={"Accept": "application/json"}).json()
        assert alone["id"] == entry["id"] and alone["extent"]["spatial"]["bbox"][0] == bbox
        assert alone["crs"] == entry["crs"]


def test_items(api_client, feature_collections) -> None:
    """/ats/core/fc-response, /ats/core/fc-links, /ats/core/fc-limit-response, /ats/core/fc-bbox-response,
    /ats/core/fc-timeStamp, /ats/geojson/content: a GeoJSON FeatureCollection with ``numberReturned``
    equal to the features, ``numberMatched`` at least that, self and alternate links, limit honoured,
    CRS84 coordinates, features inside a requested bbox."""
    for collection in feature_collections:
        response = follow(api_client, collection, "items", limit=5)
        assert response.status_code == 200 and response.headers["content-type"] == GEOJSON
        page = response.json()
        assert page["type"] == "FeatureCollection"
        assert page["numberReturned"] == len(page["features"]) <= 5
        if "numberMatched" in page:
            assert page["numberMatched"] >= page["numberReturned"]
        if "timeStamp" in page:
            datetime.fromisoformat(page["timeStamp"].replace("Z", "+00:00"))
        assert links(page, "self") and links(page, "alternate")
        for feature in page["features"]:
            assert feature["type"] == "Feature" and "id" in feature
            for x, y in coordinates(feature["geometry"]):
                assert -180 <= x <= 180 and -90 <= y <= 90
        minx, miny, maxx, maxy = collection["extent"]["spatial"]["bbox"][0]
        box = (minx, miny, (minx + maxx) / 2, (miny + maxy) / 2)
        inside = follow(api_client, collection, "items", bbox=",".join(map(str, box)), limit=50).json()
        for feature in inside["features"]:
            assert shape(feature["geometry"]).intersects(shapely.box(*box).buffer(1e-9))


def test_single_feature(api_client, feature_collections) -> None:
    """/ats/core/f-success, /ats/core/f-links: self, alternate and collection links; 404 for an
    unknown id."""
    for collection in feature_collections:
        page = follow(api_client, collection, "items", limit=1).json()
        if not page["features"]:
            continue
        fid = page["features"][0]["id"]
        response = api_client.get(f"/collections/{collection['id']}/items/{fid}")
        assert response.status_code == 200 and response.headers["content-type"] == GEOJSON
        feature = response.json()
        assert feature["id"] == fid
        for rel in ("self", "alternate", "collection"):
            assert links(feature, rel), rel
        assert api_client.get(f"/collections/{collection['id']}/items/999999999").status_code == 404


@pytest.mark.parametrize("params", [{"limit": "0"}, {"limit": "abc"}, {"bbox": "1,2,3"}, {"bbox": "a,b,c,d"}])
def test_invalid_parameters_are_400(api_client, feature_collections, params: dict[str, str]) -> None:
    """/ats/core/query-param-invalid: an invalid value is a 400."""
    response = follow(api_client, feature_collections[0], "items", **params)
    assert response.status_code == 400 and response.json()["code"]


def test_every_listed_crs(api_client, feature_collections) -> None:
    """Part 2 /ats/crs/fc-crs-valid-value, /ats/crs/fc-bbox-crs-valid-value, /ats/crs/f-crs-valid-value:
    for every CRS a collection lists, items and a single feature answer 200 with ``Content-Crs``
    naming that CRS; ``bbox-crs`` is accepted for each."""
    for collection in feature_collections:
        page = follow(api_client, collection, "items", limit=1).json()
        fid = page["features"][0]["id"] if page["features"] else None
        for crs in collection["crs"]:
            response = follow(api_client, collection, "items", limit=2, crs=crs)
            assert response.status_code == 200, (collection["id"], crs, response.text)
            assert response.headers["content-crs"] == f"<{crs}>"
            if fid is not None:
                one = api_client.get(f"/collections/{collection['id']}/items/{fid}", params={"crs": crs})
                assert one.status_code == 200 and one.headers["content-crs"] == f"<{crs}>"
        default = follow(api_client, collection, "items", limit=1)
        assert default.headers["content-crs"] == f"<{CRS84}>"


def test_unsupported_crs_and_bbox_crs_are_400(api_client, feature_collections) -> None:
    """Part 2 /ats/crs/fc-crs-invalid-value, /ats/crs/fc-bbox-crs-invalid-value."""
    unsupported = "http://www.opengis.net/def/crs/EPSG/0/32631"
    for collection in feature_collections:
        assert follow(api_client, collection, "items", crs=unsupported).status_code == 400
        box = ",".join(map(str, collection["extent"]["spatial"]["bbox"][0]))
        assert follow(api_client, collection, "items", bbox=box, **{"bbox-crs": unsupported}).status_code == 400
