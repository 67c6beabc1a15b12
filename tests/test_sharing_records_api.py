"""The layer catalog over HTTP (OGC API – Records, ogcapi/records_routes.py) on both stores: the records
collection, its items searched and paged through the links, one record, queryables and sortables,
JSON and HTML, /collections, the landing page, /conformance and /openapi; hostile queries are 4xx
OGC exception documents, never a 500."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from urllib.parse import quote

import pytest
from support.catalog_city import POIS, SURVEY, CatalogCity, build_catalog_city
from support.postgis import BACKENDS, backend_store
from support.server import app_client

RECORDS = "http://www.opengis.net/spec/ogcapi-records-1/1.0/conf/{}"
ITEMS = "/collections/catalog/items"


@pytest.fixture(scope="module", params=BACKENDS)
def city(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CatalogCity]:
    with backend_store(request, "records_api", tmp_path_factory.mktemp("records_api")) as url:
        yield build_catalog_city(url, tmp_path_factory.mktemp("tianjin"))


@pytest.fixture(scope="module")
def client(city: CatalogCity):
    with app_client(city.url) as c:
        yield c


def _ids(response) -> list[str]:
    assert response.status_code == 200, response.text
    return [f["id"] for f in response.json()["features"]]


def test_the_records_collection(client) -> None:
    r = client.get("/collections/catalog")
    assert r.status_code == 200
    doc = r.json()
    assert (doc["id"], doc["type"], doc["itemType"]) == ("catalog", "Collection", "record")
    minx, miny, maxx, maxy = doc["extent"]["spatial"]["bbox"][0]
    assert 117.1 < minx < maxx < 117.3 and 39.1 < miny < maxy < 39.2
    rels = {(link["rel"], link["type"]): link["href"] for link in doc["links"]}
    assert rels["items", "application/geo+json"] == "http://testserver/collections/catalog/items"
    assert rels["items", "text/html"] == "http://testserver/collections/catalog/items?f=html"
    assert rels["http://www.opengis.net/def/rel/ogc/1.0/sortables", "application/schema+json"].endswith("/collections/catalog/sortables")
    listed = client.get("/collections").json()["collections"]
    assert [c for c in listed if c["id"] == "catalog"][0]["itemType"] == "record"
    landing = client.get("/").json()["links"]
    assert any(link["href"] == "http://testserver/collections/catalog" and link["rel"].endswith("/ogc-catalog") for link in landing)


def test_queryables_and_sortables(client) -> None:
    q = client.get("/collections/catalog/queryables")
    assert q.status_code == 200 and q.headers["content-type"].startswith("application/schema+json")
    assert q.json()["$id"] == "http://testserver/collections/catalog/queryables"
    assert q.json()["properties"]["geometry"] == {"format": "geometry-polygon"}
    s = client.get("/collections/catalog/sortables").json()
    assert set(s["properties"]) == {"title", "created", "updated", "layer", "release", "count"}
    assert all("type" in p for p in s["properties"].values())


def test_items_and_one_record(client, city: CatalogCity) -> None:
    r = client.get(ITEMS, params={"limit": 100})
    assert r.headers["content-type"].startswith("application/geo+json")
    doc = r.json()
    assert doc["type"] == "FeatureCollection" and doc["numberMatched"] == doc["numberReturned"] == 12
    one = client.get(f"{ITEMS}/buildings@r2")
    assert one.status_code == 200
    record = one.json()
    assert record == next(f for f in doc["features"] if f["id"] == "buildings@r2")
    assert [s["role"] for s in record["properties"]["lineage"]["sources"]] == ["authoritative", "verifies"]
    assert record["properties"]["lineage"]["sources"][0]["sha256"] == city.second[SURVEY]
    assert {link["href"] for link in record["links"] if link["rel"] == "self"} == {"http://testserver/collections/catalog/items/buildings@r2"}


def test_search_over_http(client, city: CatalogCity) -> None:
    assert sorted(_ids(client.get(ITEMS, params={"q": "建筑物", "limit": 50}))) == ["buildings@r1", "buildings@r2"]
    assert sorted(_ids(client.get(ITEMS, params={"q": "Points,roads", "limit": 50}))) == ["pois@r1", "pois@r2", "roads@r1", "roads@r2"]
    assert len(_ids(client.get(ITEMS, params={"bbox": "117.17,39.12,117.20,39.15", "limit": 50}))) == 12
    assert _ids(client.get(ITEMS, params={"bbox": "0,0,1,1"})) == []
    first, second = city.created
    between = (first + (second - first) / 2).isoformat().replace("+00:00", "Z")
    assert {i.split("@")[1] for i in _ids(client.get(ITEMS, params={"datetime": between, "limit": 50}))} == {"r1"}
    later = (second + timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    assert {i.split("@")[1] for i in _ids(client.get(ITEMS, params={"datetime": f"{later}/..", "limit": 50}))} == {"r2"}
    assert len(_ids(client.get(ITEMS, params={"type": "dataset", "limit": 50}))) == 12
    assert _ids(client.get(ITEMS, params={"type": "service"})) == []
    assert _ids(client.get(ITEMS, params={"externalIds": f"sha256:{city.first[POIS]}"})) == ["pois@r1"]
    assert sorted(_ids(client.get(ITEMS, params={"ids": "pois@r2,water@r1"}))) == ["pois@r2", "water@r1"]
    # an empty value is ignored (Records: empty-value)
    assert len(_ids(client.get(ITEMS, params={"bbox": "", "q": "", "limit": 50}))) == 12


def test_sortby_both_ways_and_paging_through_links(client) -> None:
    up = _ids(client.get(ITEMS, params={"sortby": "layer,-release", "limit": 50}))
    down = _ids(client.get(ITEMS, params={"sortby": "-layer,-release", "limit": 50}))
    assert up[:2] == ["buildings@r2", "buildings@r1"] and down[:2] == ["water@r2", "water@r1"]
    seen, url, pages = [], f"{ITEMS}?sortby=layer,-release&limit=5", 0
    while url:
        page = client.get(url)
        seen += _ids(page)
        pages += 1
        links = {link["rel"]: link["href"] for link in page.json()["links"]}
        assert page.json()["numberMatched"] == 12
        url = links.get("next", "").replace("http://testserver", "")
        if pages > 1:
            assert "prev" in links
    assert pages == 3 and seen == up


def test_html(client) -> None:
    page = client.get(ITEMS, params={"q": "建筑", "f": "html"})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "buildings@r2" in page.text and "Layer catalog" in page.text
    record = client.get(f"{ITEMS}/buildings@r2", headers={"Accept": "text/html"})
    assert record.status_code == 200 and "buildings_cadastre.gpkg" in record.text and "verifies" in record.text
    assert "EPSG:4527" in record.text and "75.0 %" in record.text
    assert client.get("/collections/catalog", params={"f": "html"}).text.count("<h1>") == 1
    hostile = client.get(ITEMS, params={"q": "<script>alert(1)</script>", "f": "html"})
    assert hostile.status_code == 200 and "<script>" not in hostile.text


def test_conformance_and_openapi(client) -> None:
    conforms = client.get("/conformance").json()["conformsTo"]
    for name in ("core", "record-core", "record-collection", "records-api", "record-core-query-parameters", "json", "html", "oas30", "sorting", "searchable-catalog"):
        assert RECORDS.format(name) in conforms
    paths = client.get("/openapi").json()["paths"]
    assert {"/collections/catalog", "/collections/catalog/items", "/collections/catalog/items/{recordId}",
            "/collections/catalog/queryables", "/collections/catalog/sortables"} <= set(paths)  # fmt: skip
    assert "$ref" not in str(paths["/collections/catalog/items"])


@pytest.mark.parametrize(
    ("query", "status", "word"),
    [
        ({"q": "x" * 10240}, 400, "q"),
        ({"q": " ".join(f"t{i}" for i in range(30))}, 400, "q"),
        ({"bbox": "1,2,3"}, 400, "bbox"),
        ({"bbox": "0,91,1,92"}, 400, "bbox"),
        ({"bbox": "a,b,c,d"}, 400, "bbox"),
        ({"datetime": "yesterday"}, 400, "datetime"),
        ({"datetime": "2026-05-02/2026-05-01"}, 400, "datetime"),
        ({"sortby": "height"}, 400, "sortby"),
        ({"limit": "0"}, 400, "limit"),
        ({"limit": "1e3"}, 400, "limit"),
        ({"limit": "99999999999999999999999"}, 400, "limit"),
        ({"offset": "-1"}, 400, "offset"),
        ({"f": "xml"}, 400, "f="),
        ({"filter": "x=1"}, 400, "unknown parameter"),
        ({"ids": ",".join(f"a@r{i}" for i in range(1, 200))}, 400, "ids"),
    ],
)
def test_hostile_queries_are_4xx_exceptions(client, query: dict, status: int, word: str) -> None:
    r = client.get(ITEMS, params=query)
    assert r.status_code == status, r.text
    doc = r.json()
    assert set(doc) == {"code", "type", "description"} and word in doc["description"]


@pytest.mark.parametrize(
    ("record_id", "status"),
    [("nope", 404), ("buildings@r9", 404), ("dem@r1", 404), ("buildings@r0", 404), ("a" * 300, 404), (quote("建筑@r1"), 404)],
)
def test_unknown_records_are_404(client, record_id: str, status: int) -> None:
    r = client.get(f"{ITEMS}/{record_id}")
    assert r.status_code == status and set(r.json()) == {"code", "type", "description"}


def test_a_repeated_parameter_is_a_400(client) -> None:
    r = client.get(f"{ITEMS}?q=a&q=b")
    assert r.status_code == 400 and "more than once" in r.json()["description"]
