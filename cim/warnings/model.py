"""The parsed warning: an :class:`Alert` with its :class:`Info` blocks and their :class:`Area`\\ s,
whatever it came as (CAP 1.2 XML or a GeoJSON warning). Geometries are shapely polygons in WGS84
longitude/latitude (x = longitude, CRS84), times tz-aware datetimes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shapely.geometry import MultiPolygon, Polygon, mapping


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _pairs(pairs: tuple[tuple[str, str], ...]) -> list[dict[str, str]]:
    return [{"valueName": name, "value": value} for name, value in pairs]


@dataclass(frozen=True)
class Reference:
    """One ``sender,identifier,sent`` triple of ``<references>``: an earlier alert this one replaces."""

    sender: str
    identifier: str
    sent: datetime

    def as_text(self) -> str:
        """The triple as CAP writes it (``sent`` with its offset)."""
        return f"{self.sender},{self.identifier},{self.sent.isoformat()}"


@dataclass(frozen=True)
class Area:
    """One ``<area>``: its description, the union of its polygons and circles (lon/lat; None when it
    has geocodes only) and its geocodes as ``(valueName, value)``."""

    description: str
    geometry: Polygon | MultiPolygon | None
    geocodes: tuple[tuple[str, str], ...]

    def as_json(self) -> dict[str, Any]:
        return {
            "areaDesc": self.description,
            "geometry": None if self.geometry is None else mapping(self.geometry),
            "geocode": _pairs(self.geocodes),
        }


@dataclass(frozen=True)
class Info:
    """One ``<info>`` block: the event, its urgency/severity/certainty, its times and its areas."""

    language: str
    categories: tuple[str, ...]
    event: str
    urgency: str
    severity: str
    certainty: str
    effective: datetime | None
    onset: datetime | None
    expires: datetime | None
    sender_name: str | None
    headline: str | None
    description: str | None
    instruction: str | None
    web: str | None
    contact: str | None
    event_codes: tuple[tuple[str, str], ...]
    parameters: tuple[tuple[str, str], ...]
    areas: tuple[Area, ...]
    #: "red" | "orange" | "yellow" | "blue" (GB/T 35965.1 预警颜色), stated or derived from severity
    colour: str | None

    def as_json(self) -> dict[str, Any]:
        """The info as JSON-able data with CAP's element names (ISO 8601 times, GeoJSON geometries)."""
        return {
            "language": self.language,
            "category": list(self.categories),
            "event": self.event,
            "urgency": self.urgency,
            "severity": self.severity,
            "certainty": self.certainty,
            "effective": _iso(self.effective),
            "onset": _iso(self.onset),
            "expires": _iso(self.expires),
            "senderName": self.sender_name,
            "headline": self.headline,
            "description": self.description,
            "instruction": self.instruction,
            "web": self.web,
            "contact": self.contact,
            "eventCode": _pairs(self.event_codes),
            "parameter": _pairs(self.parameters),
            "area": [area.as_json() for area in self.areas],
            "colour": self.colour,
        }


@dataclass(frozen=True)
class Alert:
    """One CAP ``<alert>`` (or a GeoJSON warning read into the same shape)."""

    identifier: str
    sender: str
    sent: datetime
    status: str
    msg_type: str
    scope: str
    references: tuple[Reference, ...]
    note: str | None
    infos: tuple[Info, ...]
    #: "cap" | "geojson": what the document was
    format: str
    #: GB/T 2260 six-digit division code from a GB/T 35965.1 identifier, else None
    division_code: str | None

    def as_json(self) -> dict[str, Any]:
        return {
            "identifier": self.identifier,
            "sender": self.sender,
            "sent": self.sent.isoformat(),
            "status": self.status,
            "msgType": self.msg_type,
            "scope": self.scope,
            "references": [ref.as_text() for ref in self.references],
            "note": self.note,
            "info": [info.as_json() for info in self.infos],
            "format": self.format,
            "divisionCode": self.division_code,
        }

    def same_content(self, other: Alert) -> bool:
        """Equal in everything parsed (for idempotent ingest: the same identifier sent twice). Times
        compare as instants (``+08:00`` and the same moment in UTC are equal), geometries by their
        coordinates."""
        return _canonical(self) == _canonical(other)


def _canonical(alert: Alert) -> Any:
    """The alert's content with times as UTC instants, so equal instants compare equal."""

    def norm(value: Any) -> Any:
        if isinstance(value, datetime):
            return ("t", value.timestamp())
        if isinstance(value, (Polygon, MultiPolygon)):
            return ("g", value.wkb_hex)
        if isinstance(value, tuple):
            return tuple(norm(v) for v in value)
        if isinstance(value, (Alert, Info, Area, Reference)):
            return tuple((name, norm(getattr(value, name))) for name in value.__dataclass_fields__)
        return value

    return norm(alert)
