"""CAP 1.2 / GB/T 35965.1 / GeoJSON warning parsing: the samples in tests/fixtures/warnings/ against
hand-computed geometries and times, and every hostile or invalid document of
tests/corpus/warnings/ against the status and message expected.yml names."""

from __future__ import annotations

import math
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml
from pyproj import Geod
from shapely.geometry import MultiPolygon, Point, Polygon, box

from cim.limits import limits
from cim.warnings import gbt35965
from cim.warnings.areas import CIRCLE_VERTICES, circle_polygon, circumscribed_factor
from cim.warnings.cap import parse_cap, schema
from cim.warnings.errors import (
    InvalidWarning,
    UnsupportedWarningFormat,
    WarningTooLarge,
)
from cim.warnings.geojson_input import parse_geojson_warning, parse_warning
from cim.warnings.xml_guard import parse_xml

FIXTURES = Path(__file__).parent / "fixtures" / "warnings"
CORPUS = Path(__file__).parent / "corpus" / "warnings"
EXPECTED = yaml.safe_load((CORPUS / "expected.yml").read_text(encoding="utf-8"))
MEDIA = {
    ".xml": "application/cap+xml",
    ".geojson": "application/geo+json",
    ".txt": None,
}
CST = timezone(timedelta(hours=8))
GEOD = Geod(ellps="WGS84")


def sample(name: str):
    return parse_warning((FIXTURES / name).read_bytes())


def test_polygon_is_lon_lat_as_written_across_lines() -> None:
    alert = sample("polygon.xml")
    assert (
        alert.identifier,
        alert.sender,
        alert.status,
        alert.msg_type,
        alert.scope,
        alert.format,
    ) == (
        "TJ-FLOOD-2026-001",
        "warnings@tianjin.cim.example",
        "Actual",
        "Alert",
        "Public",
        "cap",
    )
    (info,) = alert.infos
    (area,) = info.areas
    assert area.description == "和平区南部"
    assert isinstance(area.geometry, Polygon)
    assert list(area.geometry.exterior.coords) == [
        (117.15, 39.10),
        (117.25, 39.10),
        (117.25, 39.20),
        (117.15, 39.20),
        (117.15, 39.10),
    ]
    assert area.geometry.area == pytest.approx(0.01)
    assert area.geocodes == ()
    assert (info.event, info.urgency, info.severity, info.certainty, info.colour) == (
        "内涝",
        "Expected",
        "Severe",
        "Likely",
        "orange",
    )
    assert info.language == "zh-CN" and info.categories == ("Met",)
    assert info.sender_name == "天津市应急管理局" and info.instruction == "避开低洼路段，车辆绕行。"


def test_times_keep_their_offsets() -> None:
    alert = sample("polygon.xml")
    info = alert.infos[0]
    assert alert.sent == datetime(2026, 12, 3, 0, 0, tzinfo=UTC)
    assert alert.sent.utcoffset() == timedelta(hours=8)
    assert info.effective == datetime(2026, 12, 3, 8, 30, tzinfo=CST)
    assert info.onset == datetime(2026, 12, 3, 1, 0, tzinfo=UTC)
    assert info.expires == datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
    utc = sample("warning-multipolygon.geojson")
    assert utc.sent == datetime(2026, 12, 3, 11, 0, tzinfo=UTC) and utc.infos[0].effective is None


def test_circle_is_a_circumscribed_geodesic_polygon() -> None:
    (info,) = sample("circle.xml").infos
    polygon = info.areas[0].geometry
    assert isinstance(polygon, Polygon)
    ring = list(polygon.exterior.coords)
    assert len(ring) == CIRCLE_VERTICES + 1 and ring[0] == ring[-1]
    expected = 2000.0 / math.cos(math.pi / 64)
    assert expected == pytest.approx(2002.41, abs=0.01)
    for lon, lat in ring[:-1]:
        _, _, distance = GEOD.inv(117.20, 39.12, lon, lat)
        assert distance == pytest.approx(expected, abs=0.01)
    # the northmost vertex, by hand: 2002.41 m north of 39.12 N at about 111.03 km per degree
    assert max(lat for _, lat in ring) == pytest.approx(39.12 + 2002.41 / 111_030, abs=2e-5)
    area_m2, _ = GEOD.geometry_area_perimeter(polygon)
    circumscribed = 64 * 2000.0**2 * math.tan(math.pi / 64)
    assert abs(area_m2) == pytest.approx(circumscribed, rel=1e-3)
    assert abs(area_m2) == pytest.approx(math.pi * 2000.0**2, rel=2e-3)
    # everyone on the edge of the 2 km circle is inside the polygon
    for azimuth in range(0, 360, 3):
        lon, lat, _ = GEOD.fwd(117.20, 39.12, azimuth + 0.5, 2000.0)
        assert polygon.contains(Point(lon, lat)), azimuth
    assert info.categories == ("Safety", "CBRNE") and info.effective is None and info.colour == "red"


def test_circumscribed_error_bound_is_what_the_docs_say() -> None:
    assert circumscribed_factor() - 1 == pytest.approx(0.0012, abs=0.0001)
    polygon = circle_polygon(39.12, 117.20, 10.0, "test")
    farthest = max(GEOD.inv(117.20, 39.12, lon, lat)[2] for lon, lat in polygon.exterior.coords)
    assert farthest - 10_000 == pytest.approx(12.06, abs=0.1)


def test_geocode_only_areas() -> None:
    (info,) = sample("geocode.xml").infos
    assert [(a.description, a.geometry, a.geocodes) for a in info.areas] == [
        ("南开区", None, (("GB/T 2260", "120104"),)),
        ("河北区", None, (("GB/T 2260", "120105"),)),
    ]
    assert info.colour == "yellow" and info.categories == ("Met", "Health")


def test_several_infos_and_areas() -> None:
    alert = sample("multi.xml")
    assert alert.note.startswith("two languages")
    zh, en = alert.infos
    assert (zh.language, en.language, en.event) == ("zh-CN", "en-US", "Gale")
    first, second = zh.areas
    assert isinstance(first.geometry, MultiPolygon) and len(first.geometry.geoms) == 2
    square = box(117.25, 39.10, 117.30, 39.15)
    circle = circle_polygon(39.25, 117.35, 1.5, "test")
    assert first.geometry.equals(square.union(circle))
    assert second.geometry.equals(box(117.10, 39.15, 117.15, 39.20))
    assert second.geocodes == (("GB/T 2260", "120106"),)
    assert en.areas[0].geometry.equals(square)


def test_update_and_cancel_reference_the_first() -> None:
    first = sample("polygon.xml")
    update = sample("update.xml")
    cancel = sample("cancel.xml")
    assert update.msg_type == "Update" and cancel.msg_type == "Cancel"
    (ref,) = update.references
    assert (ref.sender, ref.identifier, ref.sent) == (
        first.sender,
        first.identifier,
        first.sent,
    )
    assert update.infos[0].areas[0].geometry.equals(box(117.15, 39.05, 117.25, 39.20))
    assert [r.identifier for r in cancel.references] == [
        "TJ-FLOOD-2026-001",
        "TJ-FLOOD-2026-001-U1",
    ]
    assert cancel.references[1].sent == update.sent
    assert cancel.infos == () and cancel.note == "积水已退，解除预警"
    assert ref.as_text() == "warnings@tianjin.cim.example,TJ-FLOOD-2026-001,2026-12-03T08:00:00+08:00"


def test_gbt35965_identifier_colour_and_severity() -> None:
    alert = sample("gbt35965.xml")
    assert alert.division_code == "120101"
    (info,) = alert.infos
    assert (info.colour, info.severity) == (
        "orange",
        "Severe",
    )  # 预警级别 橙色, severity Unknown in the document
    assert info.event_codes == (("GB/T 35965.1-2018", "11B03"),)
    assert info.areas[0].geometry.equals(box(117.18, 39.11, 117.22, 39.14))
    yellow = sample("gbt35965-yellow.xml")
    assert yellow.division_code == "120116"
    assert (yellow.infos[0].colour, yellow.infos[0].severity) == (
        "yellow",
        "Moderate",
    )  # from 大雾黄色预警
    assert sample("polygon.xml").division_code is None


def test_colour_mapping() -> None:
    assert [gbt35965.severity_of(c) for c in gbt35965.COLOURS] == [
        "Extreme",
        "Severe",
        "Moderate",
        "Minor",
    ]
    assert [gbt35965.colour_of(s) for s in ("Extreme", "Severe", "Moderate", "Minor", "Unknown")] == [
        "red",
        "orange",
        "yellow",
        "blue",
        None,
    ]
    assert [gbt35965.normalise_colour(v) for v in ("红色", "橙", "Yellow", "蓝色预警", "Ⅱ级", "purple")] == [
        "red",
        "orange",
        "yellow",
        "blue",
        "orange",
        None,
    ]
    # a stated colour wins over the text; a known severity is kept
    assert gbt35965.resolve("Minor", [("预警颜色", "红色")], ["暴雨黄色预警"]) == (
        "Minor",
        "red",
    )
    assert gbt35965.resolve("Unknown", [("other", "红色")], ["Heavy rain blue warning"]) == ("Minor", "blue")
    assert gbt35965.resolve("Unknown", [], ["暴雨"]) == ("Unknown", None)
    assert gbt35965.division_code("12010141600000_20261203080000_1") == "120101"
    assert gbt35965.division_code("120101416000_20261203080000_1") is None


def test_geojson_warnings() -> None:
    alert = sample("warning.geojson")
    assert (
        alert.format,
        alert.identifier,
        alert.status,
        alert.msg_type,
        alert.scope,
    ) == ("geojson", "TJ-EPI-2026-002", "Actual", "Alert", "Public")
    (info,) = alert.infos
    assert (info.colour, info.severity) == ("red", "Extreme")
    assert info.areas[0].geometry.equals(box(117.30, 39.00, 117.40, 39.10))
    assert info.areas[0].description == "津南区北部"
    multi = sample("warning-multipolygon.geojson")
    (info,) = multi.infos
    assert info.categories == ("Fire", "Safety") and info.language == "zh-CN"
    assert info.areas[0].geometry.equals(MultiPolygon([box(117.10, 39.00, 117.15, 39.05), box(117.20, 39.25, 117.25, 39.30)]))
    assert info.areas[0].geocodes == (("GB/T 2260", "120112"),)


def test_as_json_and_same_content() -> None:
    raw = (FIXTURES / "polygon.xml").read_bytes()
    a, b = (
        parse_cap(raw),
        parse_cap(raw.replace(b"2026-12-03T08:00:00+08:00", b"2026-12-03T00:00:00+00:00")),
    )
    assert a.same_content(b)  # the same instant in another offset
    assert not a.same_content(parse_cap(raw.replace(b"39.20,117.25", b"39.21,117.25")))
    doc = a.as_json()
    assert doc["info"][0]["area"][0]["geometry"]["type"] == "Polygon"
    assert doc["info"][0]["expires"] == "2026-12-03T20:00:00+08:00"
    import json

    json.dumps(doc)


def test_polygon_whitespace_is_tolerated() -> None:
    raw = (FIXTURES / "polygon.xml").read_bytes()
    spaced = raw.replace(b"39.10,117.25\n", b"39.10 , 117.25\t\r\n\n")
    assert parse_cap(spaced).infos[0].areas[0].geometry.equals(box(117.15, 39.10, 117.25, 39.20))


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus(name: str) -> None:
    case = EXPECTED[name]
    path = CORPUS / name
    media = case.get("media_type", MEDIA[path.suffix])
    with pytest.raises((InvalidWarning, WarningTooLarge, UnsupportedWarningFormat)) as caught:
        parse_warning(path.read_bytes(), media)
    assert caught.value.status == case["status"], str(caught.value)
    assert case["message"] in str(caught.value)


def test_corpus_is_complete() -> None:
    on_disk = {p.name for p in CORPUS.iterdir() if p.name != "expected.yml"}
    assert on_disk == set(EXPECTED)


def test_ten_megabytes_is_413_before_parsing() -> None:
    body = b"<alert>" + b"x" * (10 * 1024 * 1024) + b"</alert>"
    for media in ("application/cap+xml", "application/geo+json", None):
        with pytest.raises(WarningTooLarge) as caught:
            parse_warning(body, media)
        assert caught.value.status == 413 and "over the limit of 1048576 bytes" in str(caught.value)


def test_size_limit_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    raw = (FIXTURES / "polygon.xml").read_bytes()
    monkeypatch.setenv("CIM_LIMIT_WARNING_BYTES", "100")
    limits.cache_clear()  # cim.limits reads the environment once per process
    try:
        with pytest.raises(WarningTooLarge, match="limit of 100 bytes"):
            parse_warning(raw, "application/cap+xml")
    finally:
        monkeypatch.delenv("CIM_LIMIT_WARNING_BYTES")
        limits.cache_clear()


def test_media_types() -> None:
    raw = (FIXTURES / "polygon.xml").read_bytes()
    for media in (
        "application/cap+xml",
        "application/xml; charset=utf-8",
        "text/xml",
        None,
    ):
        assert parse_warning(raw, media).identifier == "TJ-FLOOD-2026-001"
    geo = (FIXTURES / "warning.geojson").read_bytes()
    for media in ("application/geo+json", "application/json", None):
        assert parse_warning(geo, media).identifier == "TJ-EPI-2026-002"
    with pytest.raises(UnsupportedWarningFormat) as caught:
        parse_warning(raw, "application/pdf")
    assert caught.value.status == 415
    with pytest.raises(InvalidWarning, match="not JSON"):
        parse_geojson_warning(raw)


def test_utf16_with_bom_and_gb18030_are_read() -> None:
    text = (FIXTURES / "polygon.xml").read_text(encoding="utf-8")
    assert parse_cap(text.replace("UTF-8", "UTF-16").encode("utf-16")).infos[0].event == "内涝"
    assert parse_cap(text.replace("UTF-8", "GB18030").encode("gb18030")).infos[0].headline == "和平区南部低洼路段内涝预警"


def test_schema_loads_once_from_the_package() -> None:
    assert schema() is schema()
    assert parse_xml(b"<a/>", "x").tag == "a"


HOSTILE = """
import sys
from cim.warnings.geojson_input import parse_warning
from cim.warnings.errors import InvalidWarning
try:
    parse_warning(open(sys.argv[1], "rb").read(), "application/cap+xml")
except InvalidWarning as exc:
    print("refused:", exc)
    sys.exit(0)
sys.exit(3)
"""


@pytest.mark.parametrize(
    "name",
    [
        "billion-laughs.xml",
        "xxe.xml",
        "utf16-doctype.xml",
        "depth-bomb.xml",
        "internal-entity.xml",
    ],
)
def test_hostile_documents_in_a_subprocess(name: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", HOSTILE, str(CORPUS / name)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "refused:" in done.stdout and "passwd" not in done.stdout.replace("file:///etc/passwd", "")


def test_too_many_shapes_is_refused_before_any_geometry_work() -> None:
    raw = (FIXTURES / "circle.xml").read_text(encoding="utf-8")
    many = raw.replace("<circle>39.12,117.20 2</circle>", "<circle>39.12,117.20 2</circle>" * 1001)
    with pytest.raises(InvalidWarning, match="1001 polygons and circles is over the limit of 1000"):
        parse_cap(many.encode())


def test_schema_location_hints_are_not_followed() -> None:
    raw = (
        (FIXTURES / "polygon.xml")
        .read_bytes()
        .replace(
            b'<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">',
            b'<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
            b' xsi:schemaLocation="urn:oasis:names:tc:emergency:cap:1.2 http://127.0.0.1:9/evil.xsd">',
        )
    )
    assert parse_cap(raw).identifier == "TJ-FLOOD-2026-001"


def test_an_update_may_leave_out_its_areas() -> None:
    raw = (FIXTURES / "update.xml").read_text(encoding="utf-8")
    start, end = raw.index("    <area>"), raw.index("</area>") + len("</area>\n")
    update = parse_cap((raw[:start] + raw[end:]).encode())
    assert update.msg_type == "Update" and update.infos[0].areas == ()
