"""Housing processes (cim/analysis/housing.py): building-at-point and buildings-in-area on the planned
city (tests/support/planning_city.py), both stores, stored in EPSG:4326 and in Gauss-Krüger EPSG:4548,
through the Python API and through the processes with JSON inputs; the values are the hand-checked
ones of the planned city's docstring."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import shapely
from support.planning_city import DRAWN, X0, Y0, geojson_box, geojson_point, lonlat, publish_planning_city, release_layers
from support.planning_stores import SRIDS, check_outputs, planning_city
from support.postgis import BACKENDS

import cim
from cim.errors import BadInput
from cim.processes import get_process, no_progress
from cim.store import ReleaseDraft, open_store


@pytest.fixture(scope="module", params=SRIDS, ids=[f"srid{s}" for s in SRIDS])
def srid(request: pytest.FixtureRequest) -> int:
    return request.param


@pytest.fixture(scope="module", params=BACKENDS)
def city(request: pytest.FixtureRequest, srid: int, tmp_path_factory: pytest.TempPathFactory) -> Iterator[cim.City]:
    with planning_city(request, "housing", tmp_path_factory, srid) as city:
        yield city



# -- building at a point --------------------------------------------------------------------------
def test_building_at_point_has_its_parcel_and_district(city: cim.City) -> None:
    found = city.building_at_point(lonlat(120, 420))  # inside B1 (x 100..140, y 400..450)
    assert list(found.index) == [1]
    row = found.iloc[0]
    assert (row["name"], row["use"], row["height_m"], row["floors"]) == ("B1", "residential", 32.0, 10)
    assert (row["parcel_id"], row["land_use"]) == ("P1", "R2")
    assert (row["district_code"], row["district_name"]) == ("120101", "和平区")
    assert found.crs.to_epsg() == 4326
    lon, lat = lonlat(120, 425)  # the centroid of B1, lon/lat out whatever the storage CRS
    assert found.geometry.iloc[0].centroid.x == pytest.approx(lon, abs=1e-7)
    assert found.geometry.iloc[0].centroid.y == pytest.approx(lat, abs=1e-7)


def test_building_at_point_in_any_crs_and_form(city: cim.City) -> None:
    gk = city.building_at_point((X0 + 1650, Y0 + 400), crs=DRAWN)  # B5, given in Gauss-Krüger
    assert list(gk["name"]) == ["B5"] and list(gk["parcel_id"]) == ["P4"] and list(gk["district_code"]) == ["120102"]
    lon, lat = lonlat(1650, 400)
    assert list(city.building_at_point(f"POINT ({lon} {lat})")["name"]) == ["B5"]
    assert list(city.building_at_point(shapely.Point(lon, lat))["name"]) == ["B5"]
    assert list(city.building_at_point({"type": "Feature", "geometry": geojson_point(1650, 400), "properties": {}})["name"]) == ["B5"]
    uri = city.building_at_point({"type": "Point", "coordinates": [X0 + 1650, Y0 + 400]}, crs="http://www.opengis.net/def/crs/EPSG/0/4548")
    assert list(uri["name"]) == ["B5"]


def test_building_outside_every_parcel(city: cim.City) -> None:
    found = city.building_at_point(lonlat(25, 25))  # B7: in district 120101, in no parcel
    assert list(found["name"]) == ["B7"]
    assert found["parcel_id"].iloc[0] is None and found["land_use"].iloc[0] is None
    assert found["district_code"].iloc[0] == "120101"


def test_no_building_at_the_point_is_an_empty_result(city: cim.City) -> None:
    found = city.building_at_point(lonlat(300, 800))  # a POI, no building
    assert len(found) == 0
    assert {"parcel_id", "land_use", "district_code", "district_name"} <= set(found.columns)
    outputs = get_process("building-at-point").run(city.store, {"point": geojson_point(300, 800)}, no_progress)
    assert outputs["features"] == {"type": "FeatureCollection", "features": []}
    assert outputs["summary"]["buildings"] == 0


def test_building_at_point_process(city: cim.City) -> None:
    process = get_process("building-at-point")
    assert (process.role, process.sync, process.domain) == (None, True, "housing")
    outputs = process.run(city.store, {"point": geojson_point(610, 410)}, no_progress)  # B3
    check_outputs(process, outputs)
    (feature,) = outputs["features"]["features"]
    assert feature["id"] == 3
    props = feature["properties"]
    assert (props["name"], props["use"], props["parcel_id"], props["land_use"], props["district_code"], props["district_name"]) == (
        "B3", "industrial", "P2", "R2", "120101", "和平区")
    assert outputs["summary"]["buildings"] == 1 and outputs["summary"]["fids"] == [3]
    assert outputs["summary"]["point"] == pytest.approx(list(lonlat(610, 410)))
    gk = process.run(city.store, {"point": {"type": "Point", "coordinates": [X0 + 610, Y0 + 410]}, "crs": "http://www.opengis.net/def/crs/EPSG/0/4548"}, no_progress)
    assert [f["id"] for f in gk["features"]["features"]] == [3]


def test_building_at_point_bad_input(city: cim.City) -> None:
    with pytest.raises(BadInput, match="outside the city"):
        city.building_at_point(lonlat(3000, 500))  # 1 km east of the city
    with pytest.raises(BadInput, match="outside the city"):
        get_process("building-at-point").run(city.store, {"point": geojson_point(500, -2000)}, no_progress)
    with pytest.raises(BadInput, match="Point"):
        city.building_at_point(geojson_box(0, 0, 10, 10))  # a polygon is not a point
    with pytest.raises(BadInput, match="non-finite|Point"):
        city.building_at_point("POINT (nan 39)")
    with pytest.raises(BadInput, match="unknown CRS"):
        city.building_at_point(lonlat(120, 420), crs="EPSG:999999")
    with pytest.raises(BadInput, match="longitude"):
        city.building_at_point((39.1, 117.0))  # latitude, longitude: the wrong axis order


# -- buildings in an area -------------------------------------------------------------------------
def test_buildings_in_a_district(city: cim.City) -> None:
    found = city.buildings_in_area(geojson_box(0, 0, 1000, 1000))  # district 120101: B1, B2, B3, B7
    assert sorted(found.buildings["name"]) == ["B1", "B2", "B3", "B7"]
    assert found.area_m2 == pytest.approx(1_000_000, rel=1e-5)
    # residential: B1 2 000 m² x 10 + B2 600 x 6 + B7 100 x 3; industrial: B3 400 x 2
    by_use = {row["use"]: row for row in found.by_use.to_dict("records")}
    assert by_use["residential"]["buildings"] == 3
    assert by_use["residential"]["footprint_m2"] == pytest.approx(2_700, rel=1e-5)
    assert by_use["residential"]["floor_area_m2"] == pytest.approx(23_900, rel=1e-5)
    assert by_use["industrial"]["buildings"] == 1
    assert by_use["industrial"]["floor_area_m2"] == pytest.approx(800, rel=1e-5)
    assert list(found.by_use["use"]) == ["residential", "industrial"]  # largest floor area first
    assert found.totals["buildings"] == 4
    assert found.totals["footprint_m2"] == pytest.approx(3_100, rel=1e-5)
    assert found.totals["floor_area_m2"] == pytest.approx(24_700, rel=1e-5)
    b1 = found.buildings[found.buildings["name"] == "B1"].iloc[0]
    assert (b1["floors_used"], b1["division_code"]) == (10, "120101")
    assert b1["floor_area_m2"] == pytest.approx(20_000, rel=1e-5)
    assert found.buildings.crs.to_epsg() == 4326


def test_buildings_in_area_counts_partly_inside_whole(city: cim.City) -> None:
    # a box over the east half of B5 (x 1600..1800) and none of B6 (x 1850..1860)
    found = city.buildings_in_area(geojson_box(1700, 300, 1800, 600))
    assert list(found.buildings["name"]) == ["B5"]
    assert found.totals["floor_area_m2"] == pytest.approx(800_000, rel=1e-5)  # 200 x 200 x 20 floors, whole


def test_buildings_in_area_process(city: cim.City) -> None:
    process = get_process("buildings-in-area")
    assert (process.role, process.domain) == (None, "housing")
    outputs = process.run(city.store, {"area": geojson_box(1500, 300, 2000, 700)}, no_progress)  # P4's block: B5, B6
    check_outputs(process, outputs)
    names = sorted(f["properties"]["name"] for f in outputs["features"]["features"])
    assert names == ["B5", "B6"]
    summary = outputs["summary"]
    assert summary["totals"]["buildings"] == 2
    assert summary["totals"]["floor_area_m2"] == pytest.approx(800_100, rel=1e-5)
    assert {row["use"]: row["buildings"] for row in summary["by_use"]} == {"retail": 1, "residential": 1}
    assert [row["code"] for row in summary["by_division"] if row["buildings"]] == ["120102"]
    gk_ring = [[X0 + x, Y0 + y] for x, y in ((1500, 300), (2000, 300), (2000, 700), (1500, 700), (1500, 300))]
    gk = process.run(city.store, {"area": {"type": "Polygon", "coordinates": [gk_ring]}, "crs": "http://www.opengis.net/def/crs/EPSG/0/4548"}, no_progress)
    assert gk["summary"]["totals"]["floor_area_m2"] == pytest.approx(800_100, rel=1e-5)


def test_buildings_in_area_bad_input(city: cim.City) -> None:
    run = get_process("buildings-in-area").run
    with pytest.raises(BadInput, match="outside the city"):
        run(city.store, {"area": geojson_box(5000, 5000, 5100, 5100)}, no_progress)
    with pytest.raises(BadInput, match="not a valid polygon"):  # a bow tie
        bow = [list(lonlat(*p)) for p in ((0, 0), (100, 100), (100, 0), (0, 100), (0, 0))]
        run(city.store, {"area": {"type": "Polygon", "coordinates": [bow]}}, no_progress)
    with pytest.raises(BadInput, match="empty"):
        city.buildings_in_area("POLYGON EMPTY")
    with pytest.raises(BadInput, match="Polygon or MultiPolygon"):
        run(city.store, {"area": geojson_point(100, 100)}, no_progress)
    with pytest.raises(BadInput, match="larger than"):
        city.buildings_in_area(geojson_box(0, 0, 2000, 1000), max_area_km2=1.0)


def test_floors_from_height_when_missing(store_url: str) -> None:
    """A building without floors counts round(height / 3 m) floors (cim/impact.py's rule): B1 32 m → 11."""
    layers = release_layers(4326)
    buildings = next(layer for layer in layers if layer.spec.name == "buildings")
    buildings.frame.loc[buildings.frame["name"] == "B1", "floors"] = None
    with open_store(store_url) as store:
        store.publish(ReleaseDraft(layers=layers, srid=4326))
    with cim.open(store_url) as city:
        found = city.buildings_in_area(geojson_box(50, 300, 450, 700))  # P1: B1, B2
        b1 = found.buildings[found.buildings["name"] == "B1"].iloc[0]
        assert b1["floors_used"] == 11
        assert found.totals["floor_area_m2"] == pytest.approx(2_000 * 11 + 600 * 6, rel=1e-5)


def test_publish_helper_is_the_planned_city(tmp_path) -> None:
    """The fixture's store holds the planned city's seven buildings (guards the fixture itself)."""
    url = str(tmp_path / "c.duckdb")
    publish_planning_city(url)
    with cim.open(url) as city:
        assert sorted(city.read("buildings")["name"]) == [f"B{i}" for i in range(1, 8)]
