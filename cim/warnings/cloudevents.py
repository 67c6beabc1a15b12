"""Warning events as CloudEvents 1.0 (structured JSON mode): what SSE and MQTT subscribers receive.

One store event (:class:`cim.store.live.LiveEvent`) is one CloudEvent:

- ``id``: the event's ``seq`` (unique per store event; the SSE event id too), ``sequence`` (the
  CloudEvents sequence extension) repeats it, so a subscriber can order and deduplicate;
- ``source``: the collection the warning belongs to (``<server URL>/collections/warnings``), or
  ``cim:<store>`` when the CLI publishes;
- ``type``: ``org.cim-basemap.warning.<kind>`` with kind created, updated, cancelled or expired. The
  OGC API Publish-Subscribe draft (as pygeoapi 0.24 implements it) names its types
  ``org.ogc.api.collection.item.{create,update,delete}``; a warning is never updated or deleted in
  place (each version is a feature of its own), so those do not fit and the kinds are our own;
- ``subject``: the feature id of the version (``/collections/warnings/items/{subject}``);
- ``time``: when it happened; ``datacontenttype`` ``application/geo+json``; ``data``: the feature.
docs/warnings/push.md.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from cim.store.live import EVENT_KINDS, LiveEvent

#: CloudEvents ``type`` of each event kind
TYPE_PREFIX = "org.cim-basemap.warning."
EVENT_TYPES: dict[str, str] = {kind: TYPE_PREFIX + kind for kind in EVENT_KINDS}
MEDIA_TYPE = "application/cloudevents+json"
DATA_MEDIA_TYPE = "application/geo+json"


def event_type(kind: str) -> str:
    """The CloudEvents type of an event kind; ValueError for an unknown kind."""
    try:
        return EVENT_TYPES[kind]
    except KeyError:
        raise ValueError(f"unknown warning event kind {kind!r} (one of {', '.join(EVENT_KINDS)})") from None


def _utc(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def cloudevent(event: LiveEvent, source: str) -> CloudEvent:
    """``event`` as a validated :class:`CloudEvent` (raises the package's validation errors)."""
    attributes: dict[str, Any] = {
        "specversion": "1.0",
        "id": str(event.seq),
        "source": source,
        "type": event_type(event.kind),
        "subject": str(event.fid),
        "time": _utc(event.at),
        "datacontenttype": DATA_MEDIA_TYPE,
        "sequence": str(event.seq),
    }
    return CloudEvent(attributes, event.feature)


def to_cloudevent(event: LiveEvent, source: str) -> dict[str, Any]:
    """``event`` as a CloudEvents 1.0 structured JSON object (a dict ready for ``json.dumps``)."""
    return json.loads(JSONFormat().write(cloudevent(event, source)))


def to_json(event: LiveEvent, source: str) -> str:
    """``event`` as CloudEvents structured JSON text (UTF-8, non-ASCII kept as is)."""
    return json.dumps(to_cloudevent(event, source), ensure_ascii=False, separators=(",", ":"))


def from_json(text: str | bytes) -> CloudEvent:
    """Parse and validate CloudEvents structured JSON (what a subscriber does)."""
    raw = text.encode() if isinstance(text, str) else text
    return JSONFormat().read(CloudEvent, raw)
