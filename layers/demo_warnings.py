"""Sample CAP 1.2 alerts for the demo city, so the viewer shows warning overlays out of the box.

``cim demo`` calls :func:`ingest_demo_warnings` after the base map is built: three alerts in the
GB/T 35965.1 style (Chinese event names, +08:00 times, identifiers ``ZZZZZZDDDUUUXX_YYYYMMDDhhmmss_N``
carrying a division code), made from the extents of the two demo towns (the buildings of each OSM
extract, :func:`town_extents`):

- 暴雨蓝色预警 (rainstorm, blue = Minor): a ``<polygon>`` over the south-west of central Helsinki, 6 h;
- 燃气泄漏 (gas leak, red = Extreme): a ``<circle>`` of :data:`GAS_LEAK_RADIUS_KM` in central Helsinki, 2 h;
- 大风黄色预警 (gale, yellow = Moderate): a ``<polygon>`` over Karhula (Kotka) that expires
  :data:`SHORT_MINUTES` minutes after the demo starts — the viewer sees it go (an ``expired`` event).

The demo towns are Finnish, so they have no GB/T 2260 code: :data:`TOWNS` gives them made-up codes
in the unused 99 range (990101, 990102). Re-running the demo adds no duplicates: an alert whose event
this sender already has in force is not sent again; a new alert has a new sent time, hence a new
identifier.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

from lxml import etree

from cim.store import FeatureQuery, Store

CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"
CAP_MEDIA_TYPE = "application/cap+xml"
#: China Standard Time: the offset GB/T 35965.1 alerts are written in
CST = timezone(timedelta(hours=8))
SENDER = "demo@cim-basemap.example"
SENDER_NAME = "CIM 演示城市预警发布中心 (demo)"
GAS_LEAK_RADIUS_KM = 0.15
SHORT_MINUTES = 5


@dataclass(frozen=True)
class Town:
    """A demo town: the OSM extract its features come from, its names and a made-up division code."""

    source: str
    name: str
    name_zh: str
    code: str


TOWNS: dict[str, Town] = {
    "helsinki": Town("osm:Helsinki.osm.pbf", "Helsinki (centre)", "赫尔辛基市中心", "990101"),
    "kotka": Town("osm:test.osm.pbf", "Karhula, Kotka", "科特卡市卡尔胡拉", "990102"),
}

Extent = tuple[float, float, float, float]  # min lon, min lat, max lon, max lat


@dataclass(frozen=True)
class DemoAlert:
    """One generated alert: its event (the key for re-runs), identifier and CAP XML."""

    event: str
    identifier: str
    xml: bytes


def town_extents(store: Store) -> dict[str, Extent]:
    """The extent (CRS84) of each demo town's buildings in the current release, by :data:`TOWNS` key."""
    frame = store.read_frame("buildings", out_srid=4326)
    extents: dict[str, Extent] = {}
    for key, town in TOWNS.items():
        part = frame[frame["source"] == town.source]
        if len(part):
            minx, miny, maxx, maxy = (float(v) for v in part.total_bounds)
            extents[key] = (minx, miny, maxx, maxy)
    return extents


def _at(extent: Extent, fx: float, fy: float) -> tuple[float, float]:
    """(lat, lon) at fractions ``fx``, ``fy`` of ``extent`` (0, 0 = south-west corner)."""
    minx, miny, maxx, maxy = extent
    return round(miny + fy * (maxy - miny), 6), round(minx + fx * (maxx - minx), 6)


def cap_polygon(points: list[tuple[float, float]]) -> str:
    """A CAP ``<polygon>``: "lat,lon" pairs, the first repeated at the end."""
    ring = [*points, points[0]]
    return " ".join(f"{lat},{lon}" for lat, lon in ring)


def cap_time(moment: datetime) -> str:
    return moment.astimezone(CST).isoformat(timespec="seconds")


def identifier(code: str, serial: int, sent: datetime, sequence: int = 1) -> str:
    """A GB/T 35965.1 identifier: division code, department 416, unit 000, serial, sent time, sequence."""
    return f"{code}416000{serial:02d}_{sent.astimezone(CST):%Y%m%d%H%M%S}_{sequence}"


def _add(parent: etree._Element, tag: str, text: str | None = None) -> etree._Element:
    element = etree.SubElement(parent, f"{{{CAP_NS}}}{tag}")
    if text is not None:
        element.text = text
    return element


def cap_alert(
    *, ident: str, sent: datetime, category: str, event: str, urgency: str, severity: str, certainty: str,
    colour_zh: str, expires: datetime, headline: str, description: str, instruction: str, area_desc: str,
    polygon: str | None = None, circle: str | None = None, msg_type: str = "Alert", references: str | None = None,
) -> bytes:
    """One CAP 1.2 alert (status Actual, one zh-CN info and one area) as UTF-8 XML; an Update names
    what it replaces in ``references`` ("sender,identifier,sent" triples)."""
    alert = etree.Element(f"{{{CAP_NS}}}alert", nsmap={None: CAP_NS})
    for tag, text in (("identifier", ident), ("sender", SENDER), ("sent", cap_time(sent)), ("status", "Actual"),
                      ("msgType", msg_type), ("scope", "Public"), ("references", references)):
        if text is not None:
            _add(alert, tag, text)
    info = _add(alert, "info")
    for tag, text in (("language", "zh-CN"), ("category", category), ("event", event), ("urgency", urgency),
                      ("severity", severity), ("certainty", certainty)):
        _add(info, tag, text)
    for tag, text in (("effective", cap_time(sent)), ("expires", cap_time(expires)), ("senderName", SENDER_NAME),
                      ("headline", headline), ("description", description), ("instruction", instruction)):
        _add(info, tag, text)
    parameter = _add(info, "parameter")
    _add(parameter, "valueName", "预警级别")
    _add(parameter, "value", colour_zh)
    area = _add(info, "area")
    _add(area, "areaDesc", area_desc)
    if polygon:
        _add(area, "polygon", polygon)
    if circle:
        _add(area, "circle", circle)
    return etree.tostring(alert, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def demo_alerts(extents: dict[str, Extent], now: datetime | None = None) -> list[DemoAlert]:
    """The demo's alerts for the towns in ``extents`` (keys of :data:`TOWNS`), sent at ``now``."""
    sent = (now or datetime.now(UTC)).astimezone(CST).replace(microsecond=0)
    alerts: list[DemoAlert] = []
    if "helsinki" in extents:
        town, extent = TOWNS["helsinki"], extents["helsinki"]
        ident = identifier(town.code, 1, sent)
        alerts.append(DemoAlert("暴雨", ident, cap_alert(
            ident=ident, sent=sent, category="Met", event="暴雨", urgency="Expected", severity="Minor",
            certainty="Likely", colour_zh="蓝色", expires=sent + timedelta(hours=6),
            headline=f"{town.name_zh}暴雨蓝色预警", area_desc=f"{town.name_zh}西南部 ({town.name}, south-west)",
            description="预计未来12小时内降雨量将达50毫米以上，低洼地带可能积水。 Heavy rain: 50 mm or more in 12 hours.",
            instruction="注意防范城市内涝，避开低洼积水路段。 Avoid flooded underpasses and low roads.",
            polygon=cap_polygon([_at(extent, 0.08, 0.08), _at(extent, 0.55, 0.06), _at(extent, 0.6, 0.4),
                                 _at(extent, 0.35, 0.55), _at(extent, 0.06, 0.45)]),
        )))
        ident = identifier(town.code, 2, sent)
        lat, lon = _at(extent, 0.7, 0.72)
        alerts.append(DemoAlert("燃气泄漏", ident, cap_alert(
            ident=ident, sent=sent, category="Safety", event="燃气泄漏", urgency="Immediate", severity="Extreme",
            certainty="Observed", colour_zh="红色", expires=sent + timedelta(hours=2),
            headline=f"{town.name_zh}燃气泄漏红色预警", area_desc=f"燃气泄漏点周边{int(GAS_LEAK_RADIUS_KM * 1000)}米",
            description="燃气管道泄漏，周边区域禁止明火。 Gas main leak: no open flames nearby.",
            instruction="立即撤离至警戒范围以外，听从现场指挥。 Leave the area now and follow the responders.",
            circle=f"{lat},{lon} {GAS_LEAK_RADIUS_KM}",
        )))
    if "kotka" in extents:
        town, extent = TOWNS["kotka"], extents["kotka"]
        ident = identifier(town.code, 3, sent)
        alerts.append(DemoAlert("大风", ident, cap_alert(
            ident=ident, sent=sent, category="Met", event="大风", urgency="Immediate", severity="Moderate",
            certainty="Likely", colour_zh="黄色", expires=sent + timedelta(minutes=SHORT_MINUTES),
            headline=f"{town.name_zh}大风黄色预警", area_desc=f"{town.name_zh} ({town.name})",
            description="短时阵风可达8级以上。 Gusts of force 8 or more for a short while.",
            instruction="加固临时搭建物，远离广告牌。 Secure loose structures, keep away from billboards.",
            polygon=cap_polygon([_at(extent, 0.15, 0.2), _at(extent, 0.85, 0.2), _at(extent, 0.85, 0.8),
                                 _at(extent, 0.15, 0.8)]),
        )))
    return alerts


def events_in_force(store: Store) -> set[str]:
    """The events of the demo sender's warnings in force now."""
    page = store.query(FeatureQuery(layer="warnings", limit=1000, equals=(("sender", SENDER),),
                                    properties=("event",), skip_geometry=True, count=False))
    return {(f.get("properties") or {}).get("event") for f in page.features} - {None}


def ingest_demo_warnings(store: Store, now: datetime | None = None,
                         say: Callable[[str], None] = lambda message: None) -> list[str]:
    """Ingest the demo alerts whose event is not already in force; their identifiers."""
    from cim.warnings.ingest import (
        ingest,  # the lead's CAP ingest (cim/warnings/ingest.py)
    )

    in_force = events_in_force(store)
    done: list[str] = []
    for alert in demo_alerts(town_extents(store), now):
        if alert.event in in_force:
            say(f"warning {alert.event}: already in force")
            continue
        result = ingest(store, alert.xml, CAP_MEDIA_TYPE, who="demo")
        say(f"warning {alert.event}: {alert.identifier} -> /collections/warnings/items/{result.fid}")
        done.append(alert.identifier)
    return done


__all__ = ["CAP_NS", "TOWNS", "DemoAlert", "demo_alerts", "ingest_demo_warnings", "town_extents"]
