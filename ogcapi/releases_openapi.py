"""The releases' paths in the OpenAPI document: ``/releases``, ``/releases/{n}`` (ogcapi/releases_routes.py)
and ``/releases/stream`` (ogcapi/releases_stream.py). Added by ogcapi/document_additions.py, self-contained."""

from __future__ import annotations

from typing import Any

from ogcapi.releases_asyncapi import release_schema
from ogcapi.releases_routes import STREAM_PATH

TAG = "releases"


def _exception(description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/exception"}}}}  # fmt: skip


def _f(values: list[str]) -> dict[str, Any]:
    return {"name": "f", "in": "query", "required": False, "schema": {"type": "string", "enum": values},
            "description": "The format of the response"}  # fmt: skip


def openapi30(node: Any) -> Any:
    """A JSON Schema as OpenAPI 3.0 writes it: ``type: [X, "null"]`` becomes ``type: X, nullable: true``."""
    if isinstance(node, list):
        return [openapi30(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: openapi30(value) for key, value in node.items()}
    kinds = out.get("type")
    if isinstance(kinds, list):
        others = [k for k in kinds if k != "null"]
        out["type"] = others[0] if len(others) == 1 else "string"
        if "null" in kinds:
            out["nullable"] = True
    return out


def releases_paths() -> dict[str, Any]:
    release = openapi30(release_schema())
    resume = {"type": "string", "pattern": "^(release-)?[0-9]+(-.*)?$"}
    return {
        "/releases": {"get": {
            "tags": [TAG], "summary": "The kept releases of the base map",
            "description": "Each release: number, created, current, the release before, layers with feature counts, the "
                           "checksums count and links to its catalog records, change feeds and downloads.",
            "operationId": "getReleases", "parameters": [_f(["json"])],
            "responses": {
                "200": {"description": "The releases, oldest first", "content": {"application/json": {"schema": {
                    "type": "object", "required": ["releases"], "properties": {
                        "releases": {"type": "array", "items": release}, "current": {"type": "integer", "nullable": True},
                        "numberReturned": {"type": "integer"}, "links": {"type": "array", "items": {"type": "object"}}}}}}},
                "400": _exception("A parameter is wrong"),
            },
        }},
        "/releases/{releaseNumber}": {"get": {
            "tags": [TAG], "summary": "One release of the base map", "operationId": "getRelease",
            "parameters": [{"name": "releaseNumber", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 0}},
                           _f(["json"])],
            "responses": {
                "200": {"description": "The release", "content": {"application/json": {"schema": release}}},
                "400": _exception("Not a release number, or a wrong parameter"),
                "404": _exception("No such release was ever published"),
                "410": _exception("The release was pruned; the description names the releases kept"),
            },
        }},
        STREAM_PATH: {"get": {
            "tags": [TAG], "summary": "Release announcements as Server-Sent Events",
            "description": "published and current events, each with the CloudEvent JSON of the release; Last-Event-ID "
                           "(an announcement id or a release number) resumes. The messages are described in /asyncapi.",
            "operationId": "getReleasesStream",
            "parameters": [
                {"name": "lastEventId", "in": "query", "required": False, "schema": resume,
                 "description": "Resume after this announcement (or release number)"},
                {"name": "Last-Event-ID", "in": "header", "required": False, "schema": resume,
                 "description": "Resume after this announcement (or release number)"},
                _f(["text/event-stream", "sse"]),
            ],
            "responses": {
                "200": {"description": "The event stream", "content": {"text/event-stream": {"schema": {"type": "string"}}}},
                "400": _exception("A parameter is wrong"),
                "503": _exception("Too many subscribers; retry after Retry-After seconds"),
            },
        }},
    }  # fmt: skip


def add_releases_paths(doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` (the OpenAPI document) with :func:`releases_paths` and the exception schema they use."""
    if not isinstance(doc.get("paths"), dict):
        return doc
    doc["paths"].update(releases_paths())
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    if "exception" not in schemas:
        from ogcapi.openapi_local import COMPONENTS

        schemas["exception"] = COMPONENTS[("schemas", "exception")]
    tags = doc.setdefault("tags", [])
    if not any(t.get("name") == TAG for t in tags):
        tags.append({"name": TAG, "description": "Releases of the base map and their announcements"})
    return doc


def landing_links(base: str) -> list[dict[str, Any]]:
    return [
        {"rel": "version-history", "type": "application/json", "title": "Releases of the base map", "href": f"{base}/releases"},
        {"rel": "hub", "type": "text/event-stream", "title": "Release announcements as Server-Sent Events",
         "href": f"{base}{STREAM_PATH}"},
    ]  # fmt: skip


__all__ = ["add_releases_paths", "landing_links", "releases_paths"]
