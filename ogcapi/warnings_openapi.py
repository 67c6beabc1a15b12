"""The warnings' paths in the OpenAPI document: ``POST /warnings`` (ogcapi/warnings_routes.py).

Added to pygeoapi's document by ogcapi/document_additions.py, self-contained (no external ``$ref``)."""

from __future__ import annotations

from typing import Any

from ogcapi.openapi_local import impact_paths

TAG = "warnings"


def _exception(description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/exception"}}}}  # fmt: skip


def warnings_paths() -> dict[str, Any]:
    geojson_feature = {"type": "object", "required": ["type", "geometry", "properties"],
                       "properties": {"type": {"type": "string", "enum": ["Feature"]}, "geometry": {"type": "object"},
                                      "properties": {"type": "object"}}}  # fmt: skip
    stored = {"description": "the version as stored (a feature of /collections/warnings/items, CRS84)",
              "headers": {"Location": {"schema": {"type": "string"}, "description": "the feature's URL"}},
              "content": {"application/geo+json": {"schema": geojson_feature}}}  # fmt: skip
    return {
        "/warnings": {
            "post": {
                "tags": [TAG],
                "summary": "Publish a warning (CAP 1.2 alert or GeoJSON warning)",
                "description": (
                    "A CAP 1.2 alert (GB/T 35965.1 profile accepted) or a GeoJSON warning, stored as a version of the"
                    " live `warnings` collection; Update and Cancel supersede the versions they reference. Needs a"
                    " bearer token with the warning-publisher role. docs/warnings.md."
                ),
                "operationId": "publishWarning",
                "security": [{"bearerAuth": []}],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/cap+xml": {"schema": {"type": "string"}},
                        "application/xml": {"schema": {"type": "string"}},
                        "text/xml": {"schema": {"type": "string"}},
                        "application/geo+json": {"schema": geojson_feature},
                        "application/json": {"schema": geojson_feature},
                    },
                },
                "responses": {
                    "201": stored,
                    "200": {**stored, "description": "the same alert was stored before: that version"},
                    "400": _exception("not a valid warning: the message names what is wrong"),
                    "401": _exception("no valid bearer token"),
                    "403": _exception("the token lacks the warning-publisher role"),
                    "409": _exception("the identifier is stored with other content, or a reference is unknown"),
                    "413": _exception("the document is larger than the limit"),
                    "415": _exception("not sent as CAP XML or GeoJSON"),
                },
            }
        }
    }


def add_warnings_paths(doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` with the warnings' paths, the impact paths (and the bearer scheme they use)."""
    if not isinstance(doc.get("paths"), dict):
        return doc
    doc["paths"].update(warnings_paths())
    doc["paths"].update(impact_paths())  # the warning's impact and POST /impact (ogcapi/impact_routes.py)
    components = doc.setdefault("components", {})
    components.setdefault("securitySchemes", {}).setdefault("bearerAuth", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"})
    tags = doc.setdefault("tags", [])
    if not any(t.get("name") == TAG for t in tags):
        tags.append({"name": TAG, "description": "Event warnings (CAP 1.2): publish; the collection is /collections/warnings"})
    return doc
