"""Real OGC API - Features clients (GDAL's OAPIF driver, OWSLib) against the live server, both backends."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pyogrio
import pytest
import shapely
from owslib.ogcapi.features import Features

DEMO_LAYERS = {"buildings", "roads", "landuse", "pois", "water", "parcels", "admin_divisions", "warnings"}  # warnings: the live layer every store has
#: the layer catalog (OGC API – Records, docs/sharing-catalog.md): a collection of records, whose
#: items GDAL reads as features (the records' extents, polygons)
CATALOG = "catalog"
#: central Helsinki: part of the Helsinki extract's buildings, none of Kotka's
BBOX = (24.94, 60.165, 24.95, 60.175)
CORE = "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core"

_no_gdal = pytest.mark.skipif(shutil.which("ogrinfo") is None, reason="GDAL (ogrinfo/ogr2ogr) is not installed")


def requires_gdal(test: Any) -> Any:
    """GDAL's command line tools (system package gdal-bin, installed by scripts/test): marked ``slow``,
    so that the fast tier, which runs without system packages, leaves them out."""
    return pytest.mark.slow(_no_gdal(test))


def gdal(*args: str) -> subprocess.CompletedProcess[str]:
    """Run a GDAL command line tool; fail the test with its output when it fails."""
    env = {**os.environ, "GDAL_HTTP_TIMEOUT": "30", "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
    result = subprocess.run(list(args), capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, f"{' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    return result


def items(server_url: str, collection: str, **params: Any) -> dict[str, Any]:
    with httpx.Client(trust_env=False, timeout=60) as client:
        response = client.get(f"{server_url}/collections/{collection}/items", params={"f": "json", **params})
    assert response.status_code == 200, response.text
    return response.json()


def number_matched(server_url: str, collection: str, **params: Any) -> int:
    return items(server_url, collection, limit=1, **params)["numberMatched"]


@pytest.fixture(scope="module")
def building_count(demo_store_url: str) -> int:
    """How many buildings the demo release holds (counted when it was built): over 2500."""
    import cim

    with cim.open(demo_store_url) as city:
        count = city.info("buildings").count
    assert count > 2500
    return count


# -- GDAL (OAPIF driver) --------------------------------------------------------------------------


@requires_gdal
def test_ogrinfo_lists_the_demo_layers(live_server) -> None:
    out = gdal("ogrinfo", "-ro", "-q", f"OAPIF:{live_server.url}").stdout
    names = set(re.findall(r"^\d+: (\S+)", out, re.MULTILINE))
    assert names == DEMO_LAYERS | {CATALOG}, out


@requires_gdal
def test_ogrinfo_summary_of_buildings(live_server, building_count: int) -> None:
    out = gdal("ogrinfo", "-ro", "-so", f"OAPIF:{live_server.url}", "buildings").stdout
    count = re.search(r"^Feature Count: (\d+)$", out, re.MULTILINE)
    assert count, out
    assert int(count.group(1)) == number_matched(live_server.url, "buildings") == building_count
    assert re.search(r"^Geometry: Multi Polygon$", out, re.MULTILINE), out
    extent = re.search(r"^Extent: \(([\d.]+), ([\d.]+)\) - \(([\d.]+), ([\d.]+)\)$", out, re.MULTILINE)
    assert extent, out
    minx, miny, maxx, maxy = (float(v) for v in extent.groups())
    # Helsinki (~24.9 E) and Kotka (~26.9 E), lon/lat order
    assert 24.5 < minx < 25.5 and 26.5 < maxx < 27.5 and 60.0 < miny < maxy < 60.7


@requires_gdal
def test_ogr2ogr_copies_every_building(live_server, demo_store_url: str, building_count: int, tmp_path: Path) -> None:
    import cim

    out = tmp_path / "buildings.gpkg"
    gdal("ogr2ogr", "-f", "GPKG", str(out), f"OAPIF:{live_server.url}", "buildings")
    copied = pyogrio.read_dataframe(out, layer="buildings")
    assert len(copied) == number_matched(live_server.url, "buildings") == building_count
    assert copied.crs.to_epsg() == 4326
    assert set(copied.geom_type) == {"MultiPolygon"}
    # each feature once (paging neither skipped nor repeated any), and the same features as the store holds
    assert copied["source_id"].is_unique
    with cim.open(demo_store_url) as city:
        stored = city.read("buildings")
    assert set(copied["source_id"]) == set(stored["source_id"])
    # geometries in lon/lat order, as stored
    first = stored.set_index("source_id").geometry
    for _, row in copied.head(50).iterrows():
        assert row.geometry.equals_exact(first[row["source_id"]], tolerance=1e-7)


@requires_gdal
def test_ogr2ogr_spatial_filter(live_server, building_count: int, tmp_path: Path) -> None:
    out = tmp_path / "central.gpkg"
    gdal("ogr2ogr", "-f", "GPKG", "-spat", *(str(v) for v in BBOX), str(out), f"OAPIF:{live_server.url}", "buildings")
    copied = pyogrio.read_dataframe(out, layer="buildings")
    expected = number_matched(live_server.url, "buildings", bbox=",".join(str(v) for v in BBOX))
    assert 0 < len(copied) == expected < building_count
    area = shapely.box(*BBOX)
    assert copied.geometry.intersects(area).all()


# -- OWSLib -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def owslib_client(live_server) -> Features:
    return Features(live_server.url, timeout=60)


def test_owslib_collections(owslib_client: Features) -> None:
    ids = {c["id"] for c in owslib_client.collections()["collections"]}
    assert ids == DEMO_LAYERS | {CATALOG}
    assert set(owslib_client.feature_collections()) == DEMO_LAYERS  # the catalog's items are records


def test_owslib_items_page(owslib_client: Features, building_count: int) -> None:
    page = owslib_client.collection_items("buildings", limit=5)
    assert page["type"] == "FeatureCollection"
    assert len(page["features"]) == page["numberReturned"] == 5
    assert page["numberMatched"] == building_count > 2500
    assert all(f["geometry"]["type"] == "MultiPolygon" for f in page["features"])
    assert len({f["id"] for f in page["features"]}) == 5


def test_owslib_items_bbox(owslib_client: Features, building_count: int) -> None:
    page = owslib_client.collection_items("buildings", bbox=list(BBOX), limit=1000)
    features = page["features"]
    assert 0 < len(features) == page["numberMatched"] < building_count
    area = shapely.box(*BBOX)
    for feature in features:
        assert shapely.geometry.shape(feature["geometry"]).intersects(area), feature["id"]


def test_owslib_collection_extent(owslib_client: Features) -> None:
    collection = owslib_client.collection("buildings")
    assert collection["id"] == "buildings"
    (minx, miny, maxx, maxy), *_ = collection["extent"]["spatial"]["bbox"]
    assert 24.5 < minx < maxx < 27.5 and 60.0 < miny < maxy < 60.7
    assert collection["extent"]["spatial"]["crs"] == "http://www.opengis.net/def/crs/OGC/1.3/CRS84"


def test_owslib_conformance(owslib_client: Features) -> None:
    assert CORE in owslib_client.conformance()["conformsTo"]


# -- CQL2 through real clients ---------------------------------------------------------------------


@requires_gdal
def test_ogr2ogr_where_is_sent_to_the_server_as_cql2(live_server, tmp_path: Path) -> None:
    out = tmp_path / "tall.gpkg"
    result = gdal(
        "ogr2ogr", "--debug", "on", "-f", "GPKG", str(out), f"OAPIF:{live_server.url}", "buildings",
        "-where", "floors > 3",
    )  # fmt: skip
    # the driver typed `floors` from the feature schema and put the filter in the request
    assert re.search(r"items\?[^\s]*filter=floors%20%3E%203", result.stderr), result.stderr[-3000:]
    copied = pyogrio.read_dataframe(out, layer="buildings")
    expected = number_matched(live_server.url, "buildings", filter="floors > 3")
    assert 0 < len(copied) == expected
    assert (copied["floors"] > 3).all() and copied["source_id"].is_unique


def test_owslib_cql2_round_trip(owslib_client: Features, live_server) -> None:
    text = "floors > 3 AND S_INTERSECTS(geometry, BBOX(24.94,60.165,24.955,60.175))"
    page = owslib_client.collection_items("buildings", filter=text, limit=1000)
    assert 0 < page["numberReturned"] == page["numberMatched"] == len(page["features"])
    assert all(f["properties"]["floors"] > 3 for f in page["features"])
    as_json = {"op": "and", "args": [
        {"op": ">", "args": [{"property": "floors"}, 3]},
        {"op": "s_intersects", "args": [{"property": "geometry"}, {"bbox": [24.94, 60.165, 24.955, 60.175]}]},
    ]}  # fmt: skip
    doc = items(live_server.url, "buildings", limit=1000, filter=json.dumps(as_json), **{"filter-lang": "cql2-json"})
    assert {f["id"] for f in doc["features"]} == {f["id"] for f in page["features"]}


def test_owslib_queryables(owslib_client: Features) -> None:
    queryables = owslib_client.collection_queryables("buildings")
    assert queryables["properties"]["floors"]["type"] == "integer"
    assert "geometry" in queryables["properties"]
