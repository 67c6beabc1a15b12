"""Impact analysis (cim/impact.py, docs/warnings/impact.md) on both stores: every figure against an
independent geopandas overlay of the same data (geodesic areas and lengths with pyproj.Geod) and a few
hand-computed numbers; the HTTP routes (POST /impact); bad polygons."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from click.testing import CliRunner
from pyproj import Geod
from support.postgis import BACKENDS, backend_store

import cim
from cim.errors import BadInput, ConfigError
from cim.impact import impact
from cim.impact_people import DEFAULT_PERSONS_PER_M2, ENV
from cim.store import LayerData, ReleaseDraft, open_store
from layers.catalog import CATALOG

GEOD = Geod(ellps="GRS80")
#: the analysed area: a pentagon over both districts (lon/lat, CGCS2000)
AREA = shapely.Polygon([(117.1750, 39.1250), (117.1950, 39.1260), (117.1960, 39.1400), (117.1850, 39.1460), (117.1740, 39.1400)])
WEST = shapely.box(117.160, 39.110, 117.185, 39.160)
EAST = shapely.box(117.185, 39.110, 117.210, 39.160)
USES = ["residential", "office", "retail", "school", "industrial", None, "apartments", "yes"]


def layer(name: str, rows: list[dict], geoms: list, crs: int = 4490, spec=None) -> LayerData:
    """A layer of the catalog (or ``spec``) from rows of some of its fields (the others empty), lon/lat geometries."""
    spec = spec or CATALOG[name]
    frame = gpd.GeoDataFrame(pd.DataFrame(rows), geometry=geoms, crs=4490)
    for f in spec.fields:
        if f.name not in frame.columns:
            frame[f.name] = None
    frame["source"] = "test"
    frame["source_id"] = [str(i) for i in range(len(frame))]
    return LayerData(spec, frame.to_crs(crs) if crs != 4490 else frame)


def city_layers(srid: int = 4490) -> list[LayerData]:
    rng = np.random.default_rng(12)
    buildings, brows = [], []
    for i, (x, y) in enumerate(rng.uniform((117.170, 39.120), (117.200, 39.150), (300, 2))):
        w, h = rng.uniform(0.00005, 0.0003, 2)
        buildings.append(shapely.MultiPolygon([shapely.box(x, y, x + w, y + h)]))
        floors = [None, 1, 3, 6, 12][i % 5]
        height = [None, 20.0, None, 31.0, 4.0, 0.0][i % 6]
        brows.append({"use": USES[i % len(USES)], "floors": floors, "height_m": height, "name": f"B{i}"})
    pois, prows = [], []
    for i, (x, y) in enumerate(rng.uniform((117.170, 39.120), (117.200, 39.150), (120, 2))):
        pois.append(shapely.Point(x, y))
        prows.append({"name": f"P{i}", "category": ["amenity", "shop", "tourism", None][i % 4]})
    parcels = [shapely.MultiPolygon([shapely.box(x, y, x + 0.003, y + 0.002)]) for x in np.arange(117.170, 117.200, 0.004) for y in (39.123, 39.137)]
    roads = [
        shapely.MultiLineString([[(117.165, 39.135), (117.205, 39.136)]]),
        shapely.MultiLineString([[(117.180, 39.115), (117.181, 39.155)]]),
        shapely.MultiLineString([[(117.176, 39.128), (117.192, 39.143), (117.199, 39.131)]]),
        shapely.MultiLineString([[(117.30, 39.30), (117.31, 39.31)]]),  # far outside
    ]
    divisions = [
        shapely.MultiPolygon([WEST.union(EAST)]),
        shapely.MultiPolygon([WEST]),
        shapely.MultiPolygon([EAST]),
        shapely.MultiPolygon([shapely.box(117.30, 39.30, 117.32, 39.32)]),  # a street, far from the area
    ]
    drows = [
        {"code": "120100", "name": "天津市", "level": "city"},
        {"code": "120101", "name": "和平区", "level": "district"},
        {"code": "120102", "name": "河东区", "level": "district"},
        {"code": "120103001", "name": "某街道", "level": "street"},
    ]
    return [
        layer("admin_divisions", drows, divisions, srid),
        layer("buildings", brows, buildings, srid),
        layer("pois", prows, pois, srid),
        layer("parcels", [{"parcel_id": f"L{i}"} for i in range(len(parcels))], parcels, srid),
        layer("roads", [{"road_class": c} for c in ("primary", "residential", "primary", "track")], roads, srid),
    ]


@pytest.fixture(scope="module", params=BACKENDS)
def city_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The test city on each backend, shared by the module's tests: read only."""
    with backend_store(request, "impact", tmp_path_factory.mktemp("impact")) as url:
        with open_store(url) as store:
            store.publish(ReleaseDraft(layers=city_layers(), srid=4490))
        yield url


def geodesic_area(geom) -> float:
    return abs(GEOD.geometry_area_perimeter(geom)[0])


def geodesic_length(geom) -> float:
    return GEOD.geometry_length(geom)


def expected(layers: dict[str, gpd.GeoDataFrame], area) -> dict:
    """The figures computed directly with geopandas (sjoin, overlay) and pyproj.Geod, not cim.impact."""
    aframe = gpd.GeoDataFrame(geometry=[area], crs=4490)
    b = gpd.sjoin(layers["buildings"], aframe, predicate="intersects").drop(columns="index_right")
    floors = b["floors"].astype(float)
    floors = floors.where(floors > 0, np.maximum(np.round(b["height_m"].astype(float) / 3), 1).where(b["height_m"] > 0)).fillna(1)
    floor_area = b.geometry.map(geodesic_area) * floors
    classes = {"residential": "residential", "apartments": "residential", "office": "office", "retail": "retail", "school": "education", "industrial": "industrial"}
    rate = b["use"].map(lambda u: DEFAULT_PERSONS_PER_M2[classes.get(u, "other")])
    districts = layers["admin_divisions"][layers["admin_divisions"]["level"] == "district"]
    def division(geoms):
        cent = gpd.GeoDataFrame(geometry=shapely.centroid(geoms.to_numpy()), index=geoms.index, crs=4490)
        return gpd.sjoin(cent, districts[["code", "geometry"]], predicate="within")["code"].reindex(geoms.index)
    p = gpd.sjoin(layers["pois"], aframe, predicate="intersects")
    pa = gpd.sjoin(layers["parcels"], aframe, predicate="intersects")
    r = gpd.overlay(layers["roads"], aframe, how="intersection", keep_geom_type=True)
    r["length"] = r.geometry.map(geodesic_length)
    rd = gpd.overlay(r, districts[["code", "geometry"]], how="intersection", keep_geom_type=True)
    rd["length"] = rd.geometry.map(geodesic_length)
    return {
        "buildings": len(b), "floor_area": floor_area.sum(), "people": (floor_area * rate).sum(),
        "pois": len(p), "parcels": len(pa), "road_length": r["length"].sum(),
        "by_division": pd.DataFrame({
            "buildings": b.groupby(division(b.geometry)).size(),
            "floor_area": floor_area.groupby(division(b.geometry)).sum(),
            "pois": p.groupby(division(p.geometry)).size(),
            "parcels": pa.groupby(division(pa.geometry)).size(),
            "road_length": rd.groupby("code")["length"].sum(),
        }).fillna(0),
        "pois_by_category": p["category"].fillna("(none)").value_counts().to_dict(),
        "roads_by_class": r.groupby("road_class")["length"].sum().to_dict(),
    }


def test_every_figure_matches_an_independent_overlay(city_url: str) -> None:
    layers = {data.spec.name: data.frame for data in city_layers()}
    want = expected(layers, AREA)
    with cim.open(city_url) as city:
        got = city.impact(AREA, area_crs=4490, lists=True)
    t = got.totals
    assert want["buildings"] > 50 and want["pois"] > 10 and want["parcels"] > 3  # the data exercise the code
    assert t["buildings"] == want["buildings"] and t["pois"] == want["pois"] and t["parcels"] == want["parcels"]
    assert t["floor_area_m2"] == pytest.approx(want["floor_area"], rel=1e-4)
    assert t["people"] == pytest.approx(want["people"], rel=1e-4)
    assert t["road_length_m"] == pytest.approx(want["road_length"], rel=1e-4)
    assert t["area_m2"] == pytest.approx(geodesic_area(AREA), rel=1e-4)
    assert got.division_level == "district" and got.absent == ()
    table = got.by_division.set_index("code")
    assert list(table.index) == ["120101", "120102"]  # no "(no division)" row: everything is in a district
    for code in table.index:
        row, exp = table.loc[code], want["by_division"].loc[code]
        assert (row["buildings"], row["pois"], row["parcels"]) == (exp["buildings"], exp["pois"], exp["parcels"])
        assert row["floor_area_m2"] == pytest.approx(exp["floor_area"], rel=1e-4)
        assert row["road_length_m"] == pytest.approx(exp["road_length"], rel=1e-4)
    assert table["people"].sum() == pytest.approx(t["people"], rel=1e-9)
    assert dict(zip(got.pois_by_category["category"], got.pois_by_category["pois"])) == want["pois_by_category"]
    classes = dict(zip(got.roads_by_class["road_class"], got.roads_by_class["length_m"]))
    assert classes.keys() == want["roads_by_class"].keys()
    for name, length in want["roads_by_class"].items():
        assert classes[name] == pytest.approx(length, rel=1e-4)
    assert len(got.lists["buildings"]) == t["buildings"] and set(got.lists["roads"]["road_class"]) == {"primary", "residential"}
    assert got.lists["buildings"]["division_code"].isin(["120101", "120102"]).all()


def test_hand_computed_building_in_a_projected_store(store_url: str) -> None:
    """A 20 m × 10 m footprint of 5 floors in a Gauss-Krüger store: 1,000 m², 27 residents (0.027/m²);
    a 9 m high office without floors: 3 floors; a 100 m road of which 40 m inside."""
    x0, y0 = 39_500_000.0, 4_330_000.0  # EPSG:4527, CGCS2000 3° GK zone 39 with its prefix (117°E)
    crs = 4527
    houses = layer("buildings", [{"use": "residential", "floors": 5, "height_m": None}, {"use": "office", "floors": None, "height_m": 9.0}],
                   [shapely.MultiPolygon([shapely.box(x0, y0, x0 + 20, y0 + 10)]), shapely.MultiPolygon([shapely.box(x0 + 30, y0, x0 + 40, y0 + 10)])])
    road = layer("roads", [{"road_class": "primary"}], [shapely.MultiLineString([[(x0 - 10, y0 + 5), (x0 + 90, y0 + 5)]])])
    for data in (houses, road):
        data.frame.set_crs(crs, allow_override=True, inplace=True)
    houses.frame["floors"] = houses.frame["floors"].astype("Int64")
    with open_store(store_url) as store:
        store.publish(ReleaseDraft([houses, road], srid=crs))
        area = shapely.box(x0 - 1, y0 - 1, x0 + 41, y0 + 11)  # 42 m × 12 m
        got = impact(store, area, area_crs=crs, lists=["buildings"])
    assert got.metric_crs.endswith("4527")
    assert got.totals["buildings"] == 2
    assert got.totals["floor_area_m2"] == pytest.approx(20 * 10 * 5 + 10 * 10 * 3)
    assert got.totals["people"] == pytest.approx(1000 * 0.027 + 300 * 0.08)
    assert got.totals["road_length_m"] == pytest.approx(42.0)
    assert got.totals["area_m2"] == pytest.approx(42 * 12)
    assert set(got.absent) == {"pois", "parcels", "admin_divisions"}
    assert got.totals["pois"] == 0 and got.by_division.empty and got.pois_by_category.empty
    assert list(got.lists["buildings"]["floors_used"]) == [5.0, 3.0]


def test_population_layer_and_configured_rates(store_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    with open_store(store_url) as store:
        store.publish(ReleaseDraft(layers=city_layers(), srid=4490))
    with cim.open(store_url) as city:
        base = city.impact(AREA, area_crs=4490)
        doubled = city.impact(AREA, area_crs=4490, persons_per_m2={k: 2 * v for k, v in DEFAULT_PERSONS_PER_M2.items()})
        assert doubled.totals["people"] == pytest.approx(2 * base.totals["people"])
        rates = tmp_path / "rates.yaml"
        rates.write_text("residential: 0\napartments: 0\nother: 0\noffice: 0\nretail: 0\neducation: 0\nindustrial: 0\n")
        monkeypatch.setenv(ENV, str(rates))
        assert city.impact(AREA, area_crs=4490).totals["people"] == 0
        monkeypatch.setenv(ENV, '{"residential": "many"}')
        with pytest.raises(ConfigError, match="residential"):
            city.impact(AREA, area_crs=4490)
        monkeypatch.delenv(ENV)
        with pytest.raises(BadInput, match="persons per m"):
            city.impact(AREA, area_crs=4490, persons_per_m2={"office": -1})
    # a population layer: a polygon of 1,000 people partly inside (areal weighting), one of 7 inside
    from cim.layerspec import FieldSpec, LayerSpec

    spec = LayerSpec(name="population", title="Population", description="people", geometry_type="MultiPolygon",
                     fields=(FieldSpec("population", "number", "persons"),), category="test", minzoom=0, maxzoom=22)
    partly = shapely.box(117.1900, 39.1300, 117.2000, 39.1340)
    inside = shapely.box(117.1810, 39.1300, 117.1820, 39.1310)
    pop = layer("population", [{"population": 1000.0}, {"population": 7.0}], [shapely.MultiPolygon([partly]), shapely.MultiPolygon([inside])], spec=spec)
    with open_store(store_url) as store:
        store.publish(ReleaseDraft(layers=city_layers() + [pop], srid=4490))
        got = impact(store, AREA, area_crs=4490)
    share = geodesic_area(partly.intersection(AREA)) / geodesic_area(partly)
    assert 0.05 < share < 0.95
    assert got.people_source == "population"
    assert got.totals["people"] == pytest.approx(1000 * share + 7, rel=1e-4)
    table = got.by_division.set_index("code")
    assert table.loc["120101", "people"] == pytest.approx(7) and table.loc["120102", "people"] == pytest.approx(1000 * share, rel=1e-4)


@pytest.mark.parametrize(
    ("area", "message"),
    [
        (shapely.Polygon(), "empty"),
        (shapely.Point(117.18, 39.13), "Polygon or MultiPolygon"),
        (shapely.Polygon([(117.17, 39.12), (117.19, 39.14), (117.19, 39.12), (117.17, 39.14)]), "not a valid polygon"),
        ({"type": "Polygon", "coordinates": "x"}, "not valid GeoJSON"),
        ({"type": "LineString", "coordinates": [[0, 0], [1, 1]]}, "Polygon or MultiPolygon"),
        ("POLYGON((", "not valid WKT"),
        (shapely.box(10.0, 10.0, 10.01, 10.01), "outside the city"),
        (shapely.box(116.0, 38.0, 118.0, 40.0), "larger than"),
        (shapely.box(39.12, 117.17, 39.13, 117.18), "outside longitude"),
        (shapely.Polygon([(117.17, 39.12), (117.18, 39.12), (117.18, float("nan")), (117.17, 39.12)]), "non-finite|Invalid Coordinate"),
        (42, "must be a polygon"),
    ],
)
def test_bad_polygons_are_refused(city_url: str, area, message: str) -> None:
    with open_store(city_url) as store, pytest.raises(BadInput, match=message):
        impact(store, area, area_crs=4490)


def test_post_impact_route(city_url: str) -> None:
    from fastapi.testclient import TestClient

    from ogcapi.app import create_app

    with TestClient(create_app(city_url, server_url="http://testserver")) as client:
        body = {"type": "Feature", "geometry": shapely.geometry.mapping(AREA), "properties": {}}
        ok = client.post("/impact?lists=buildings,roads", json=body)
        assert ok.status_code == 200, ok.text
        doc = ok.json()
        with cim.open(city_url) as city:
            direct = city.impact(AREA)
        assert doc["totals"]["buildings"] == direct.totals["buildings"]
        assert doc["totals"]["people"] == pytest.approx(direct.totals["people"])
        assert [d["code"] for d in doc["by_division"]] == ["120101", "120102"]
        assert doc["lists"]["buildings"]["type"] == "FeatureCollection"
        assert len(doc["lists"]["buildings"]["features"]) == direct.totals["buildings"]
        assert "pois" not in doc["lists"]
        lon, lat = doc["lists"]["buildings"]["features"][0]["geometry"]["coordinates"][0][0][0]
        assert 117.1 < lon < 117.3 and 39.1 < lat < 39.2
        hostile = [
            client.post("/impact", content=b"{", headers={"content-type": "application/json"}),
            client.post("/impact", json={"type": "Point", "coordinates": [117.18, 39.13]}),
            client.post("/impact", json={"type": "Polygon", "coordinates": [[[1e308, 1e308], [1, 2]]]}),
            client.post("/impact", json=[1, 2]),
            client.post("/impact", content=b"x" * 100, headers={"content-type": "text/plain"}),
            client.post("/impact?lists=everything", json=body),
            client.post("/impact?max=1", json={"type": "Polygon", "coordinates": [[[0, 0], [0, 1], [1, 1], [0, 0]]]}),
            client.post("/impact", json={"type": "Polygon", "coordinates": [[[0, 0]] * 5] * 3000}),
            client.get("/collections/warnings/items/abc/impact"),
            client.get("/collections/warnings/items/99999999999999999999999/impact"),
        ]
        for response in hostile:
            assert 400 <= response.status_code < 500, (response.status_code, response.text)
            assert response.json()["code"] and response.json()["description"]


def test_lists_longer_than_max_features_are_refused(city_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from fastapi.testclient import TestClient

    from cim.limits import limits
    from ogcapi.app import create_app

    monkeypatch.setenv("CIM_LIMIT_MAX_FEATURES", "10")
    limits.cache_clear()
    try:
        with TestClient(create_app(city_url, server_url="http://testserver")) as client:
            body = shapely.geometry.mapping(AREA)
            refused = client.post("/impact?lists=buildings", json=body)
            assert refused.status_code == 400 and "max_features" in refused.json()["description"]
            assert client.post("/impact?lists=roads", json=body).status_code == 200  # 2 roads
            assert client.post("/impact", json=body).status_code == 200
    finally:
        monkeypatch.delenv("CIM_LIMIT_MAX_FEATURES")
        limits.cache_clear()


def test_cli_impact_with_a_geometry_file(city_url: str, tmp_path) -> None:
    from cim.warnings.impact_command import impact_command

    path = tmp_path / "area.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {}, "geometry": shapely.geometry.mapping(AREA)}]}))
    out = tmp_path / "lists"
    result = CliRunner().invoke(impact_command, ["0", "--geometry", str(path), "--store", city_url, "--lists", str(out)])
    assert result.exit_code == 0, result.output
    with cim.open(city_url) as city:
        direct = city.impact(AREA)
    assert f"{direct.totals['buildings']:,}" in result.output and "和平区" in result.output
    saved = json.loads((out / "buildings.geojson").read_text())
    assert len(saved["features"]) == direct.totals["buildings"]
    bad = CliRunner().invoke(impact_command, ["0", "--geometry", str(tmp_path / "missing.geojson"), "--store", city_url])
    assert bad.exit_code != 0 and "missing.geojson" in bad.output
    assert not math.isnan(direct.totals["people"])


def test_impact_of_a_warning_over_http_and_cli(store_url: str) -> None:
    """A warning stored as the lead's ingest stores it (cim.warnings.versions.apply): its impact by id."""
    from datetime import UTC, datetime, timedelta

    from fastapi.testclient import TestClient

    from cim.warnings import versions
    from cim.warnings.impact_command import impact_command
    from ogcapi.app import create_app

    now = datetime.now(UTC)
    version = versions.Version(
        values={"identifier": "TJ-2026-001", "sender": "tj@weather.cn", "sent": now - timedelta(hours=1), "status": "Actual",
                "msg_type": "Alert", "digest": "d1", "event": "暴雨", "severity": "Severe", "colour": "orange", "headline": "暴雨橙色预警",
                "valid_from": now - timedelta(hours=1), "valid_until": now + timedelta(hours=5), "expires": now + timedelta(hours=5)},
        wkb=shapely.to_wkb(shapely.MultiPolygon([AREA])), public=True, references=(),
    )
    with open_store(store_url) as store:
        store.publish(ReleaseDraft(layers=city_layers(), srid=4490))
        fid = store.live_write("warnings", lambda tx: versions.apply(tx, version, now))[0].fid
        direct = impact(store, AREA)
    with TestClient(create_app(store_url, server_url="http://testserver")) as client:
        doc = client.get(f"/collections/warnings/items/{fid}/impact?lists=pois")
        assert doc.status_code == 200, doc.text
        body = doc.json()
        assert body["warning"]["id"] == fid and body["warning"]["headline"] == "暴雨橙色预警"
        assert body["totals"]["buildings"] == direct.totals["buildings"] > 0
        assert body["totals"]["road_length_m"] == pytest.approx(direct.totals["road_length_m"])
        assert len(body["lists"]["pois"]["features"]) == direct.totals["pois"]
        page = client.get(f"/collections/warnings/items/{fid}/impact?f=html")
        assert page.status_code == 200 and "和平区" in page.text and "<table>" in page.text
        missing = client.get(f"/collections/warnings/items/{fid + 100}/impact")
        assert missing.status_code == 404 and missing.json()["code"]
        assert client.get(f"/collections/warnings/items/{fid}/impact?f=xml").status_code == 400
        assert client.get(f"/collections/warnings/items/{fid}/impact?bbox=1,2,3,4").status_code == 400
    result = CliRunner().invoke(impact_command, [str(fid), "--store", store_url])
    assert result.exit_code == 0, result.output
    assert "暴雨橙色预警" in result.output and f"{direct.totals['buildings']:,}" in result.output
    unknown = CliRunner().invoke(impact_command, [str(fid + 100), "--store", store_url])
    assert unknown.exit_code != 0 and str(fid + 100) in unknown.output


def test_read_frame_reads_only_the_columns_asked_for(city_url: str) -> None:
    """Store.read_frame(columns=...) (added for impact: fewer columns make DuckDB's bbox reads fast)."""
    with open_store(city_url) as store:
        box = tuple(AREA.bounds)
        whole = store.read_frame("buildings", bbox=box)
        some = store.read_frame("buildings", bbox=box, columns=("use", "floors"))
        none = store.read_frame("buildings", bbox=box, columns=())
    assert list(some.columns) == ["use", "floors", "geometry"] and list(none.columns) == ["geometry"]
    assert list(some.index) == list(whole.index) and len(whole) > 50
    assert some["use"].tolist() == whole["use"].tolist()
    assert shapely.equals(some.geometry.to_numpy(), whole.geometry.to_numpy()).all()


def test_openapi_paths_of_impact_refer_only_to_known_components() -> None:
    from ogcapi.openapi_local import COMPONENTS, impact_paths

    paths = impact_paths()
    assert set(paths) == {"/impact", "/collections/warnings/items/{featureId}/impact"}
    assert set(impact_paths(warnings=False)) == {"/impact"}
    refs = [ref for ref in json.dumps(paths).split('"$ref": "')[1:]]
    assert refs and all(tuple(ref.split('"')[0].split("/")[2:]) in COMPONENTS for ref in refs)
    assert paths["/impact"]["post"]["responses"]["200"]["content"]["application/json"]["schema"]["required"]
