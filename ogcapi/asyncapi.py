"""``GET /asyncapi``: the AsyncAPI 3.0 document of the push channels (warnings; release announcements:
ogcapi/releases_asyncapi.py), self-contained.

It describes the Server-Sent Events channel (``/warnings/stream``) and, when ``$CIM_MQTT_URL`` is
set, the MQTT channel (``cim/warnings/{severity}/{division}/{kind}``): every message is a
CloudEvents 1.0 structured JSON object whose ``data`` is a feature of the warnings collection (its
schema from layers/catalog/warnings.py). No ``$ref`` leaves the document (the service serves no
document that needs the internet). The landing page links it with rel ``service-desc`` and type
``application/asyncapi+json``, as pygeoapi 0.24 (OGC API - Publish-Subscribe draft) does, and links
the channels themselves with rel ``hub``; the OpenAPI document lists ``/warnings/stream`` and
``/asyncapi``.
"""

from __future__ import annotations

import os
from importlib.metadata import PackageNotFoundError, version
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from cim.catalog import load_catalog
from cim.errors import ConfigError
from cim.store.live import EVENT_KINDS
from cim.warnings.cloudevents import DATA_MEDIA_TYPE, EVENT_TYPES, MEDIA_TYPE
from cim.warnings.mqtt import URL_ENV, parse_url
from cim.warnings.versions import LAYER, SEVERITIES
from ogcapi.openapi_features import JSON_TYPES
from ogcapi.releases_asyncapi import add_release_channels

PATH = "/asyncapi"
MEDIA = "application/asyncapi+json"
STREAM_PATH = "/warnings/stream"
_DESCRIPTIONS = {
    "created": "A warning was issued (CAP msgType Alert): the feature of its first version.",
    "updated": "A warning was updated (CAP msgType Update): the feature of the new version; the one it "
    "replaces now has superseded_by set and valid_until ended.",
    "cancelled": "A warning was cancelled (CAP msgType Cancel): the feature of the cancelling version.",
    "expired": "A version's validity ended at its expiry time (emitted by the server's scheduler at that time).",
}


def _package_version() -> str:
    try:
        return version("cim-basemap")
    except PackageNotFoundError:  # pragma: no cover
        return "0"


def warning_feature_schema() -> dict[str, Any]:
    """JSON Schema of a feature of the warnings collection (GeoJSON, CRS84)."""
    properties: dict[str, Any] = {}
    for spec in load_catalog()[LAYER].fields:
        schema = dict(JSON_TYPES.get(spec.type, {}))
        kinds = schema.get("type", "string")
        schema["type"] = [kinds, "null"] if not spec.required else kinds
        if spec.enum:
            schema["enum"] = [*spec.enum, *([] if spec.required else [None])]
        schema["description"] = spec.description
        properties[spec.name] = schema
    return {
        "type": "object",
        "description": "A version of a warning as /collections/warnings/items/{featureId} serves it",
        "required": ["type", "id", "geometry", "properties"],
        "properties": {
            "type": {"const": "Feature"},
            "id": {"type": "integer", "description": "featureId of this version"},
            "geometry": {
                "type": ["object", "null"],
                "description": "GeoJSON MultiPolygon in CRS84 (lon, lat)",
                "properties": {"type": {"const": "MultiPolygon"}, "coordinates": {"type": "array"}},
            },
            "properties": {"type": "object", "properties": properties},
        },
    }


def cloudevent_schema() -> dict[str, Any]:
    """JSON Schema of the CloudEvents 1.0 structured JSON messages (after the CloudEvents spec)."""
    return {
        "type": "object",
        "description": "CloudEvents 1.0, JSON event format (structured mode)",
        "required": ["specversion", "id", "source", "type", "subject", "time", "datacontenttype", "data"],
        "properties": {
            "specversion": {"const": "1.0"},
            "id": {"type": "string", "description": "the event's sequence number in the store (also the SSE id)"},
            "sequence": {"type": "string", "description": "CloudEvents sequence extension: the same number"},
            "source": {"type": "string", "format": "uri-reference",
                       "description": "<server URL>/collections/warnings (cim:<store> from the CLI)"},
            "type": {"type": "string", "enum": list(EVENT_TYPES.values())},
            "subject": {"type": "string", "description": "featureId of the version the event is about"},
            "time": {"type": "string", "format": "date-time"},
            "datacontenttype": {"const": DATA_MEDIA_TYPE},
            "data": {"$ref": "#/components/schemas/WarningFeature"},
        },
    }  # fmt: skip


def _message(kind: str) -> dict[str, Any]:
    return {
        "name": kind,
        "title": f"Warning {kind}",
        "summary": _DESCRIPTIONS[kind],
        "contentType": MEDIA_TYPE,
        "payload": {
            "allOf": [
                {"$ref": "#/components/schemas/CloudEvent"},
                {"type": "object", "properties": {"type": {"const": EVENT_TYPES[kind]}}},
            ]
        },
    }


def _server(server_url: str) -> dict[str, Any]:
    parts = urlsplit(server_url)
    server: dict[str, Any] = {"host": parts.netloc or "localhost", "protocol": parts.scheme or "http",
                              "description": "This server (Server-Sent Events over HTTP)"}  # fmt: skip
    if parts.path.strip("/"):
        server["pathname"] = "/" + parts.path.strip("/")
    return server


def asyncapi_document(server_url: str, mqtt_url: str | None = None) -> dict[str, Any]:
    """The AsyncAPI 3.0 document; ``mqtt_url`` (default ``$CIM_MQTT_URL``) adds the MQTT channel."""
    if mqtt_url is None:
        mqtt_url = os.environ.get(URL_ENV, "").strip() or None
    messages = {kind: {"$ref": f"#/components/messages/{kind}"} for kind in EVENT_KINDS}
    doc: dict[str, Any] = {
        "asyncapi": "3.0.0",
        "id": f"urn:cim-basemap:warnings:{urlsplit(server_url).netloc or 'local'}",
        "info": {
            "title": "cim-basemap event warnings",
            "version": _package_version(),
            "description": (
                "Public event warnings (公共事件预警) pushed as they are issued, updated, cancelled and as they "
                "expire: each message a CloudEvents 1.0 JSON object whose data is the warning's feature "
                f"(collection {server_url.rstrip('/')}/collections/warnings). Only warnings of CAP status Actual "
                "are pushed. docs/warnings.md."
            ),
        },
        "defaultContentType": MEDIA_TYPE,
        "servers": {"http": _server(server_url)},
        "channels": {
            "warningsStream": {
                "address": STREAM_PATH,
                "title": "Event warnings as Server-Sent Events",
                "description": (
                    "GET with Accept: text/event-stream. Each event: id = the CloudEvent id (sequence), event = "
                    "created|updated|cancelled|expired, data = the CloudEvent JSON. Resume with the Last-Event-ID "
                    "header (or ?lastEventId=). Query parameters: severity (CAP severities, comma separated), "
                    "division (prefix of the GB/T 2260 division code). Keep-alive comments every 15 s."
                ),
                "servers": [{"$ref": "#/servers/http"}],
                "messages": messages,
            }
        },
        "operations": {
            "receiveWarningsStream": {
                "action": "receive",
                "title": "Subscribe to warnings over Server-Sent Events",
                "channel": {"$ref": "#/channels/warningsStream"},
                "messages": [{"$ref": f"#/channels/warningsStream/messages/{k}"} for k in EVENT_KINDS],
                "bindings": {
                    "http": {
                        "method": "GET",
                        "query": {
                            "type": "object",
                            "properties": {
                                "severity": {"type": "string", "description": f"comma-separated: {', '.join(SEVERITIES)}"},
                                "division": {"type": "string", "pattern": "^[0-9]{1,12}$"},
                                "lastEventId": {"type": "string", "pattern": "^[0-9]+$"},
                            },
                        },
                    }
                },
            }
        },
        "components": {
            "schemas": {"CloudEvent": cloudevent_schema(), "WarningFeature": warning_feature_schema()},
            "messages": {kind: _message(kind) for kind in EVENT_KINDS},
        },
    }
    broker = None
    if mqtt_url:
        try:
            broker = parse_url(mqtt_url)
        except ConfigError:
            return add_release_channels(doc, None)
        doc["servers"]["mqtt"] = {
            "host": f"{broker.host}:{broker.port}",
            "protocol": "mqtts" if broker.tls else "mqtt",
            "description": "The MQTT broker the server publishes warnings (QoS 1, not retained) and release announcements to",
        }
        doc["channels"]["warningsMqtt"] = {
            "address": broker.root + "/{severity}/{division}/{kind}",
            "title": "Event warnings on MQTT",
            "description": (
                f"Subscribe to {broker.root}/# for all, or filter with + and #: e.g. {broker.root}/Extreme/#, "
                f"{broker.root}/+/120101/#, {broker.root}/+/+/expired."
            ),
            "servers": [{"$ref": "#/servers/mqtt"}],
            "parameters": {
                "severity": {"enum": list(SEVERITIES), "description": "CAP severity of the warning"},
                "division": {"description": "GB/T 2260 code of the warned division, or none"},
                "kind": {"enum": list(EVENT_KINDS), "description": "What happened"},
            },
            "messages": messages,
        }
        doc["operations"]["receiveWarningsMqtt"] = {
            "action": "receive",
            "title": "Subscribe to warnings on MQTT",
            "channel": {"$ref": "#/channels/warningsMqtt"},
            "messages": [{"$ref": f"#/channels/warningsMqtt/messages/{k}"} for k in EVENT_KINDS],
            "bindings": {"mqtt": {"qos": 1, "retain": False}},
        }
    return add_release_channels(doc, broker)


def landing_links(base: str) -> list[dict[str, Any]]:
    """Links of the landing page: the AsyncAPI document and the push channels."""
    links: list[dict[str, Any]] = [
        {"rel": "service-desc", "type": MEDIA, "title": "The AsyncAPI definition of the warning channels",
         "href": f"{base}{PATH}"},
        {"rel": "hub", "type": "text/event-stream", "title": "Event warnings as Server-Sent Events",
         "href": f"{base}{STREAM_PATH}"},
    ]  # fmt: skip
    mqtt_url = os.environ.get(URL_ENV, "").strip()
    if mqtt_url:
        try:
            broker = parse_url(mqtt_url)
        except ConfigError:
            return links
        links.append({"rel": "hub", "type": "application/json", "title": "Event warnings on MQTT (CloudEvents)",
                      "href": broker.safe, "channel": broker.root})  # fmt: skip
    return links


def push_paths() -> dict[str, Any]:
    """OpenAPI 3.0 paths of ``/warnings/stream`` and ``/asyncapi``."""
    error = {"description": "A parameter is wrong", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/exception"}}}}
    return {
        STREAM_PATH: {
            "get": {
                "tags": ["warnings"],
                "summary": "Event warnings as Server-Sent Events",
                "description": "created, updated, cancelled and expired events, each with the CloudEvent JSON of the "
                "warning's feature; Last-Event-ID resumes. The messages are described in /asyncapi.",
                "operationId": "getWarningsStream",
                "parameters": [
                    {"name": "severity", "in": "query", "required": False, "schema": {"type": "string"},
                     "description": f"CAP severities, comma separated ({', '.join(SEVERITIES)})"},
                    {"name": "division", "in": "query", "required": False,
                     "schema": {"type": "string", "pattern": "^[0-9]{1,12}$"},
                     "description": "Prefix of the GB/T 2260 division code"},
                    {"name": "lastEventId", "in": "query", "required": False,
                     "schema": {"type": "integer", "minimum": 0}, "description": "Resume after this event id"},
                    {"name": "Last-Event-ID", "in": "header", "required": False,
                     "schema": {"type": "integer", "minimum": 0}, "description": "Resume after this event id"},
                ],  # fmt: skip
                "responses": {
                    "200": {"description": "The event stream", "content": {"text/event-stream": {"schema": {"type": "string"}}}},
                    "400": error,
                    "503": {"description": "Too many subscribers; retry after Retry-After seconds",
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/exception"}}}},
                },
            }
        },
        PATH: {
            "get": {
                "tags": ["warnings"],
                "summary": "The AsyncAPI 3.0 document of the warning channels (SSE, MQTT)",
                "operationId": "getAsyncAPI",
                "responses": {"200": {"description": "AsyncAPI 3.0", "content": {MEDIA: {"schema": {"type": "object"}}}}},
            }
        },
    }


def add_push_paths(doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` (the OpenAPI document) with :func:`push_paths` and the exception schema they use."""
    if not isinstance(doc.get("paths"), dict):
        return doc
    doc["paths"].update(push_paths())
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    if "exception" not in schemas:
        from ogcapi.openapi_local import COMPONENTS

        schemas["exception"] = COMPONENTS[("schemas", "exception")]
    tags = doc.setdefault("tags", [])
    if not any(t.get("name") == "warnings" for t in tags):
        tags.append({"name": "warnings", "description": "Event warnings: push channels"})
    return doc


def asyncapi_routes(server_url: str) -> list[Route]:
    async def asyncapi(request: Request) -> JSONResponse:
        return JSONResponse(asyncapi_document(server_url), media_type=MEDIA)

    return [Route(PATH, asyncapi, methods=["GET"], name="asyncapi")]
