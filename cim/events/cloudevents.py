"""CloudEvents 1.0 in structured JSON mode, validated by the cloudevents package: what the SSE
streams and the MQTT topics of the warnings and the release announcements carry."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

#: media type of a structured-mode CloudEvent (its JSON event format)
MEDIA_TYPE = "application/cloudevents+json"


def utc(at: datetime) -> datetime:
    """``at`` as an aware UTC datetime (naive ones are taken as UTC)."""
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def make(attributes: dict[str, Any], data: Any) -> CloudEvent:
    """A validated :class:`CloudEvent` (``specversion`` 1.0 added; raises the package's validation errors)."""
    return CloudEvent({"specversion": "1.0", **attributes}, data)


def to_dict(event: CloudEvent) -> dict[str, Any]:
    """``event`` as a structured JSON object (a dict ready for ``json.dumps``)."""
    return json.loads(JSONFormat().write(event))


def dumps(document: dict[str, Any]) -> str:
    """A structured CloudEvent (dict) as compact JSON text, non-ASCII kept as is."""
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"))


def from_json(text: str | bytes) -> CloudEvent:
    """Parse and validate CloudEvents structured JSON (what a subscriber does)."""
    raw = text.encode() if isinstance(text, str) else text
    return JSONFormat().read(CloudEvent, raw)


__all__ = ["MEDIA_TYPE", "dumps", "from_json", "make", "to_dict", "utc"]
