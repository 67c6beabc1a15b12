"""The demo's sample CAP alerts (layers/demo_warnings.py): real CAP 1.2 XML, valid against the schema
shipped with the package, with hand-checked coordinates; ingested into both stores by ``cim demo``,
and a re-run adds nothing."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from lxml import etree
from shapely.geometry import Point, box

from cim.store import FeatureQuery, ReleaseDraft, open_store
from layers.demo_warnings import (
    CAP_NS,
    CST,
    GAS_LEAK_RADIUS_KM,
    SENDER,
    SHORT_MINUTES,
    TOWNS,
    demo_alerts,
    town_extents,
)

NS = {"cap": CAP_NS}
NOW = datetime(2026, 12, 3, 4, 5, 6, 789, tzinfo=UTC)  # 12:05:06 in China
HELSINKI = (24.9351773, 60.1641551, 24.9534055, 60.1791068)
KOTKA = (26.9300188, 60.5200037, 26.9699985, 60.539965)
SCHEMA = Path(__import__("cim").__file__).parent / "warnings" / "schema" / "CAP-v1.2.xsd"


def alerts() -> dict[str, etree._Element]:
    return {a.event: etree.fromstring(a.xml) for a in demo_alerts({"helsinki": HELSINKI, "kotka": KOTKA}, NOW)}


def text(root: etree._Element, path: str) -> str:
    return root.findtext(path, namespaces=NS)


def test_three_alerts_gbt35965_identifiers_and_china_times() -> None:
    docs = alerts()
    assert sorted(docs) == sorted(["暴雨", "燃气泄漏", "大风"])
    codes = {"暴雨": "990101", "燃气泄漏": "990101", "大风": "990102"}
    for event, root in docs.items():
        assert root.tag == f"{{{CAP_NS}}}alert"
        ident = text(root, "cap:identifier")
        assert re.fullmatch(r"\d{14}_\d{14}_\d+", ident), ident
        assert ident.startswith(codes[event]) and "_20261203120506_" in ident
        assert text(root, "cap:sent") == "2026-12-03T12:05:06+08:00"
        assert text(root, "cap:info/cap:effective") == "2026-12-03T12:05:06+08:00"
        assert (text(root, "cap:sender"), text(root, "cap:status"), text(root, "cap:msgType")) == (SENDER, "Actual", "Alert")
        assert text(root, "cap:info/cap:language") == "zh-CN"
    assert text(docs["大风"], "cap:info/cap:expires") == "2026-12-03T12:10:06+08:00"  # 5 minutes
    assert SHORT_MINUTES == 5
    assert text(docs["暴雨"], "cap:info/cap:headline").endswith("暴雨蓝色预警")
    assert [text(docs[e], "cap:info/cap:severity") for e in ("暴雨", "燃气泄漏", "大风")] == ["Minor", "Extreme", "Moderate"]
    assert len({text(r, "cap:identifier") for r in docs.values()}) == 3


def test_polygons_are_lat_lon_closed_and_inside_their_town() -> None:
    docs = alerts()
    for event, extent in (("暴雨", HELSINKI), ("大风", KOTKA)):
        pairs = [tuple(map(float, p.split(","))) for p in text(docs[event], "cap:info/cap:area/cap:polygon").split()]
        assert len(pairs) >= 4 and pairs[0] == pairs[-1]
        for lat, lon in pairs:  # latitude first: 60.x, longitude 24.x / 26.x
            assert box(*extent).contains(Point(lon, lat)), (event, lat, lon)
    # Kotka's gale box: 15 %..85 % of the town's longitudes, 20 %..80 % of its latitudes, by hand
    pairs = text(docs["大风"], "cap:info/cap:area/cap:polygon").split()
    assert pairs[0] == "60.523996,26.936016" and pairs[2] == "60.535973,26.964002"


def test_the_gas_leak_is_a_circle_in_central_helsinki() -> None:
    circle = text(alerts()["燃气泄漏"], "cap:info/cap:area/cap:circle")
    centre, radius = circle.split()
    lat, lon = map(float, centre.split(","))
    assert float(radius) == GAS_LEAK_RADIUS_KM == 0.15
    assert (lat, lon) == (60.17492, 24.947937)  # 72 % up, 70 % across the Helsinki extent
    assert box(*HELSINKI).contains(Point(lon, lat))


def test_only_towns_with_an_extent_get_alerts() -> None:
    assert [a.event for a in demo_alerts({"kotka": KOTKA}, NOW)] == ["大风"]
    assert demo_alerts({}, NOW) == []


def test_a_later_run_makes_new_identifiers() -> None:
    first = {a.identifier for a in demo_alerts({"helsinki": HELSINKI}, NOW)}
    later = {a.identifier for a in demo_alerts({"helsinki": HELSINKI}, NOW + timedelta(seconds=1))}
    assert first.isdisjoint(later)
    assert datetime.now(CST).utcoffset() == timedelta(hours=8)


def test_valid_against_the_cap_schema() -> None:
    if not SCHEMA.is_file():
        pytest.fail(f"the CAP 1.2 schema is not shipped at {SCHEMA}")
    schema = etree.XMLSchema(etree.parse(str(SCHEMA)))
    for event, root in alerts().items():
        assert schema.validate(root), (event, schema.error_log)


def test_town_extents_from_the_demo_release(store_url: str, demo_layers) -> None:
    with open_store(store_url) as store:
        store.publish(ReleaseDraft(layers=demo_layers, srid=4326))
        extents = town_extents(store)
    assert sorted(extents) == sorted(TOWNS)
    for key, expected in (("helsinki", HELSINKI), ("kotka", KOTKA)):
        assert extents[key] == pytest.approx(expected, abs=1e-6)


def test_cim_demo_ingests_the_alerts_once(store_url: str, demo_layers) -> None:
    from shapely.geometry import shape

    from cim.warnings.ingest import expire_due
    from layers.demo_warnings import ingest_demo_warnings

    now = datetime.now(UTC).replace(microsecond=0)
    with open_store(store_url) as store:
        store.publish(ReleaseDraft(layers=demo_layers, srid=4326))
        first = ingest_demo_warnings(store, now)
        again = ingest_demo_warnings(store, now + timedelta(seconds=5))  # a re-run: all three still in force
        page = store.query(FeatureQuery(layer="warnings", limit=100, out_srid=4326))
        expired = expire_due(store, now + timedelta(minutes=SHORT_MINUTES, seconds=1))
    assert len(first) == 3 and again == []
    by_event = {f["properties"]["event"]: f for f in page.features}
    assert sorted(by_event) == sorted(["暴雨", "燃气泄漏", "大风"])
    assert {e: f["properties"]["colour"] for e, f in by_event.items()} == {"暴雨": "blue", "燃气泄漏": "red", "大风": "yellow"}
    assert {f["properties"]["division_code"] for f in page.features} == {"990101", "990102"}
    # the gas leak: a geodesic circle of 150 m around its centre (area π r², in ETRS-TM35FIN metres)
    import geopandas as gpd

    leak = gpd.GeoSeries([shape(by_event["燃气泄漏"]["geometry"])], crs=4326).to_crs(3067)
    centre = gpd.GeoSeries([Point(24.947937, 60.17492)], crs=4326).to_crs(3067)
    assert leak.area.iloc[0] == pytest.approx(3.14159 * 150**2, rel=0.03)
    assert leak.centroid.distance(centre).iloc[0] < 2
    # the gale expires 5 minutes after the demo started
    assert [e.fid for e in expired] == [by_event["大风"]["id"]]


def test_the_demo_command_adds_them(store_url: str) -> None:
    from click.testing import CliRunner

    from cim.cli import cli

    first = CliRunner().invoke(cli, ["demo", "--build-only", "--store", store_url])
    assert first.exit_code == 0, first.output
    added = [line for line in first.output.splitlines() if "-> /collections/warnings/items/" in line]
    assert len(added) == 3, first.output
    again = CliRunner().invoke(cli, ["demo", "--build-only", "--store", store_url])  # builds release 2
    assert again.exit_code == 0, again.output
    assert again.output.count("already in force") == 3, again.output
    skipped = CliRunner().invoke(cli, ["demo", "--build-only", "--no-warnings", "--store", store_url])
    assert skipped.exit_code == 0 and "demo warnings" not in skipped.output, skipped.output
    with open_store(store_url) as store:
        assert len(store.query(FeatureQuery(layer="warnings", limit=100)).features) == 3
