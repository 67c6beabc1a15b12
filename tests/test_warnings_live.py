"""The live warnings layer on both stores: CAP samples of every shape ingested and checked against
hand-computed coordinates, validity over intervals (``datetime`` around effective/expires, in force
now by default), the chain of versions (Update, Cancel), idempotency and conflicts, alerts kept off
public views, geocodes resolved to divisions, survival across releases and rollbacks, expiry events."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
import shapely
from shapely.geometry import shape

from cim.errors import BadInput
from cim.store import FeatureQuery, LayerData, ReleaseDraft, TimeInterval, open_store
from cim.warnings.ingest import expire_due, ingest, next_expiry
from cim.warnings.versions import WarningConflict
from layers.catalog import CATALOG
from support.citydata import building_frame
from support.warnings import BEIJING, DISTRICTS, SENDER, cap, fixture, publish_city, square_lonlat

FLOOD = "TJ-FLOOD-2026-001"


def at(text: str) -> TimeInterval:
    """An instant (Beijing time on 2026-12-03 when only hh:mm is given)."""
    moment = datetime.fromisoformat(f"2026-12-03T{text}:00+08:00" if len(text) == 5 else text)
    return TimeInterval(moment, moment)


def listed(store, when: TimeInterval | None = None) -> list[str]:
    page = store.query(FeatureQuery(layer="warnings", limit=100, datetime=when, skip_geometry=True, sortby=(("valid_from", True),)))
    return [f["properties"]["identifier"] for f in page.features]


@pytest.fixture
def store(store_url: str):
    publish_city(store_url)
    with open_store(store_url) as s:
        yield s


def test_polygon_is_stored_as_written_lat_lon_pairs_say(store) -> None:
    result = ingest(store, fixture("polygon.xml"), "application/cap+xml")
    assert result.created and [e.kind for e in result.events] == ["created"]
    feature = store.get_feature("warnings", result.fid)
    expected = shapely.Polygon(square_lonlat(117.15, 39.10, 117.25, 39.20))
    got = shape(feature["geometry"])
    assert got.geom_type == "MultiPolygon" and got.symmetric_difference(expected).area < 1e-12
    p = feature["properties"]
    assert p["identifier"] == FLOOD and p["state"] == "issued" and p["version"] == 1 and p["chain"] == FLOOD
    assert datetime.fromisoformat(p["valid_from"]) == datetime(2026, 12, 3, 8, 30, tzinfo=BEIJING)
    assert datetime.fromisoformat(p["valid_until"]) == datetime(2026, 12, 3, 20, 0, tzinfo=BEIJING)
    # the event carries the feature as the collection serves it
    assert result.events[0].feature["id"] == result.fid and result.events[0].feature["properties"]["identifier"] == FLOOD


def test_datetime_selects_versions_valid_at_instants_around_effective_and_expires(store) -> None:
    ingest(store, fixture("polygon.xml"))
    assert listed(store, at("08:29")) == []  # sent at 08:00 but effective from 08:30
    assert listed(store, at("08:30")) == [FLOOD]
    assert listed(store, at("19:59")) == [FLOOD]
    assert listed(store, at("20:00")) == []  # valid until 20:00, not including it
    late = datetime(2026, 12, 3, 19, 0, tzinfo=BEIJING)
    assert listed(store, TimeInterval(late, None)) == [FLOOD]  # an open interval overlapping
    assert listed(store, TimeInterval(None, datetime(2026, 12, 3, 8, 0, tzinfo=BEIJING))) == []
    assert listed(store, TimeInterval(datetime(2026, 12, 3).date(), datetime(2026, 12, 3).date())) == [FLOOD]  # a whole day


def test_update_and_cancel_supersede_never_overwrite(store) -> None:
    first = ingest(store, fixture("polygon.xml"))
    update = ingest(store, fixture("update.xml"))
    cancel = ingest(store, fixture("cancel.xml"))
    assert [e.kind for e in update.events] == ["updated"] and [e.kind for e in cancel.events] == ["cancelled"]
    v1, v2, v3 = (store.get_feature("warnings", r.fid)["properties"] for r in (first, update, cancel))
    assert (v1["version"], v2["version"], v3["version"]) == (1, 2, 3)
    assert {v1["chain"], v2["chain"], v3["chain"]} == {FLOOD}
    assert v1["superseded_by"] == update.fid and v2["superseded_by"] == cancel.fid and v3["superseded_by"] is None
    assert v1["state"] == "issued" and v2["state"] == "updated" and v3["state"] == "cancelled"
    # v1 keeps its own content (the update grew the polygon south and raised the severity)
    assert v1["severity"] != "Extreme" and v2["severity"] == "Extreme"
    assert datetime.fromisoformat(v1["valid_until"]) == datetime(2026, 12, 3, 12, 0, tzinfo=BEIJING)  # the update's sent
    assert listed(store, at("10:00")) == [FLOOD]
    assert listed(store, at("13:00")) == [f"{FLOOD}-U1"]
    grown = shape(store.get_feature("warnings", update.fid)["geometry"])
    assert abs(grown.area - 0.015) < 1e-9  # 117.15–117.25 E × 39.05–39.20 N
    assert listed(store, at("16:30")) == []  # cancelled at 16:00, though the update ran to 22:00
    # the cancel keeps the cancelled geometry, and its own validity is empty
    assert abs(shape(store.get_feature("warnings", cancel.fid)["geometry"]).area - 0.015) < 1e-9
    assert v3["valid_from"] == v3["valid_until"]
    # the whole chain is readable: every version, by its chain
    chain = store.query(FeatureQuery(layer="warnings", equals=(("chain", FLOOD),), datetime=TimeInterval(None, None),
                                     skip_geometry=True, sortby=(("version", True),)))  # fmt: skip
    assert [f["id"] for f in chain.features] == [first.fid, update.fid, cancel.fid]


def test_the_same_alert_twice_is_idempotent_and_other_content_a_conflict(store) -> None:
    first = ingest(store, fixture("polygon.xml"))
    version = store.live_version("warnings")
    again = ingest(store, fixture("polygon.xml"))
    assert again.fid == first.fid and not again.created and again.events == []
    assert store.live_version("warnings") == version  # nothing written
    changed = fixture("polygon.xml").replace(b"<severity>", b"<severity>", 1).replace(b"</headline>", b" (changed)</headline>", 1)
    assert changed != fixture("polygon.xml")
    with pytest.raises(WarningConflict) as refused:
        ingest(store, changed)
    assert refused.value.status == 409 and FLOOD in str(refused.value)
    assert store.live_version("warnings") == version


def test_a_cancel_of_an_unknown_alert_is_a_conflict_and_stores_nothing(store) -> None:
    with pytest.raises(WarningConflict, match="references no alert"):
        ingest(store, fixture("cancel.xml"))
    assert store.live_events("warnings") == [] and listed(store, TimeInterval(None, None)) == []


def test_geocodes_resolve_to_the_divisions_of_the_current_release(store) -> None:
    result = ingest(store, fixture("geocode.xml"))
    got = shape(store.get_feature("warnings", result.fid)["geometry"])
    expected = shapely.union_all([shapely.box(*DISTRICTS["120104"]), shapely.box(*DISTRICTS["120105"])])
    assert got.symmetric_difference(expected).area < 1e-9
    unknown = cap("TJ-UNKNOWN-GEOCODE", geocodes=("120199",), expires=datetime.now(UTC) + timedelta(hours=1))
    with pytest.raises(BadInput, match="unknown geocode GB/T 2260=120199"):
        ingest(store, unknown)


def test_several_infos_and_areas_make_one_multipolygon(store) -> None:
    result = ingest(store, fixture("multi.xml"))
    got = shape(store.get_feature("warnings", result.fid)["geometry"])
    squares = shapely.union_all([shapely.box(117.25, 39.10, 117.30, 39.15), shapely.box(117.10, 39.15, 117.15, 39.20)])
    assert got.geom_type == "MultiPolygon" and len(got.geoms) == 3  # two squares and the circle
    assert got.contains(shapely.Point(117.35, 39.25))  # the circle's centre
    assert got.symmetric_difference(squares).area == pytest.approx(shape(_circle_of(got)).area, rel=1e-9)
    # an area with a polygon is that polygon: its geocode (120106) is kept as information, not added
    assert not got.contains(shapely.Point(117.28, 39.18))
    assert "GB/T 2260=120106" in store.get_feature("warnings", result.fid)["properties"]["geocodes"]


def _circle_of(multi: shapely.MultiPolygon) -> dict:
    """The part of ``multi`` around the circle's centre (117.35, 39.25), as GeoJSON."""
    part = next(g for g in multi.geoms if g.contains(shapely.Point(117.35, 39.25)))
    return shapely.geometry.mapping(part)


def test_gbt35965_identifier_and_colour(store) -> None:
    result = ingest(store, fixture("gbt35965.xml"))
    p = store.get_feature("warnings", result.fid)["properties"]
    assert p["division_code"] == "120101" and p["colour"] == "orange" and p["severity"] == "Severe"
    geojson = ingest(store, fixture("warning.geojson"), "application/geo+json")
    q = store.get_feature("warnings", geojson.fid)["properties"]
    assert q["colour"] == "red" and q["severity"] == "Extreme" and q["source"].startswith("geojson")


def test_exercises_and_tests_are_kept_off_public_views(store) -> None:
    now = datetime.now(UTC)
    doc = cap("TJ-DRILL-1", ring=square_lonlat(117.2, 39.1, 117.21, 39.11), status="Exercise", expires=now + timedelta(hours=1))
    result = ingest(store, doc)
    assert result.created and result.events == []
    assert listed(store) == [] and listed(store, TimeInterval(None, None)) == []
    with pytest.raises(Exception):
        store.get_feature("warnings", result.fid)
    assert store.layer("warnings").count == 0


def test_warnings_survive_new_releases_and_rollback(store) -> None:
    now = datetime.now(UTC)
    ingest(store, cap("TJ-LIVE-1", ring=square_lonlat(117.2, 39.1, 117.21, 39.11), expires=now + timedelta(hours=1)))
    assert listed(store) == ["TJ-LIVE-1"]
    store.publish(ReleaseDraft(layers=[LayerData(CATALOG["buildings"], building_frame(4490))], srid=4490))
    assert listed(store) == ["TJ-LIVE-1"] and "warnings" in store.layer_names()
    store.set_current(1)
    assert listed(store) == ["TJ-LIVE-1"]
    ingest(store, cap("TJ-LIVE-2", ring=square_lonlat(117.2, 39.1, 117.21, 39.11), expires=now + timedelta(hours=1)))
    store.set_current(2)
    assert listed(store) == ["TJ-LIVE-1", "TJ-LIVE-2"]


def test_in_force_now_expiry_events_and_the_next_expiry(store) -> None:
    now = datetime.now(UTC)
    soon = now + timedelta(seconds=2)
    ingest(store, cap("TJ-SHORT", ring=square_lonlat(117.2, 39.1, 117.21, 39.11), sent=now - timedelta(seconds=1), expires=soon))
    ingest(store, cap("TJ-LONG", ring=square_lonlat(117.2, 39.1, 117.21, 39.11), expires=now + timedelta(hours=2)))
    ingest(store, cap("TJ-LATER", ring=square_lonlat(117.2, 39.1, 117.21, 39.11), effective=now + timedelta(hours=1),
                      expires=now + timedelta(hours=3)))  # fmt: skip
    assert listed(store) == ["TJ-SHORT", "TJ-LONG"]  # TJ-LATER is not in force yet
    assert next_expiry(store) == soon.replace(microsecond=0)
    assert expire_due(store) == []
    time.sleep(max(0.0, (soon - datetime.now(UTC)).total_seconds()) + 0.3)
    assert listed(store) == ["TJ-LONG"]
    expired = expire_due(store)
    assert [(e.kind, e.feature["properties"]["identifier"]) for e in expired] == [("expired", "TJ-SHORT")]
    assert expired[0].at == soon.replace(microsecond=0)
    assert expire_due(store) == []  # once
    kinds = [(e.kind, e.feature["properties"]["identifier"]) for e in store.live_events("warnings")]
    assert kinds == [("created", "TJ-SHORT"), ("created", "TJ-LONG"), ("created", "TJ-LATER"), ("expired", "TJ-SHORT")]
    assert [e.seq for e in store.live_events("warnings", after=2)] == [3, 4]


def test_the_collection_extent_follows_its_content(store) -> None:
    info = store.layer("warnings")
    assert info.count == 0 and info.bbox is None
    ingest(store, fixture("polygon.xml"))
    ingest(store, fixture("warning.geojson"))
    info = store.layer("warnings")
    assert info.count == 2 and info.bbox == pytest.approx((117.15, 39.0, 117.40, 39.20))
    start, end = info.interval
    assert datetime.fromisoformat(start) == datetime(2026, 12, 3, 8, 30, tzinfo=BEIJING)
    assert datetime.fromisoformat(end) == datetime(2026, 12, 10, 9, 0, tzinfo=BEIJING)


def test_sender_is_part_of_identity(store) -> None:
    now = datetime.now(UTC)
    doc = cap("TJ-SAME-ID", ring=square_lonlat(117.2, 39.1, 117.21, 39.11), expires=now + timedelta(hours=1))
    first = ingest(store, doc)
    other = ingest(store, doc.replace(SENDER.encode(), b"beijing@example.cn"))
    assert other.created and other.fid != first.fid


def test_a_circle_is_stored_as_its_geodesic_polygon(store) -> None:
    from pyproj import Geod

    result = ingest(store, fixture("circle.xml"))
    got = shape(store.get_feature("warnings", result.fid)["geometry"])
    ring = list(got.geoms[0].exterior.coords)[:-1]
    assert len(ring) == 64
    _, _, distances = Geod(ellps="WGS84").inv([117.20] * 64, [39.12] * 64, [x for x, _ in ring], [y for _, y in ring])
    # circumscribed about the 2 km circle: each vertex 2 km / cos(π/64) = 2002.41 m from (117.20, 39.12)
    assert all(abs(d - 2002.41) < 0.05 for d in distances)
    assert got.contains(shapely.Point(117.20, 39.12))
