"""The layer catalog's paths in the OpenAPI document (OGC API – Records; ogcapi/records_routes.py).

Added to pygeoapi's document by ogcapi/document_additions.py; every schema inline."""

from __future__ import annotations

from typing import Any

from cim.crs import CRS84_URI
from cim.sharing.records_search import DEFAULT_LIMIT, MAX_LIMIT, MAX_Q_CHARS, SORTABLES

TAG = "catalog"
_EXCEPTION = {
    "type": "object",
    "required": ["code"],
    "properties": {"code": {"type": "string"}, "type": {"type": "string"}, "description": {"type": "string"}},
}
_LINK = {"type": "object", "required": ["href"],
         "properties": {"href": {"type": "string"}, "rel": {"type": "string"}, "type": {"type": "string"}, "title": {"type": "string"}}}  # fmt: skip
_RECORD = {
    "type": "object",
    "required": ["id", "type", "time", "geometry", "properties", "links"],
    "properties": {
        "id": {"type": "string", "pattern": "^[a-z][a-z0-9_]*@r[1-9][0-9]*$", "example": "buildings@r3"},
        "type": {"type": "string", "enum": ["Feature"]},
        "conformsTo": {"type": "array", "items": {"type": "string"}},
        "time": {"type": "object", "properties": {"interval": {"type": "array", "minItems": 2, "maxItems": 2, "items": {"type": "string"}}}},
        "geometry": {"type": "object", "nullable": True, "description": "the layer's extent (CRS84) as a Polygon"},
        "properties": {
            "type": "object",
            "required": ["type", "title"],
            "properties": {
                "type": {"type": "string"}, "title": {"type": "string"}, "description": {"type": "string"},
                "keywords": {"type": "array", "items": {"type": "string"}},
                "themes": {"type": "array", "items": {"type": "object"}},
                "formats": {"type": "array", "items": {"type": "object"}},
                "externalIds": {"type": "array", "items": {"type": "object", "properties": {
                    "scheme": {"type": "string"}, "value": {"type": "string"}}}},
                "created": {"type": "string", "format": "date-time"}, "updated": {"type": "string", "format": "date-time"},
                "layer": {"type": "string"}, "release": {"type": "integer"}, "featureCount": {"type": "integer", "nullable": True},
                "crs": {"type": "string"},
                "lineage": {"type": "object", "description": "sources (role, CRS, sha256, cross-check), QA counts, build time and config"},
            },
        },
        "links": {"type": "array", "items": _LINK},
    },
}  # fmt: skip


def _query(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description, "schema": schema, "style": "form", "explode": False}


_F = _query("f", "json (default) or html", {"type": "string", "enum": ["json", "html"]})
_ERRORS = {
    str(status): {"description": text, "content": {"application/json": {"schema": _EXCEPTION}}}
    for status, text in ((400, "a parameter is invalid"), (404, "no such record"), (410, "the record's release was pruned"))
}


def records_paths() -> dict[str, Any]:
    def json(schema: dict[str, Any], media: str = "application/json", html: bool = True) -> dict[str, Any]:
        content = {media: {"schema": schema}}
        if html:  # f=html, or a browser's Accept
            content["text/html"] = {"schema": {"type": "string"}}
        return {"description": "OK", "content": content}

    items_parameters = [
        _query("q", f"search terms, any of them (title, description, keywords, theme, layer, source files); at most {MAX_Q_CHARS} characters", {"type": "string"}),
        _query("bbox", "minx,miny,maxx,maxy (CRS84): records whose extent intersects it", {"type": "array", "items": {"type": "number"}, "minItems": 4, "maxItems": 6}),
        _query("datetime", "an RFC 3339 instant or interval: releases that were the newest then", {"type": "string"}),
        _query("type", "record types (dataset)", {"type": "array", "items": {"type": "string"}}),
        _query("externalIds", "sha256 of a source file (or sha256:HEX): records built from it", {"type": "array", "items": {"type": "string"}}),
        _query("ids", "record ids (layer@rN)", {"type": "array", "items": {"type": "string"}}),
        _query("sortby", f"+/- one of {', '.join(SORTABLES)}", {"type": "array", "items": {"type": "string", "pattern": "^[+-]?(" + "|".join(SORTABLES) + ")$"}}),
        _query("limit", "records per page", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT}),
        _query("offset", "records skipped (the next/prev links carry it)", {"type": "integer", "minimum": 0}),
        _query("crs", "CRS84 only", {"type": "string", "enum": [CRS84_URI]}),
        _query("bbox-crs", "CRS84 only", {"type": "string", "enum": [CRS84_URI]}),
        _F,
    ]  # fmt: skip
    collection = {"type": "object", "required": ["id", "title", "links", "itemType", "type"],
                  "properties": {"id": {"type": "string"}, "title": {"type": "string"}, "itemType": {"type": "string", "enum": ["record"]},
                                 "type": {"type": "string", "enum": ["Collection"]}, "links": {"type": "array", "items": _LINK}}}  # fmt: skip
    records = {"type": "object", "required": ["type", "features"], "properties": {
        "type": {"type": "string", "enum": ["FeatureCollection"]}, "features": {"type": "array", "items": _RECORD},
        "numberMatched": {"type": "integer"}, "numberReturned": {"type": "integer"}, "links": {"type": "array", "items": _LINK}}}  # fmt: skip
    schema = {"type": "object", "properties": {"$schema": {"type": "string"}, "$id": {"type": "string"}, "properties": {"type": "object"}}}
    path = "/collections/catalog"
    return {
        path: {"get": {"tags": [TAG], "summary": "The layer catalog (a records collection)", "operationId": "getCatalog",
                       "parameters": [_F], "responses": {"200": json(collection), "400": _ERRORS["400"]}}},
        f"{path}/items": {"get": {"tags": [TAG], "summary": "Search the records of the layers of every kept release", "operationId": "getCatalogRecords",
                                  "parameters": items_parameters, "responses": {"200": json(records, "application/geo+json"), "400": _ERRORS["400"]}}},
        f"{path}/items/{{recordId}}": {"get": {
            "tags": [TAG], "summary": "A layer's record in one release, with its lineage", "operationId": "getCatalogRecord",
            "parameters": [{"name": "recordId", "in": "path", "required": True, "schema": {"type": "string"}, "example": "buildings@r1"}, _F],
            "responses": {"200": json(_RECORD, "application/geo+json"), **_ERRORS}}},
        f"{path}/queryables": {"get": {"tags": [TAG], "summary": "What the record search reads", "operationId": "getCatalogQueryables",
                                       "responses": {"200": json(schema, "application/schema+json", html=False)}}},
        f"{path}/sortables": {"get": {"tags": [TAG], "summary": "What sortby accepts", "operationId": "getCatalogSortables",
                                      "responses": {"200": json(schema, "application/schema+json", html=False)}}},
    }  # fmt: skip


def add_records_paths(doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` with the catalog's paths."""
    if not isinstance(doc.get("paths"), dict):
        return doc
    doc["paths"].update(records_paths())
    tags = doc.setdefault("tags", [])
    if not any(t.get("name") == TAG for t in tags):
        tags.append({"name": TAG, "description": "OGC API - Records: the layer catalog with lineage (docs/sharing-catalog.md)"})
    return doc
