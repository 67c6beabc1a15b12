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
docs/warnings/push.md. The encoding itself is cim/events/cloudevents.py (shared with the release
announcements).
"""

from __future__ import annotations

from typing import Any

from cloudevents.core.v1.event import CloudEvent

from cim.events.cloudevents import MEDIA_TYPE, dumps, from_json, make, to_dict, utc
from cim.store.live import EVENT_KINDS, LiveEvent

#: CloudEvents ``type`` of each event kind
TYPE_PREFIX = "org.cim-basemap.warning."
EVENT_TYPES: dict[str, str] = {kind: TYPE_PREFIX + kind for kind in EVENT_KINDS}
DATA_MEDIA_TYPE = "application/geo+json"


def event_type(kind: str) -> str:
    """The CloudEvents type of an event kind; ValueError for an unknown kind."""
    try:
        return EVENT_TYPES[kind]
    except KeyError:
        raise ValueError(f"unknown warning event kind {kind!r} (one of {', '.join(EVENT_KINDS)})") from None


def cloudevent(event: LiveEvent, source: str) -> CloudEvent:
    """``event`` as a validated :class:`CloudEvent` (raises the package's validation errors)."""
    attributes: dict[str, Any] = {
        "id": str(event.seq),
        "source": source,
        "type": event_type(event.kind),
        "subject": str(event.fid),
        "time": utc(event.at),
        "datacontenttype": DATA_MEDIA_TYPE,
        "sequence": str(event.seq),
    }
    return make(attributes, event.feature)


def to_cloudevent(event: LiveEvent, source: str) -> dict[str, Any]:
    """``event`` as a CloudEvents 1.0 structured JSON object (a dict ready for ``json.dumps``)."""
    return to_dict(cloudevent(event, source))


def to_json(event: LiveEvent, source: str) -> str:
    """``event`` as CloudEvents structured JSON text (UTF-8, non-ASCII kept as is)."""
    return dumps(to_cloudevent(event, source))


__all__ = ["DATA_MEDIA_TYPE", "EVENT_TYPES", "MEDIA_TYPE", "TYPE_PREFIX", "cloudevent", "event_type", "from_json",
           "to_cloudevent", "to_json"]
