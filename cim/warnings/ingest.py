"""Ingest: a CAP 1.2 or GeoJSON warning document → a version of the live ``warnings`` layer.

``ingest(store, document)`` parses (cim/warnings/cap.py, geojson_input.py: hardened, checked),
resolves each area to one geometry (polygons and circles as given; geocodes to the
``admin_divisions`` layer by GB/T 2260 code), and writes the version through
:mod:`cim.warnings.versions` in one atomic live-layer write. :func:`expire_due` and
:func:`next_expiry` are what the expiry scheduler (cim/warnings/watcher.py) runs.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import shapely
from shapely.geometry import MultiPolygon, Polygon, shape

from cim.errors import BadInput, LayerNotFound
from cim.store import FeatureQuery, Store
from cim.store.live import LiveEvent
from cim.warnings import versions
from cim.warnings.geojson_input import parse_warning
from cim.warnings.versions import LAYER, Applied, Version

#: a GB/T 2260 administrative division code
DIVISION_CODE = re.compile(r"^[0-9]{6}$")  # ASCII digits (\d takes any Unicode digit)
DIVISIONS_LAYER = "admin_divisions"


@dataclass(frozen=True)
class IngestResult:
    fid: int
    #: False: the same alert was stored already (nothing written, no event)
    created: bool
    events: list[LiveEvent] = field(default_factory=list)
    identifier: str = ""


def ingest(store: Store, document: bytes, media_type: str | None = None, who: str = "cli") -> IngestResult:
    """Parse ``document`` and store it as a version of the warnings layer (see the module doc).
    Raises a ``cim.errors`` 4xx for anything wrong with it; nothing is stored then."""
    alert = parse_warning(document, media_type)
    version = to_version(store, alert, who)
    now = datetime.now(UTC)
    applied: Applied
    applied, events = store.live_write(LAYER, lambda tx: versions.apply(tx, version, now))
    return IngestResult(applied.fid, applied.created, events, alert.identifier)


def expire_due(store: Store, now: datetime | None = None) -> list[LiveEvent]:
    """Log ``expired`` for every warning whose expiry has passed by ``now`` (once each, whichever
    process asks first); the events."""
    moment = now or datetime.now(UTC)
    _, events = store.live_write(LAYER, lambda tx: versions.expire(tx, moment))
    return events


def next_expiry(store: Store) -> datetime | None:
    """The earliest expiry among the warnings in force now (None: none will expire)."""
    page = store.query(FeatureQuery(layer=LAYER, limit=1, sortby=(("valid_until", True),),
                                    properties=("valid_until",), skip_geometry=True, count=False))  # fmt: skip
    for feature in page.features:
        until = feature["properties"].get("valid_until")
        if until:
            return datetime.fromisoformat(until)
    return None


def to_version(store: Store, alert: Any, who: str) -> Version:
    """The layer's values and geometry of a parsed alert (``cim.warnings.model.Alert``)."""
    infos = list(alert.infos)
    first = infos[0] if infos else None
    geometry = _geometry(store, alert)
    severities = [i.severity for i in infos if i.severity]
    severity = min(severities, key=lambda s: versions.SEVERITY_RANK.get(s, 9)) if severities else None
    colours = [i.colour for i in infos if getattr(i, "colour", None)]
    colour = (
        min(colours, key=lambda c: versions.COLOUR_RANK.get(c, 9))
        if colours else versions.COLOUR_OF_SEVERITY.get(severity or "Unknown", "none")
    )  # fmt: skip
    effective = min((i.effective for i in infos if i.effective), default=None)
    onset = min((i.onset for i in infos if i.onset), default=None)
    expiries = [i.expires for i in infos if i.expires]
    expires = max(expiries) if expiries and len(expiries) == len(infos) else None  # one open info: open
    valid_from = effective or alert.sent
    cancel = alert.msg_type == "Cancel"
    areas = [a for i in infos for a in i.areas]
    info_json = [i.as_json() for i in infos]
    content = {
        "identifier": alert.identifier, "sender": alert.sender, "sent": alert.sent.isoformat(),
        "status": alert.status, "msgType": alert.msg_type, "scope": alert.scope, "note": alert.note,
        "references": [[r.sender, r.identifier, r.sent.isoformat()] for r in alert.references],
        "infos": info_json,
    }  # fmt: skip
    values: dict[str, Any] = {
        "identifier": alert.identifier,
        "sender": alert.sender,
        "sent": alert.sent,
        "status": alert.status,
        "msg_type": alert.msg_type,
        "references": " ".join(f"{r.sender},{r.identifier},{r.sent.isoformat()}" for r in alert.references) or None,
        "superseded_by": None,
        "event": first.event if first else None,
        "category": " ".join(dict.fromkeys(c for i in infos for c in i.categories)) or None,
        "urgency": first.urgency if first else None,
        "severity": severity,
        "certainty": first.certainty if first else None,
        "colour": colour,
        "headline": first.headline if first else None,
        "description": first.description if first else None,
        "instruction": first.instruction if first else None,
        "language": first.language if first else None,
        "area_desc": "; ".join(dict.fromkeys(a.description for a in areas if a.description)) or None,
        "geocodes": " ".join(f"{n}={v}" for a in areas for n, v in a.geocodes) or None,
        "division_code": alert.division_code or _division_of(areas),
        "effective": effective,
        "onset": onset,
        "expires": expires,
        "valid_from": alert.sent if cancel else valid_from,
        "valid_until": alert.sent if cancel else expires,
        "infos": json.dumps(info_json, ensure_ascii=False, default=str),
        "digest": versions.digest(content),
        "source": f"{alert.format}:{who}",
        "source_id": alert.identifier,
    }
    references = tuple((r.sender, r.identifier) for r in alert.references)
    wkb = shapely.to_wkb(geometry) if geometry is not None else None
    if geometry is None and not cancel and alert.msg_type != "Update":
        raise BadInput(f"alert {alert.identifier!r} has no area: a warning needs a polygon, circle or geocode")
    return Version(values, wkb, alert.status == "Actual", references)


def _division_of(areas: list[Any]) -> str | None:
    for area in areas:
        for _, value in area.geocodes:
            if DIVISION_CODE.match(value):
                return value
    return None


def _geometry(store: Store, alert: Any) -> MultiPolygon | None:
    """The union of every area of every info: polygons and circles as parsed; an area given only by
    geocodes takes the geometry of the division with that GB/T 2260 code."""
    parts: list[Polygon | MultiPolygon] = []
    for i, info in enumerate(alert.infos, start=1):
        for j, area in enumerate(info.areas, start=1):
            if area.geometry is not None:
                parts.append(area.geometry)
                continue
            for name, value in area.geocodes:
                parts.append(_division(store, name, value, f"info {i}, area {j}"))
    if not parts:
        return None
    union = shapely.union_all(parts)
    if isinstance(union, Polygon):
        union = MultiPolygon([union])
    if not isinstance(union, MultiPolygon):
        union = MultiPolygon([g for g in getattr(union, "geoms", []) if isinstance(g, Polygon)])
    return union


def _division(store: Store, name: str, value: str, where: str) -> Polygon | MultiPolygon:
    if not DIVISION_CODE.match(value):
        raise BadInput(f"{where}: geocode {name}={value!r} is not a GB/T 2260 division code (six digits) and the area has no polygon or circle")
    try:
        page = store.query(FeatureQuery(layer=DIVISIONS_LAYER, limit=1, equals=(("code", value),), out_srid=4326, count=False))
    except LayerNotFound:
        raise BadInput(f"{where}: geocode {name}={value}: this city has no {DIVISIONS_LAYER} layer to resolve it") from None
    if not page.features or page.features[0]["geometry"] is None:
        raise BadInput(f"{where}: unknown geocode {name}={value}: no division with that GB/T 2260 code in layer {DIVISIONS_LAYER}")
    return shape(page.features[0]["geometry"])
