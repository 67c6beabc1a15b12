"""Planning processes (cim/analysis/planning.py, zoning.py, landuse.py): parcel-at-point,
zoning-compliance and landuse-by-district on the planned city (tests/support/planning_city.py), both
stores, stored in EPSG:4326 and in Gauss-Krüger EPSG:4548, through the Python API and the processes
with JSON inputs. Expected values are the hand-checked ones of the planned city's docstring:
P4's FAR (800 000 + 100) / 160 000 = 5.000625; compliance = height B1 (32 > 30) and B4 (90 > 60),
FAR P4 (> 4), use B3 (industrial in a residential zone); each district 1 000 000 m² of one use."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import shapely
from support.planning_city import X0, Y0, geojson_box, geojson_point, lonlat
from support.planning_stores import SRIDS, check_outputs, planning_city
from support.postgis import BACKENDS

import cim
from cim.analysis.zoning import ALLOWED_USES, allowed_uses
from cim.errors import BadInput, LayerNotFound
from cim.processes import get_process, no_progress
from cim.store import ReleaseDraft, open_store

GK = "http://www.opengis.net/def/crs/EPSG/0/4548"


@pytest.fixture(scope="module", params=SRIDS, ids=[f"srid{s}" for s in SRIDS])
def srid(request: pytest.FixtureRequest) -> int:
    return request.param


@pytest.fixture(scope="module", params=BACKENDS)
def city(request: pytest.FixtureRequest, srid: int, tmp_path_factory: pytest.TempPathFactory) -> Iterator[cim.City]:
    with planning_city(request, "planning", tmp_path_factory, srid) as city:
        yield city



# -- parcel at a point ----------------------------------------------------------------------------
def test_parcel_at_point_with_zoning_district_and_far(city: cim.City) -> None:
    found = city.parcel_at_point(lonlat(1700, 500))  # P4 (x 1550..1950)
    assert len(found) == 1
    p4 = found.iloc[0]
    assert (p4["parcel_id"], p4["land_use"]) == ("P4", "B1")
    assert (p4["zone_use"], p4["zoning_code"], p4["height_limit_m"], p4["far_limit"]) == ("commercial", "B1", 60.0, 4.0)
    assert [(z["use"], z["zoning_code"]) for z in p4["zones"]] == [("commercial", "B1")]
    assert p4["zones"][0]["share"] == pytest.approx(1.0, rel=1e-6)
    assert (p4["district_code"], p4["district_name"]) == ("120102", "河东区")
    assert p4["parcel_area_m2"] == pytest.approx(160_000, rel=1e-6)
    assert p4["buildings"] == 2  # B5 and B6
    assert p4["floor_area_m2"] == pytest.approx(800_100, rel=1e-6)
    assert p4["far"] == pytest.approx(5.000625, rel=1e-6)
    assert p4["far_exceeded"] is True
    assert found.crs.to_epsg() == 4326


def test_parcels_below_their_limit(city: cim.City) -> None:
    p1 = city.parcel_at_point(lonlat(250, 500)).iloc[0]
    assert (p1["parcel_id"], p1["zone_use"], p1["far_limit"], p1["district_code"]) == ("P1", "residential", 2.0, "120101")
    assert p1["floor_area_m2"] == pytest.approx(23_600, rel=1e-6)  # B1 2 000 x 10 + B2 600 x 6
    assert p1["far"] == pytest.approx(0.1475, rel=1e-6)
    assert p1["far_exceeded"] is False
    p3 = city.parcel_at_point((X0 + 1300, Y0 + 650), crs=GK).iloc[0]
    assert p3["parcel_id"] == "P3"
    assert p3["far"] == pytest.approx(3.75, rel=1e-6)  # B4 20 000 x 30 / 160 000
    assert p3["far_exceeded"] is False


def test_no_parcel_at_the_point_is_an_empty_result(city: cim.City) -> None:
    assert len(city.parcel_at_point(lonlat(25, 25))) == 0  # B7's corner: outside every parcel
    outputs = get_process("parcel-at-point").run(city.store, {"point": geojson_point(25, 25)}, no_progress)
    assert outputs["features"]["features"] == [] and outputs["summary"]["parcels"] == 0


def test_parcel_at_point_process(city: cim.City) -> None:
    process = get_process("parcel-at-point")
    assert (process.role, process.sync, process.domain) == (None, True, "planning")
    outputs = process.run(city.store, {"point": {"type": "Point", "coordinates": [X0 + 600, Y0 + 350]}, "crs": GK}, no_progress)
    check_outputs(process, outputs)
    (feature,) = outputs["features"]["features"]
    props = feature["properties"]
    assert feature["id"] == 2
    assert (props["parcel_id"], props["zone_use"], props["height_limit_m"], props["far_limit"]) == ("P2", "residential", 30.0, 2.0)
    assert props["far"] == pytest.approx(0.005, rel=1e-6)  # B3 400 x 2 / 160 000
    assert props["zones"][0]["fid"] == 1 and props["zones"][0]["zoning_code"] == "R2"
    assert outputs["summary"]["fids"] == [2]


def test_parcel_at_point_bad_input(city: cim.City) -> None:
    with pytest.raises(BadInput, match="outside the city"):
        city.parcel_at_point(lonlat(-1000, 500))
    with pytest.raises(BadInput, match="Point"):
        get_process("parcel-at-point").run(city.store, {"point": {"type": "LineString", "coordinates": [[117, 39], [117.1, 39]]}}, no_progress)
    with pytest.raises(BadInput):
        get_process("parcel-at-point").run(city.store, {"point": {"type": "Point", "coordinates": ["117", 39]}}, no_progress)


# -- zoning compliance ----------------------------------------------------------------------------
def violations(report) -> list[tuple]:
    return [(row["kind"], row["layer"], row["name"]) for row in report.violations.to_dict("records")]


def test_zoning_compliance_over_the_city(city: cim.City) -> None:
    seen: list[tuple[int, str]] = []
    report = city.zoning_compliance(progress=lambda percent, message="": seen.append((percent, message)))
    assert violations(report) == [  # by kind, the worst first: B4 90 / 60 m before B1 32 / 30 m
        ("height", "buildings", "B4"), ("height", "buildings", "B1"), ("far", "parcels", "P4"), ("use", "buildings", "B3"),
    ]
    rows = {(row["kind"], row["name"]): row for row in report.violations.to_dict("records")}
    b1 = rows[("height", "B1")]
    assert (b1["value"], b1["limit"], b1["zone_use"], b1["zoning_code"], b1["fid"], b1["zone_fid"]) == (32.0, 30.0, "residential", "R2", 1, 1)
    b4 = rows[("height", "B4")]
    assert (b4["value"], b4["limit"], b4["zoning_code"]) == (90.0, 60.0, "B1")
    p4 = rows[("far", "P4")]
    assert p4["value"] == pytest.approx(5.000625, rel=1e-6)
    assert (p4["limit"], p4["zone_use"], p4["fid"]) == (4.0, "commercial", 4)
    assert p4["floor_area_m2"] == pytest.approx(800_100, rel=1e-6)
    assert p4["parcel_area_m2"] == pytest.approx(160_000, rel=1e-6)
    b3 = rows[("use", "B3")]
    assert (b3["value"], b3["zone_use"]) == ("industrial", "residential")
    assert "industrial" not in b3["limit"] and "residential" in b3["limit"]
    summary = report.summary
    assert summary["violations"] == {"height": 2, "far": 1, "use": 1} and summary["total"] == 4
    assert (summary["listed"], summary["truncated"]) == (4, False)
    assert (summary["buildings_checked"], summary["buildings_in_zone"], summary["buildings_without_height"]) == (7, 7, 1)  # B6
    assert (summary["parcels_checked"], summary["parcels_in_zone"], summary["zones"]) == (4, 4, 2)
    assert summary["area"] is False
    percents = [p for p, _ in seen]
    assert percents == sorted(percents) and percents[-1] == 100 and len(percents) >= 4
    assert report.violations.crs.to_epsg() == 4326


def test_zoning_compliance_in_an_area(city: cim.City) -> None:
    west = city.zoning_compliance(geojson_box(0, 0, 1000, 1000))  # district 120101
    assert violations(west) == [("height", "buildings", "B1"), ("use", "buildings", "B3")]
    assert (west.summary["buildings_checked"], west.summary["parcels_checked"]) == (4, 2)
    p4 = city.zoning_compliance(geojson_box(1550, 300, 1950, 700))  # P4 only: B5 (59 m ≤ 60) and B6 (no height)
    assert violations(p4) == [("far", "parcels", "P4")]
    assert (p4.summary["buildings_checked"], p4.summary["parcels_checked"]) == (2, 1)
    # a small area round P4's middle (its point on surface) reports P4's FAR from all its buildings
    middle = city.zoning_compliance(geojson_box(1740, 490, 1760, 510))
    assert violations(middle) == [("far", "parcels", "P4")]
    assert middle.violations["value"].iloc[0] == pytest.approx(5.000625, rel=1e-6)
    assert (middle.summary["buildings_checked"], middle.summary["parcels_checked"]) == (0, 1)
    # a parcel's own polygon selects it and its buildings, not the neighbours it would touch
    p3 = city.zoning_compliance(geojson_box(1050, 300, 1450, 700))
    assert violations(p3) == [("height", "buildings", "B4")]
    assert (p3.summary["buildings_checked"], p3.summary["parcels_checked"]) == (1, 1)
    # B1 (x 100..140, y 400..450) is in an area holding its centroid (120, 425), not in one that only clips it
    assert violations(city.zoning_compliance(geojson_box(110, 410, 130, 440))) == [("height", "buildings", "B1")]
    assert violations(city.zoning_compliance(geojson_box(90, 390, 110, 410))) == []


def test_zoning_compliance_with_another_use_table(city: cim.City) -> None:
    report = city.zoning_compliance(allowed_uses={"residential": ["residential", "industrial"]})
    assert [v for v in violations(report) if v[0] == "use"] == []
    strict = city.zoning_compliance(allowed_uses={"commercial": ["office"]})  # B5 retail, B6 residential now forbidden
    assert [v[2] for v in violations(strict) if v[0] == "use"] == ["B3", "B5", "B6"]
    assert strict.summary["allowed_uses"]["commercial"] == ["office"]


def test_zoning_compliance_lists_at_most_limit_of_each_kind(city: cim.City) -> None:
    report = city.zoning_compliance(limit=1)
    assert violations(report) == [("height", "buildings", "B4"), ("far", "parcels", "P4"), ("use", "buildings", "B3")]
    assert report.summary["violations"] == {"height": 2, "far": 1, "use": 1}  # counted all the same
    assert (report.summary["total"], report.summary["listed"], report.summary["truncated"]) == (4, 3, True)
    none = get_process("zoning-compliance").run(city.store, {"limit": 0}, no_progress)
    assert none["features"]["features"] == [] and none["summary"]["total"] == 4
    with pytest.raises(BadInput, match="limit"):
        city.zoning_compliance(limit=-1)


def test_zoning_compliance_process(city: cim.City) -> None:
    process = get_process("zoning-compliance")
    assert (process.role, process.sync, process.domain) == ("analyst", True, "planning")
    seen: list[int] = []
    outputs = process.run(city.store, {}, lambda percent, message="": seen.append(percent))
    check_outputs(process, outputs)
    features = outputs["features"]["features"]
    assert [f["id"] for f in features] == ["height:buildings/4", "height:buildings/1", "far:parcels/4", "use:buildings/3"]
    assert [f["properties"]["kind"] for f in features] == ["height", "height", "far", "use"]
    assert features[2]["properties"]["value"] == pytest.approx(5.000625, rel=1e-6)
    assert features[2]["geometry"]["type"] == "MultiPolygon"
    assert outputs["summary"]["violations"] == {"height": 2, "far": 1, "use": 1}
    assert seen[-1] == 100
    gk_ring = [[X0 + x, Y0 + y] for x, y in ((0, 0), (1000, 0), (1000, 1000), (0, 1000), (0, 0))]
    west = process.run(city.store, {"area": {"type": "Polygon", "coordinates": [gk_ring]}, "crs": GK,
                                    "allowed_uses": {"residential": ["residential", "industrial"]}}, no_progress)
    assert [f["id"] for f in west["features"]["features"]] == ["height:buildings/1"]


def test_zoning_compliance_bad_input(city: cim.City) -> None:
    run = get_process("zoning-compliance").run
    with pytest.raises(BadInput, match="outside the city"):
        run(city.store, {"area": geojson_box(3000, 0, 3500, 500)}, no_progress)
    with pytest.raises(BadInput, match="not a valid polygon"):
        bow = [list(lonlat(*p)) for p in ((0, 0), (100, 100), (100, 0), (0, 100), (0, 0))]
        run(city.store, {"area": {"type": "Polygon", "coordinates": [bow]}}, no_progress)
    with pytest.raises(BadInput, match="empty"):
        city.zoning_compliance("MULTIPOLYGON EMPTY")
    with pytest.raises(BadInput, match="Polygon or MultiPolygon"):
        run(city.store, {"area": geojson_point(100, 100)}, no_progress)
    with pytest.raises(BadInput, match="allowed_uses"):
        city.zoning_compliance(allowed_uses={"residential": "industrial"})


# -- land use by district -------------------------------------------------------------------------
def test_landuse_by_district(city: cim.City) -> None:
    table = city.landuse_by_district()
    assert list(table.columns) == ["code", "name", "use", "area_m2", "share", "division_area_m2"]
    assert [(r["code"], r["name"], r["use"]) for r in table.to_dict("records")] == [
        ("120101", "和平区", "residential"), ("120102", "河东区", "commercial"),
    ]
    assert list(table["area_m2"]) == pytest.approx([1_000_000, 1_000_000], rel=1e-6)
    assert list(table["division_area_m2"]) == pytest.approx([1_000_000, 1_000_000], rel=1e-6)
    assert list(table["share"]) == pytest.approx([1.0, 1.0], rel=1e-6)


def test_landuse_of_the_city(city: cim.City) -> None:
    table = city.landuse_by_district(level="city")
    assert sorted(table["use"]) == ["commercial", "residential"] and set(table["code"]) == {"120100"}
    # (in lon/lat storage the four-vertex boxes' edges differ from the Gauss-Krüger ones by ~3 cm: 3e-5)
    assert list(table["area_m2"]) == pytest.approx([1_000_000, 1_000_000], rel=1e-4)
    assert list(table["share"]) == pytest.approx([0.5, 0.5], rel=1e-4)


def test_landuse_by_district_process(city: cim.City) -> None:
    process = get_process("landuse-by-district")
    assert (process.role, process.domain) == ("analyst", "planning")
    outputs = process.run(city.store, {"level": "district"}, no_progress)
    check_outputs(process, outputs)
    rows = outputs["table"]
    assert [(r["code"], r["use"]) for r in rows] == [("120101", "residential"), ("120102", "commercial")]
    assert [r["share"] for r in rows] == pytest.approx([1.0, 1.0], rel=1e-6)
    assert process.run(city.store, {}, no_progress)["table"] == rows  # level defaults to district


def test_landuse_by_district_bad_input(city: cim.City) -> None:
    with pytest.raises(BadInput, match="no division of level 'street'.*city, district"):
        city.landuse_by_district(level="street")
    with pytest.raises(BadInput, match="unknown division level"):
        get_process("landuse-by-district").run(city.store, {"level": "county"}, no_progress)


# -- rules and missing layers ---------------------------------------------------------------------
def test_the_use_table() -> None:
    assert "industrial" not in ALLOWED_USES["residential"] and "residential" in ALLOWED_USES["commercial"]
    table = allowed_uses({"Residential ": ["Residential", "industrial"]})
    assert table["residential"] == frozenset({"residential", "industrial"})
    assert table["industrial"] == ALLOWED_USES["industrial"]  # the others unchanged
    with pytest.raises(BadInput, match="every building use must be a string"):
        allowed_uses({"residential": [1]})


def test_a_city_without_zoning(store_url: str) -> None:
    from support.planning_city import release_layers

    layers = [layer for layer in release_layers(4326) if layer.spec.name != "landuse"]
    with open_store(store_url) as store:
        store.publish(ReleaseDraft(layers=layers, srid=4326))
    with cim.open(store_url) as city:
        with pytest.raises(LayerNotFound, match="no 'landuse' layer"):
            city.zoning_compliance()
        with pytest.raises(LayerNotFound, match="no 'landuse' layer"):
            city.landuse_by_district()
        p4 = city.parcel_at_point(lonlat(1700, 500)).iloc[0]  # no zoning: the parcel still, FAR without a limit
        assert p4["zone_use"] is None and p4["zones"] == [] and p4["far_exceeded"] is None
        assert p4["far"] == pytest.approx(5.000625, rel=1e-6)


def test_an_invalid_zone_is_made_valid_for_overlays(store_url: str) -> None:
    """A self-intersecting zone (a bow tie over district 120101, as an edit through the API or an old
    release may hold) is measured as shapely.make_valid reads it: two triangles of 1000 x 500 / 2 m²."""
    import geopandas as gpd
    from support.planning_city import DRAWN, release_layers

    layers = release_layers(4548)
    zoning = next(layer for layer in layers if layer.spec.name == "landuse")
    bow = shapely.MultiPolygon([shapely.Polygon([(X0, Y0), (X0 + 1000, Y0 + 1000), (X0 + 1000, Y0), (X0, Y0 + 1000)])])
    zoning.frame.loc[zoning.frame.index[0], "geometry"] = bow
    assert not gpd.GeoSeries([bow], crs=DRAWN).is_valid.iloc[0]
    with open_store(store_url) as store:
        store.publish(ReleaseDraft(layers=layers, srid=4548))
    with cim.open(store_url) as city:
        table = city.landuse_by_district()
        west = table[table["code"] == "120101"].iloc[0]
        assert west["use"] == "residential"
        assert west["area_m2"] == pytest.approx(500_000, rel=1e-9)
        assert west["share"] == pytest.approx(0.5, rel=1e-9)
        p1 = city.parcel_at_point(lonlat(250, 500)).iloc[0]  # P1 x 50..450, y 300..700: in the left triangle's part
        assert p1["zones"][0]["use"] == "residential" and 0 < p1["zones"][0]["share"] < 1
