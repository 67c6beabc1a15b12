"""GeoJSON warnings, and :func:`parse_warning`, which takes a warning in either format.

A GeoJSON warning is one Feature whose geometry is a Polygon or MultiPolygon in CRS84 (lon/lat) and
whose properties use CAP's names (docs/warnings/cap.md has an example)::

    identifier, sender, sent            required (sent: ISO 8601 with an offset or Z)
    event, urgency, severity, certainty required, CAP values
    category                            required: a CAP category or a list of them
    status, msgType, scope              default Actual, Alert, Public
    references                          "sender,identifier,sent ..." or a list of triples
    effective, onset, expires           ISO 8601 with an offset or Z
    headline, description, instruction, senderName, web, contact, note, language (default zh-CN)
    areaDesc                            default: the event
    geocode                             [{"valueName": ..., "value": ...}] (the geometry may then be null)
    colour                              red/orange/yellow/blue (or 红/橙/黄/蓝)
    eventCode, parameter                [{"valueName": ..., "value": ...}]

The same checks as CAP apply: required fields and values, times, ring closure and validity,
coordinate ranges, the size limit, and nesting depth (measured before ``json`` parses).
"""

from __future__ import annotations

import json
from typing import Any

from shapely.geometry import MultiPolygon, Polygon
from shapely.validation import explain_validity

from cim.limits import limits, text_depth
from cim.warnings import areas, gbt35965
from cim.warnings.cap import (
    check_alert,
    check_times,
    check_token,
    parse_cap,
    parse_references,
    parse_time,
)
from cim.warnings.errors import InvalidWarning, UnsupportedWarningFormat
from cim.warnings.model import Alert, Area, Info
from cim.warnings.versions import SEVERITIES
from cim.warnings.xml_guard import check_size

CAP_TYPES = ("application/cap+xml", "application/xml", "text/xml")
GEOJSON_TYPES = ("application/geo+json", "application/json")
ENUMS = {
    "status": ("Actual", "Exercise", "System", "Test", "Draft"),
    "msgType": ("Alert", "Update", "Cancel", "Ack", "Error"),
    "scope": ("Public", "Restricted", "Private"),
    "urgency": ("Immediate", "Expected", "Future", "Past", "Unknown"),
    "severity": SEVERITIES,
    "certainty": ("Observed", "Likely", "Possible", "Unlikely", "Unknown"),
    "category": (
        "Geo",
        "Met",
        "Safety",
        "Security",
        "Rescue",
        "Fire",
        "Health",
        "Env",
        "Transport",
        "Infra",
        "CBRNE",
        "Other",
    ),
}
WHAT = "GeoJSON warning"


def _string(props: dict[str, Any], name: str, required: bool = False, default: str | None = None) -> str | None:
    value = props.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise InvalidWarning(f"{WHAT}: properties.{name} is required")
        return default
    if not isinstance(value, str):
        raise InvalidWarning(f"{WHAT}: properties.{name} must be a string, got {type(value).__name__}")
    value = value.strip()
    allowed = ENUMS.get(name)
    if allowed and value not in allowed:
        raise InvalidWarning(f"{WHAT}: properties.{name} {value!r} is not one of {', '.join(allowed)}")
    return value


def _pairs(props: dict[str, Any], name: str) -> tuple[tuple[str, str], ...]:
    value = props.get(name)
    if value is None:
        return ()
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        raise InvalidWarning(f'{WHAT}: properties.{name} must be a list of {{"valueName", "value"}} objects')
    out = []
    for i, item in enumerate(value, start=1):
        if not (isinstance(item, dict) and isinstance(item.get("valueName"), str) and isinstance(item.get("value"), (str, int))):
            raise InvalidWarning(f'{WHAT}: properties.{name}[{i}] must be {{"valueName": string, "value": string}}')
        out.append((item["valueName"], str(item["value"])))
    return tuple(out)


def _position(point: Any, where: str) -> tuple[float, float]:
    if (
        not isinstance(point, list)
        or len(point) not in (2, 3)
        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in point)
    ):
        raise InvalidWarning(f"{where}: a position must be [longitude, latitude]")
    lon, lat = float(point[0]), float(point[1])
    areas.check_lat_lon(lat, lon, where)
    return lon, lat


def _polygon(rings: Any, where: str) -> Any:
    if not isinstance(rings, list) or not rings:
        raise InvalidWarning(f"{where}: a Polygon's coordinates must be a list of rings")
    shells = []
    for k, ring in enumerate(rings, start=1):
        if not isinstance(ring, list):
            raise InvalidWarning(f"{where} ring {k}: must be a list of positions")
        points = [_position(p, f"{where} ring {k}") for p in ring]
        shells.append(areas.ring_polygon(points, f"{where} ring {k}"))
    if len(shells) == 1:
        return shells[0]
    polygon = Polygon(shells[0].exterior.coords, [s.exterior.coords for s in shells[1:]])
    if not polygon.is_valid:
        raise InvalidWarning(f"{where}: invalid polygon: {explain_validity(polygon)}")
    return polygon


def _geometry(geometry: Any) -> Any:
    if geometry is None:
        return None
    if not isinstance(geometry, dict):
        raise InvalidWarning(f"{WHAT}: geometry must be a GeoJSON object or null")
    kind = geometry.get("type")
    coords = geometry.get("coordinates")
    if kind == "Polygon":
        return _polygon(coords, f"{WHAT}: geometry")
    if kind == "MultiPolygon":
        if not isinstance(coords, list) or not coords:
            raise InvalidWarning(f"{WHAT}: a MultiPolygon's coordinates must be a list of polygons")
        parts = [_polygon(p, f"{WHAT}: geometry polygon {i}") for i, p in enumerate(coords, start=1)]
        multi = MultiPolygon(parts)
        if not multi.is_valid:
            raise InvalidWarning(f"{WHAT}: geometry: invalid MultiPolygon: {explain_validity(multi)}")
        return multi
    raise InvalidWarning(f"{WHAT}: geometry type {kind!r} is not accepted (Polygon or MultiPolygon, lon/lat)")


def parse_geojson_warning(data: bytes) -> Alert:
    """A GeoJSON warning (one Feature) -> :class:`Alert`, or a 4xx naming what is wrong."""
    check_size(data, WHAT)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidWarning(f"{WHAT}: not UTF-8 at byte {exc.start}") from None
    depth = text_depth(text)
    if depth > limits().max_json_depth:
        raise InvalidWarning(f"{WHAT}: JSON nested {depth} levels deep, over the limit of {limits().max_json_depth}")
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise InvalidWarning(f"{WHAT}: not JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("type") != "Feature":
        kind = doc.get("type") if isinstance(doc, dict) else type(doc).__name__
        raise InvalidWarning(f"{WHAT}: expected one GeoJSON Feature, got {kind!r}")
    props = doc.get("properties")
    if not isinstance(props, dict):
        raise InvalidWarning(f"{WHAT}: properties must be an object with the CAP fields")
    identifier = _string(props, "identifier", required=True) or ""
    sender = _string(props, "sender", required=True) or ""
    check_token(identifier, f"{WHAT}: properties.identifier")
    check_token(sender, f"{WHAT}: properties.sender")
    sent = parse_time(_string(props, "sent", required=True) or "", f"{WHAT}: properties.sent")
    msg_type = _string(props, "msgType", default="Alert") or "Alert"
    refs = props.get("references")
    if isinstance(refs, list) and all(isinstance(r, str) for r in refs):
        refs = " ".join(refs)
    elif refs is not None and not isinstance(refs, str):
        raise InvalidWarning(f"{WHAT}: properties.references must be a string of triples or a list of them")
    references = parse_references(refs, f"{WHAT}: properties.references")
    check_alert(msg_type, references, None, f"{WHAT} {identifier}")

    categories = props.get("category")
    if isinstance(categories, str):
        categories = categories.split()
    if not categories or not isinstance(categories, list) or not all(isinstance(c, str) for c in categories):
        raise InvalidWarning(f"{WHAT}: properties.category is required (a CAP category or a list of them)")
    for c in categories:
        _string({"category": c}, "category")
    event = _string(props, "event", required=True) or ""
    headline = _string(props, "headline")
    event_codes = _pairs(props, "eventCode")
    parameters = _pairs(props, "parameter")
    severity = _string(props, "severity", required=True) or "Unknown"
    stated = _string(props, "colour") or _string(props, "color")
    if stated is not None:
        colour = gbt35965.normalise_colour(stated)
        if colour is None:
            raise InvalidWarning(f"{WHAT}: properties.colour {stated!r} is not red, orange, yellow or blue (红/橙/黄/蓝)")
        parameters = (*parameters, ("colour", colour))
    severity, colour = gbt35965.resolve(severity, event_codes + parameters, (event, headline))
    effective = _time(props, "effective")
    expires = _time(props, "expires")
    check_times(effective, expires, sent, f"{WHAT}: properties")
    geometry = _geometry(doc.get("geometry"))
    geocodes = _pairs(props, "geocode")
    areas_ = ()
    if geometry is not None or geocodes:
        areas_ = (Area(_string(props, "areaDesc", default=event) or event, geometry, geocodes),)
    elif msg_type == "Alert":
        raise InvalidWarning(f"{WHAT} {identifier}: an Alert needs a geometry (Polygon or MultiPolygon) or properties.geocode")
    info = Info(
        language=_string(props, "language", default="zh-CN") or "zh-CN",
        categories=tuple(categories),
        event=event,
        urgency=_string(props, "urgency", required=True) or "Unknown",
        severity=severity,
        certainty=_string(props, "certainty", required=True) or "Unknown",
        effective=effective,
        onset=_time(props, "onset"),
        expires=expires,
        sender_name=_string(props, "senderName"),
        headline=headline,
        description=_string(props, "description"),
        instruction=_string(props, "instruction"),
        web=_string(props, "web"),
        contact=_string(props, "contact"),
        event_codes=event_codes,
        parameters=parameters,
        areas=areas_,
        colour=colour,
    )
    check_alert(msg_type, references, (info,), f"{WHAT} {identifier}")
    return Alert(
        identifier=identifier,
        sender=sender,
        sent=sent,
        status=_string(props, "status", default="Actual") or "Actual",
        msg_type=msg_type,
        scope=_string(props, "scope", default="Public") or "Public",
        references=references,
        note=_string(props, "note"),
        infos=(info,),
        format="geojson",
        division_code=gbt35965.division_code(identifier),
    )


def _time(props: dict[str, Any], name: str) -> Any:
    text = _string(props, name)
    return None if text is None else parse_time(text, f"{WHAT}: properties.{name}")


def parse_warning(data: bytes, media_type: str | None = None) -> Alert:
    """A warning in either format, by media type (parameters such as ``charset`` ignored): CAP for
    application/cap+xml, application/xml, text/xml; GeoJSON for application/geo+json,
    application/json; None: by the first non-space character (``<`` CAP, ``{`` GeoJSON). Any other
    type is a 415; the size limit applies first of all (413)."""
    check_size(data, "warning")
    kind = (media_type or "").split(";", 1)[0].strip().lower()
    if kind in CAP_TYPES:
        return parse_cap(data)
    if kind in GEOJSON_TYPES:
        return parse_geojson_warning(data)
    if kind:
        raise UnsupportedWarningFormat(
            f"media type {kind!r} is not a warning format: send {CAP_TYPES[0]} (CAP 1.2) or {GEOJSON_TYPES[0]} (a GeoJSON Feature)"
        )
    head = data.lstrip(b" \t\r\n\xef\xbb\xbf")[:1]
    if head == b"<" or data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return parse_cap(data)
    if head == b"{":
        return parse_geojson_warning(data)
    raise InvalidWarning("warning: neither XML (CAP 1.2) nor JSON (a GeoJSON Feature)")
