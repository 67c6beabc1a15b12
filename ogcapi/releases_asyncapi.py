"""The release announcement channels in the AsyncAPI 3.0 document (``/asyncapi``, ogcapi/asyncapi.py):
``/releases/stream`` (SSE) and, with ``$CIM_MQTT_URL``, ``{root}/releases/{kind}`` (MQTT); messages
``releasePublished`` and ``releaseCurrent``, CloudEvents 1.0 JSON whose ``data`` is a release as
``GET /releases/{n}`` describes it (cim/sharing/announce.py). Self-contained: no external ``$ref``."""

from __future__ import annotations

from typing import Any

from cim.events.mqtt import BrokerURL
from cim.sharing.announce import CURRENT, DATA_MEDIA_TYPE, EVENT_TYPES, KINDS, MEDIA_TYPE, PUBLISHED
from ogcapi.releases_routes import STREAM_PATH

MESSAGES = {PUBLISHED: "releasePublished", CURRENT: "releaseCurrent"}
_SUMMARIES = {
    PUBLISHED: "A new release of the base map became current (a build published it).",
    CURRENT: "The current release changed otherwise: a rollback to an older kept release, or forward again.",
}


def release_schema() -> dict[str, Any]:
    """JSON Schema of a release (the ``data`` of an announcement; ``GET /releases/{n}``)."""
    link = {"type": "object", "required": ["rel", "href"],
            "properties": {"rel": {"type": "string"}, "href": {"type": "string"}, "type": {"type": "string"},
                           "title": {"type": "string"}, "layer": {"type": "string"}}}  # fmt: skip
    return {
        "type": "object",
        "required": ["number", "created", "current", "layers", "checksums", "links"],
        "properties": {
            "number": {"type": "integer", "minimum": 0},
            "created": {"type": "string", "format": "date-time"},
            "current": {"type": "boolean"},
            "previous": {"type": ["integer", "null"], "description": "the release current before (announcements) or the kept one before"},
            "layers": {"type": "array", "items": {"type": "object", "properties": {
                "name": {"type": "string"}, "kind": {"type": "string"}, "count": {"type": "integer"}}}},
            "checksums": {"type": "integer", "description": "how many source files the build recorded a sha256 of"},
            "links": {"type": "array", "items": link,
                      "description": "self, the catalog records (describedby), each layer's change feed (changes) and downloads (enclosure)"},
        },
    }  # fmt: skip


def release_event_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "description": "CloudEvents 1.0, JSON event format (structured mode)",
        "required": ["specversion", "id", "source", "type", "subject", "time", "datacontenttype", "data"],
        "properties": {
            "specversion": {"const": "1.0"},
            "id": {"type": "string", "pattern": "^release-[0-9]+-(published|current)-",
                   "description": "release-<N>-<kind>-<time>: the same for a release's published event wherever it is made"},
            "source": {"type": "string", "format": "uri-reference", "description": "<server URL>/releases"},
            "type": {"type": "string", "enum": list(EVENT_TYPES.values())},
            "subject": {"type": "string", "description": "the release number"},
            "time": {"type": "string", "format": "date-time"},
            "datacontenttype": {"const": DATA_MEDIA_TYPE},
            "data": {"$ref": "#/components/schemas/Release"},
        },
    }  # fmt: skip


def _message(kind: str) -> dict[str, Any]:
    return {
        "name": kind,
        "title": f"Release {kind}",
        "summary": _SUMMARIES[kind],
        "contentType": MEDIA_TYPE,
        "payload": {"allOf": [{"$ref": "#/components/schemas/ReleaseEvent"},
                              {"type": "object", "properties": {"type": {"const": EVENT_TYPES[kind]}}}]},
    }  # fmt: skip


def add_release_channels(doc: dict[str, Any], broker: BrokerURL | None) -> dict[str, Any]:
    """``doc`` with the release channels, operations, messages and schemas (MQTT with ``broker``)."""
    refs = {MESSAGES[k]: {"$ref": f"#/components/messages/{MESSAGES[k]}"} for k in KINDS}
    components = doc.setdefault("components", {})
    components.setdefault("schemas", {}).update({"ReleaseEvent": release_event_schema(), "Release": release_schema()})
    components.setdefault("messages", {}).update({MESSAGES[k]: _message(k) for k in KINDS})
    doc["channels"]["releasesStream"] = {
        "address": STREAM_PATH,
        "title": "Release announcements as Server-Sent Events",
        "description": (
            "GET with Accept: text/event-stream. event = published|current, data = the CloudEvent JSON; published "
            "events carry id = the CloudEvent id, current ones no id. Resume with Last-Event-ID (or ?lastEventId=): "
            "an announcement id or a release number; the kept releases after it are sent first. docs/sharing-announcements.md."
        ),
        "servers": [{"$ref": "#/servers/http"}],
        "messages": refs,
    }
    doc["operations"]["receiveReleasesStream"] = {
        "action": "receive",
        "title": "Subscribe to release announcements over Server-Sent Events",
        "channel": {"$ref": "#/channels/releasesStream"},
        "messages": [{"$ref": f"#/channels/releasesStream/messages/{name}"} for name in refs],
        "bindings": {"http": {"method": "GET", "query": {"type": "object", "properties": {
            "lastEventId": {"type": "string", "pattern": "^(release-)?[0-9]+(-.*)?$"}}}}},
    }  # fmt: skip
    if broker is not None and "mqtt" in doc.get("servers", {}):
        root = broker.root.rsplit("/", 1)[0] + "/releases"
        doc["channels"]["releasesMqtt"] = {
            "address": root + "/{kind}",
            "title": "Release announcements on MQTT",
            "description": (
                f"{root}/published: each new release (QoS 1); {root}/current: retained, the current release's latest "
                f"announcement (a published or a current one), so a subscriber learns the current release at once. "
                f"Subscribed to {root}/#, a published announcement comes on both topics: deduplicate by id."
            ),
            "servers": [{"$ref": "#/servers/mqtt"}],
            "parameters": {"kind": {"enum": list(KINDS), "description": "published, or current (retained)"}},
            "messages": refs,
        }
        doc["operations"]["receiveReleasesMqtt"] = {
            "action": "receive",
            "title": "Subscribe to release announcements on MQTT",
            "channel": {"$ref": "#/channels/releasesMqtt"},
            "messages": [{"$ref": f"#/channels/releasesMqtt/messages/{name}"} for name in refs],
            "bindings": {"mqtt": {"qos": 1}},
        }
    return doc


__all__ = ["MESSAGES", "add_release_channels", "release_event_schema", "release_schema"]
