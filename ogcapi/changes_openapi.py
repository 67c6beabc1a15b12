"""The change feed's path in the OpenAPI document: ``GET /collections/{collectionId}/changes``
(ogcapi/changes_routes.py). Added by ogcapi/document_additions.py; inline schemas only."""

from __future__ import annotations

from typing import Any

from cim.sharing.changes import DEFAULT_LIMIT, MAX_LIMIT, MAX_RELEASE

TAG = "changes"
_EXCEPTION = {
    "type": "object", "required": ["code"],
    "properties": {"code": {"type": "string"}, "type": {"type": "string"}, "description": {"type": "string"}},
}  # fmt: skip


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": dict(_EXCEPTION)}}}


def _release(name: str, description: str, required: bool) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "description": description,
            "schema": {"type": "integer", "minimum": 1, "maximum": MAX_RELEASE}}  # fmt: skip


def changes_paths() -> dict[str, Any]:
    change = {
        "type": "object", "required": ["type", "fields", "from", "to"],
        "properties": {
            "type": {"type": "string", "enum": ["added", "removed", "changed"]},
            "fields": {"type": "array", "items": {"type": "string"},
                       "description": "the changed fields, 'geometry' when it moved (changed features only)"},
            "from": {"type": "integer", "nullable": True, "description": "the feature's id in release `from` (null: added)"},
            "to": {"type": "integer", "nullable": True, "description": "the feature's id in release `to` (null: removed)"},
        },
    }  # fmt: skip
    feature = {
        "type": "object", "required": ["type", "id", "geometry", "properties", "change"],
        "properties": {"type": {"type": "string", "enum": ["Feature"]}, "id": {"type": "integer"},
                       "geometry": {"type": "object", "nullable": True}, "properties": {"type": "object"}, "change": change},
    }  # fmt: skip
    collection = {
        "type": "object", "required": ["type", "from", "to", "numberReturned", "features", "links"],
        "properties": {
            "type": {"type": "string", "enum": ["FeatureCollection"]},
            "from": {"type": "integer"}, "to": {"type": "integer"},
            "numberMatched": {"type": "integer", "minimum": 0}, "numberReturned": {"type": "integer", "minimum": 0},
            "features": {"type": "array", "items": feature},
            "links": {"type": "array", "items": {"type": "object", "required": ["href", "rel"],
                      "properties": {"href": {"type": "string"}, "rel": {"type": "string"}, "type": {"type": "string"},
                                     "title": {"type": "string"}}}},
        },
    }  # fmt: skip
    parameters = [
        {"name": "collectionId", "in": "path", "required": True, "schema": {"type": "string"},
         "description": "a vector collection of the releases (not a raster or live one)"},
        _release("from", "the release the changes start from (as published)", True),
        _release("to", "the release the changes lead to; default and when it is the current release: the current"
                 " release as served, with its API edits (Features Part 4)", False),
        {"name": "limit", "in": "query", "required": False, "description": "changes per page",
         "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT}},
        {"name": "cursor", "in": "query", "required": False, "schema": {"type": "string"},
         "description": "where the page starts: take it from the previous page's next link, as it is"},
        {"name": "crs", "in": "query", "required": False, "schema": {"type": "string", "format": "uri"},
         "description": "the CRS of the geometries, one of the collection's (default CRS84)"},
        {"name": "f", "in": "query", "required": False, "schema": {"type": "string", "enum": ["json"]}},
    ]  # fmt: skip
    return {
        "/collections/{collectionId}/changes": {
            "get": {
                "tags": [TAG],
                "summary": "Features added, removed and changed between two releases",
                "description": (
                    "The change feed of a collection: every feature added, removed or changed (with which fields) from"
                    " release `from` to release `to`, identified across releases by (source, source_id), as GeoJSON"
                    " with a `change` member per feature, paged by cursor (the `next` link). A department holding"
                    " release `from` reaches `to` by applying it. docs/sharing.md."
                ),
                "operationId": "getCollectionChanges",
                "parameters": parameters,
                "responses": {
                    "200": {"description": "a page of the change feed",
                            "headers": {"Content-Crs": {"schema": {"type": "string"}}},
                            "content": {"application/geo+json": {"schema": collection}}},
                    "400": _error("a bad parameter: not a release number, from after to, a bad or foreign cursor, limit"
                                  " out of range, an unknown crs, a raster or live collection"),
                    "401": _error("a restricted collection and no valid bearer token"),
                    "403": _error("the token lacks the collection's role"),
                    "404": _error("no such collection, or no such release (the message names those kept)"),
                    "410": _error("the release was pruned (the message names those kept)"),
                },
            }
        }
    }  # fmt: skip


def add_changes_paths(doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` with the change feed's path and tag."""
    if not isinstance(doc.get("paths"), dict):
        return doc
    doc["paths"].update(changes_paths())
    tags = doc.setdefault("tags", [])
    if not any(t.get("name") == TAG for t in tags):
        tags.append({"name": TAG, "description": "Change feeds between releases (data sharing: docs/sharing.md)"})
    return doc


__all__ = ["add_changes_paths", "changes_paths"]
