"""Reading past releases on both stores: read_frame(release=N) as published (no edits), release_layers,
find_features by identity, diff_releases (in SQL) and division_totals — on the planned city
(tests/support/planning_city.py), release 1 and release 2 (B2 raised to 24 m / 8 floors, B3 removed,
B8 added)."""

from __future__ import annotations

import shapely
import pytest

from cim.errors import LayerNotFound, NotFound, ReleaseGone
from cim.store import Edit, ReleaseDraft, open_store
from support.planning_city import lonlat, publish_planning_city, release_layers
from support.postgis import BACKENDS, backend_store


@pytest.fixture(scope="module", params=BACKENDS)
def city_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """The planned city with releases 1 and 2, shared by the tests that only read."""
    with backend_store(request, "release_reads", tmp_path_factory.mktemp("release_reads")) as url:
        publish_planning_city(url, releases=2)
        yield url


@pytest.fixture
def city(city_url: str):
    with open_store(city_url) as store:
        yield store


@pytest.fixture
def fresh_city(store_url: str):
    """The planned city for tests that edit it or publish more releases."""
    publish_planning_city(store_url, releases=2)
    with open_store(store_url) as store:
        yield store


def test_read_frame_of_each_release(city) -> None:
    one = city.read_frame("buildings", release=1)
    two = city.read_frame("buildings", release=2)
    assert sorted(one["name"]) == ["B1", "B2", "B3", "B4", "B5", "B6", "B7"]
    assert sorted(two["name"]) == ["B1", "B2", "B4", "B5", "B6", "B7", "B8"]
    assert one.set_index("name").loc["B2", ["height_m", "floors"]].tolist() == [18.0, 6]
    assert two.set_index("name").loc["B2", ["height_m", "floors"]].tolist() == [24.0, 8]
    # the current release read by number is the current release as published
    assert sorted(city.read_frame("buildings")["name"]) == sorted(two["name"])
    # bbox and columns as for the current release: P1's buildings B1, B2 (x 500100..500230)
    x0, y0 = lonlat(50, 300)
    x1, y1 = lonlat(450, 700)
    part = city.read_frame("buildings", bbox=(x0, y0, x1, y1), columns=["name"], release=1)
    assert sorted(part["name"]) == ["B1", "B2"] and list(part.columns) == ["name", "geometry"]


def test_release_read_ignores_edits(fresh_city) -> None:
    fid = int(fresh_city.find_features("parcels", [("source_id", "P1")]).index[0])
    fresh_city.edit(Edit("parcels", "update", "planner", fid, {"properties": {"land_use": "G1"}}))
    assert fresh_city.read_frame("parcels").loc[fid, "land_use"] == "G1"  # the current release, edited
    assert fresh_city.read_frame("parcels", release=2).loc[fid, "land_use"] == "R2"  # as published
    assert fresh_city.find_features("parcels", [("source_id", "P1")]).iloc[0]["land_use"] == "G1"
    assert fresh_city.find_features("parcels", [("source_id", "P1")], release=2).iloc[0]["land_use"] == "R2"


def test_release_layers(city) -> None:
    layers = {info.name: info.count for info in city.release_layers(1)}
    assert layers == {"landuse": 2, "parcels": 4, "roads": 2, "admin_divisions": 3, "buildings": 7, "pois": 4}
    assert {info.name: info.count for info in city.release_layers(2)}["buildings"] == 7


def test_unknown_and_pruned_releases_name_the_releases_kept(fresh_city) -> None:
    with pytest.raises(NotFound, match=r"no release 9 \(releases kept: 1, 2\)"):
        fresh_city.read_frame("buildings", release=9)
    with pytest.raises(NotFound, match="no release 0"):
        fresh_city.release_layers(0)
    with pytest.raises(LayerNotFound, match="no layer 'trees' in release 1"):
        fresh_city.read_frame("trees", release=1)
    fresh_city.publish(ReleaseDraft(layers=release_layers(4326, 2), srid=4326), keep=2)  # release 3; 1 pruned
    with pytest.raises(ReleaseGone, match=r"release 1 of store .* was pruned \(releases kept: 2, 3\)"):
        fresh_city.read_frame("buildings", release=1)
    with pytest.raises(NotFound, match="releases kept: 2, 3"):
        fresh_city.diff_releases("buildings", 1, 3)
    assert fresh_city.diff_releases("buildings", 2, 3) == []


def test_find_features_by_identity(city) -> None:
    b2 = city.find_features("buildings", [("source", "survey"), ("source_id", "B2")], release=1)
    assert len(b2) == 1 and b2.iloc[0]["height_m"] == 18.0 and b2.iloc[0]["floors"] == 6
    assert len(city.find_features("buildings", [("source_id", "B3")], release=2)) == 0
    assert len(city.find_features("buildings", [("source_id", "B8")], release=2)) == 1


def test_diff_releases(city) -> None:
    changes = {c.source_id: c for c in city.diff_releases("buildings", 1, 2, out_srid=4326)}
    assert set(changes) == {"B2", "B3", "B8"}
    assert (changes["B2"].change, changes["B2"].fields) == ("changed", ("height_m", "floors"))
    assert (changes["B3"].change, changes["B3"].fid_to, changes["B3"].fields) == ("removed", None, ())
    assert (changes["B8"].change, changes["B8"].fid_from) == ("added", None)
    # geometry: the later release's (the earlier one's for a removed feature), in lon/lat
    b3 = shapely.from_wkb(changes["B3"].wkb)
    assert b3.contains(shapely.Point(lonlat(610, 410)))
    b8 = shapely.from_wkb(changes["B8"].wkb)
    assert b8.contains(shapely.Point(lonlat(710, 410)))
    # backwards: B8 removed, B3 added, B2 changed
    back = {c.source_id: c.change for c in city.diff_releases("buildings", 2, 1)}
    assert back == {"B2": "changed", "B3": "added", "B8": "removed"}
    assert city.diff_releases("roads", 1, 2) == []
    assert city.diff_releases("buildings", 2, 2) == []


def test_diff_releases_in_an_area(city) -> None:
    # parcel P2 (x 500550..500950) holds B3 (release 1) and B8 (release 2); B2 lies in P1
    p2 = shapely.to_wkb(shapely.box(*lonlat(550, 300), *lonlat(950, 700)))
    changes = {c.source_id: c.change for c in city.diff_releases("buildings", 1, 2, area_wkb=p2)}
    assert changes == {"B3": "removed", "B8": "added"}
    p1 = shapely.to_wkb(shapely.box(*lonlat(50, 300), *lonlat(450, 700)))
    assert [(c.source_id, c.fields) for c in city.diff_releases("buildings", 1, 2, area_wkb=p1)] == [("B2", ("height_m", "floors"))]


def test_diff_with_a_layer_missing_from_one_release(fresh_city) -> None:
    without_pois = [layer for layer in release_layers(4326, 2) if layer.spec.name != "pois"]
    fresh_city.publish(ReleaseDraft(layers=without_pois, srid=4326))  # release 3
    removed = fresh_city.diff_releases("pois", 2, 3)
    assert sorted((c.source_id, c.change) for c in removed) == [(f"poi{i}", "removed") for i in range(1, 5)]
    added = fresh_city.diff_releases("pois", 3, 1)
    assert sorted((c.source_id, c.change) for c in added) == [(f"poi{i}", "added") for i in range(1, 5)]
    with pytest.raises(LayerNotFound, match="no layer 'trees' in release 1 nor in release 2"):
        fresh_city.diff_releases("trees", 1, 2)


def test_geometry_change_is_a_changed_field(fresh_city) -> None:
    layers = release_layers(4326, 2)
    for layer in layers:
        if layer.spec.name == "pois":
            layer.frame.loc[layer.frame["source_id"] == "poi1", "geometry"] = shapely.Point(lonlat(310, 800))
    fresh_city.publish(ReleaseDraft(layers=layers, srid=4326))  # release 3
    assert [(c.source_id, c.change, c.fields) for c in fresh_city.diff_releases("pois", 2, 3)] == [("poi1", "changed", ("geometry",))]


def test_division_totals(city) -> None:
    buildings = [(t.code, t.count, t.measure) for t in city.division_totals("buildings", "district", measure="area", release=1)]
    # 120101: B1 2 000 + B2 600 + B3 400 + B7 100; 120102: B4 20 000 + B5 40 000 + B6 100 (m², drawn in
    # EPSG:4548 on its central meridian, stored in lon/lat; areas on the ellipsoid: within 1e-7)
    assert buildings == [("120101", 4, pytest.approx(3100.0, rel=1e-7)), ("120102", 3, pytest.approx(60100.0, rel=1e-7))]
    roads = {(t.code, t.group, t.count, round(t.measure, 3)) for t in city.division_totals("roads", "district", group_by="road_class", measure="length")}
    assert roads == {("120101", "primary", 1, 1000.0), ("120101", "residential", 1, 300.0), ("120102", "primary", 1, 1000.0)}
    pois = [(t.code, t.group, t.count, t.measure) for t in city.division_totals("pois", "district", codes=["120101"], group_by="category")]
    assert pois == [("120101", "amenity", 2, None), ("120101", "shop", 1, None)]
    city_level = city.division_totals("buildings", "city", release=2)
    assert [(t.code, t.count) for t in city_level] == [("120100", 7)]


def test_division_totals_in_a_projected_storage_crs(store_url: str) -> None:
    # stored in EPSG:4548 (metres): areas and lengths are planar there, exactly the drawing's
    publish_planning_city(store_url, srid=4548)
    with open_store(store_url) as store:
        buildings = [(t.code, t.count, t.measure) for t in store.division_totals("buildings", "district", measure="area", metric_srid=4548)]
        assert buildings == [("120101", 4, pytest.approx(3100.0, abs=1e-6)), ("120102", 3, pytest.approx(60100.0, abs=1e-6))]
        roads = [(t.code, t.count, t.measure) for t in store.division_totals("roads", "district", measure="length", metric_srid=4548)]
        assert roads == [("120101", 2, pytest.approx(1300.0, abs=1e-6)), ("120102", 1, pytest.approx(1000.0, abs=1e-6))]
