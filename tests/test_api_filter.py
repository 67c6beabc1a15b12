"""Features Part 3 / CQL2 on the demo city, both stores: results checked against the store's own data
read with the Python API (GeoPandas), CQL2 text and JSON, filter-crs, and 400s that say what is wrong."""

from __future__ import annotations

import json
from typing import Any, Iterator

import geopandas as gpd
import pandas as pd
import pyproj
import pytest
import shapely

import cim

ITEMS = "/collections/buildings/items"
CENTRAL = (24.94, 60.165, 24.955, 60.175)


@pytest.fixture(scope="module")
def buildings(demo_store_url: str) -> Iterator[gpd.GeoDataFrame]:
    with cim.open(demo_store_url) as city:
        yield city.read("buildings")


def matching(client: Any, **params: Any) -> set[int]:
    """Ids of every feature the filter selects (one page: the demo has < 10 000 buildings)."""
    response = client.get(ITEMS, params={"limit": 10000, "skipGeometry": "true", **params})
    assert response.status_code == 200, response.text
    doc = response.json()
    ids = {f["id"] for f in doc["features"]}
    assert doc["numberMatched"] == doc["numberReturned"] == len(ids)
    return ids


def where(frame: gpd.GeoDataFrame, mask: pd.Series) -> set[int]:
    return set(frame.index[mask.fillna(False).astype(bool)])


@pytest.mark.parametrize(
    ("cql", "expected"),
    [
        ("floors > 3", lambda b: b.floors > 3),
        ("floors >= 3 AND height_m < 30", lambda b: (b.floors >= 3) & (b.height_m < 30)),
        ("floors = 2 OR floors = 5", lambda b: b.floors.isin([2, 5])),
        ("NOT (floors > 3)", lambda b: b.floors <= 3),
        ("floors <> 4", lambda b: (b.floors != 4) & b.floors.notna()),
        ("name IS NULL", lambda b: b.name.isna()),
        ("name IS NOT NULL", lambda b: b.name.notna()),
        ("floors BETWEEN 2 AND 4", lambda b: b.floors.between(2, 4)),
        ("floors NOT BETWEEN 2 AND 4", lambda b: ~b.floors.between(2, 4) & b.floors.notna()),
        ("floors IN (2, 3, 9)", lambda b: b.floors.isin([2, 3, 9])),
        ("use IN ('apartments', 'office')", lambda b: b.use.isin(["apartments", "office"])),
        ("name LIKE 'A%'", lambda b: b.name.str.startswith("A")),
        ("name LIKE '_a%'", lambda b: b.name.str.match(r"^.a", na=False)),
        ("CASEI(use) = casei('APARTMENTS')", lambda b: b.use.str.lower() == "apartments"),
        ("height_m / floors > 4", lambda b: (b.height_m / b.floors.where(b.floors != 0)) > 4),
        ("height_m > floors * 3.5", lambda b: b.height_m > b.floors * 3.5),
        ("year_built < 1900 AND source LIKE 'osm:%'", lambda b: (b.year_built < 1900) & b.source.str.startswith("osm:")),
    ],
)
def test_cql2_text_selects_what_pandas_selects(api_client, buildings: gpd.GeoDataFrame, cql: str, expected) -> None:
    wanted = where(buildings, expected(buildings))
    assert matching(api_client, filter=cql) == wanted


def test_filters_select_something(buildings: gpd.GeoDataFrame) -> None:
    # the comparisons above are only meaningful if the demo data makes them non-trivial
    assert 0 < (buildings.floors > 3).sum() < len(buildings)
    assert buildings.name.isna().any() and buildings.name.notna().any()
    assert (buildings.use == "apartments").any()


def test_cql2_json_equals_cql2_text(api_client) -> None:
    text = matching(api_client, filter="floors > 3 AND use = 'apartments'")
    expr = {"op": "and", "args": [
        {"op": ">", "args": [{"property": "floors"}, 3]},
        {"op": "=", "args": [{"property": "use"}, "apartments"]},
    ]}  # fmt: skip
    assert matching(api_client, filter=json.dumps(expr), **{"filter-lang": "cql2-json"}) == text
    between = {"op": "between", "args": [{"property": "floors"}, 2, 4]}
    assert matching(api_client, filter=json.dumps(between), **{"filter-lang": "cql2-json"}) == matching(
        api_client, filter="floors BETWEEN 2 AND 4"
    )
    assert text


def test_filter_combines_with_bbox_and_property_parameters(api_client, buildings: gpd.GeoDataFrame) -> None:
    box = shapely.box(*CENTRAL)
    wanted = where(buildings, buildings.geometry.intersects(box) & (buildings.floors > 3))
    assert matching(api_client, filter="floors > 3", bbox=",".join(map(str, CENTRAL))) == wanted
    apartments = where(buildings, (buildings.use == "apartments") & (buildings.floors > 3))
    assert matching(api_client, filter="floors > 3", use="apartments") == apartments


def test_spatial_functions(api_client, buildings: gpd.GeoDataFrame) -> None:
    box = shapely.box(*CENTRAL)
    inside = where(buildings, buildings.geometry.intersects(box))
    assert 0 < len(inside) < len(buildings)
    minx, miny, maxx, maxy = CENTRAL
    assert matching(api_client, filter=f"S_INTERSECTS(geometry, BBOX({minx},{miny},{maxx},{maxy}))") == inside
    polygon = f"POLYGON(({minx} {miny},{maxx} {miny},{maxx} {maxy},{minx} {maxy},{minx} {miny}))"
    assert matching(api_client, filter=f"S_INTERSECTS(geometry, {polygon})") == inside
    assert matching(api_client, filter=f"S_WITHIN(geometry, {polygon})") == where(buildings, buildings.geometry.within(box))
    assert matching(api_client, filter=f"S_DISJOINT(geometry, {polygon})") == set(buildings.index) - inside
    one = buildings.geometry.iloc[0]
    x, y = one.representative_point().coords[0]
    point = f"POINT({x} {y})"
    assert matching(api_client, filter=f"S_CONTAINS(geometry, {point})") == where(
        buildings, buildings.geometry.contains(shapely.Point(x, y))
    )
    assert buildings.index[0] in matching(api_client, filter=f"S_INTERSECTS(geometry, {point})")
    assert matching(api_client, filter=f"S_EQUALS(geometry, {shapely.to_wkt(one, rounding_precision=-1)})") == {buildings.index[0]}
    for fn in ("S_TOUCHES", "S_CROSSES", "S_OVERLAPS"):
        expected = where(buildings, getattr(buildings.geometry, fn[2:].lower())(box))
        assert matching(api_client, filter=f"{fn}(geometry, {polygon})") == expected, fn
    geojson = {"op": "s_intersects", "args": [{"property": "geometry"}, {"bbox": list(CENTRAL)}]}
    assert matching(api_client, filter=json.dumps(geojson), **{"filter-lang": "cql2-json"}) == inside


def test_filter_crs_in_authority_axis_order(api_client, buildings: gpd.GeoDataFrame) -> None:
    minx, miny, maxx, maxy = CENTRAL
    inside = matching(api_client, filter=f"S_INTERSECTS(geometry, BBOX({minx},{miny},{maxx},{maxy}))")
    lat_lon = f"S_INTERSECTS(geometry, BBOX({miny},{minx},{maxy},{maxx}))"
    epsg4326 = "http://www.opengis.net/def/crs/EPSG/0/4326"
    assert matching(api_client, filter=lat_lon, **{"filter-crs": epsg4326}) == inside
    x, y = buildings.geometry.iloc[0].representative_point().coords[0]
    mx, my = pyproj.Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True).transform(x, y)
    mercator = "http://www.opengis.net/def/crs/EPSG/0/3857"
    assert buildings.index[0] in matching(
        api_client, filter=f"S_INTERSECTS(geometry, POINT({mx} {my}))", **{"filter-crs": mercator}
    )


def test_filtered_paging_by_next_links(api_client) -> None:
    wanted = matching(api_client, filter="floors > 3")
    seen: list[int] = []
    doc = api_client.get(ITEMS, params={"filter": "floors > 3", "limit": 25}).json()
    while True:
        assert doc["numberMatched"] == len(wanted)
        seen += [f["id"] for f in doc["features"]]
        nxt = [link["href"] for link in doc["links"] if link["rel"] == "next"]
        if not nxt:
            break
        doc = api_client.get(nxt[0].replace("http://testserver", "")).json()
    assert len(seen) == len(set(seen)) and set(seen) == wanted


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({"filter": "floors >"}, "malformed cql2-text filter"),
        ({"filter": "floors > 3 AND"}, "malformed cql2-text filter"),
        ({"filter": '{"op": ">", "args": [{"property": "floors"}', "filter-lang": "cql2-json"}, "malformed cql2-json"),
        ({"filter": '{"op": ">", "args": [{"property": "floors"}]}', "filter-lang": "cql2-json"}, "invalid cql2-json"),
        ({"filter": "floors > 3", "filter-lang": "cql2-json"}, "malformed cql2-json"),
        ({"filter": "colour = 'red'"}, "unknown property 'colour'"),
        ({"filter": "S_INTERSECTS(geometrie, POINT(1 2))"}, "unknown property 'geometrie'"),
        ({"filter": "floors = 'many'"}, "type mismatch"),
        ({"filter": "name > 3"}, "type mismatch"),
        ({"filter": "S_INTERSECTS(floors, POINT(1 2))"}, "needs geometries"),
        ({"filter": "T_AFTER(floors, DATE('2020-01-01'))"}, "needs dates"),
        ({"filter": "floors > 3", "filter-lang": "ecql"}, "unknown filter-lang"),
        ({"filter": "floors > 3", "filter-crs": "http://www.opengis.net/def/crs/EPSG/0/99999"}, "unsupported filter-crs"),
        ({"filter-lang": "cql2-text"}, "need a filter"),
        ({"filter": "ACCENTI(name) = accenti('a')"}, "ACCENTI"),
        ({"filter": "floors % 2 = 0"}, "unsupported"),
    ],
)
def test_bad_filters_are_400_with_the_reason(api_client, params: dict, reason: str) -> None:
    response = api_client.get(ITEMS, params=params)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["code"] == "InvalidParameterValue"
    assert reason in body["description"], body["description"]


def test_queryables_are_a_json_schema_with_geometry(api_client) -> None:
    response = api_client.get("/collections/buildings/queryables", params={"f": "json"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/schema+json")
    doc = response.json()
    assert doc["type"] == "object" and "$schema" in doc
    props = doc["properties"]
    assert props["floors"]["type"] == "integer" and props["height_m"]["type"] == "number"
    assert props["geometry"]["x-ogc-role"] == "primary-geometry"


def test_openapi_declares_filter_parameters(api_client) -> None:
    spec = api_client.get("/openapi", params={"f": "json"}).json()
    names = {p.get("name") for p in spec["paths"]["/collections/buildings/items"]["get"]["parameters"]}
    assert {"datetime", "filter", "filter-lang", "filter-crs", "floors", "height_m"} <= names


def test_feature_schema_is_linked_and_typed(api_client) -> None:
    collection = api_client.get("/collections/buildings", params={"f": "json"}).json()
    (link,) = [lk for lk in collection["links"] if lk["rel"] == "describedBy"]
    assert link["type"] == "application/schema+json"
    schema = api_client.get(link["href"].replace("http://testserver", "")).json()
    props = schema["properties"]["properties"]["properties"]
    assert props["floors"]["type"] == "integer" and props["name"]["type"] == "string"
