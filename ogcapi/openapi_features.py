"""What the OpenAPI document says about items beyond pygeoapi's defaults, and the feature JSON Schema.

pygeoapi lists neither ``datetime`` nor the Part 3 filter parameters nor the queryables as query
parameters, and it describes a CQL2 query by POST that this server does not offer. Here, per
collection: ``datetime``, ``filter``, ``filter-lang``, ``filter-crs``, ``cursor`` and one parameter
per queryable (Features Part 3 /conf/queryables-query-parameters) on GET; on editable collections
the Part 4 operations (POST, PUT, PATCH, DELETE) with the feature schema as request body and bearer
(JWT) security. The result refers to nothing outside itself (:mod:`ogcapi.openapi_local`).

The feature schema (``/collections/{id}/feature-schema``, linked from the collection with rel
``describedBy``) is a JSON Schema of a GeoJSON feature of the layer. GDAL's OAPIF driver reads it to
type the fields, which it needs to turn ``-where`` into a server-side CQL2 filter.
"""

from __future__ import annotations

import copy
from typing import Any

from cim.store import LayerInfo
from ogcapi.openapi_local import self_contained

JSON_TYPES = {
    "string": {"type": "string"},
    "integer": {"type": "integer"},
    "number": {"type": "number"},
    "boolean": {"type": "boolean"},
    "date": {"type": "string", "format": "date"},
    "datetime": {"type": "string", "format": "date-time"},
}
#: ``cql-text`` is the pre-standard name GDAL 3.6's OAPIF driver looks for; it is read as cql2-text
FILTER_LANGS = ["cql2-text", "cql2-json", "cql-text"]
FEATURE_SCHEMA_PATH = "/collections/{id}/feature-schema"

_ITEMS_PARAMETERS: list[dict[str, Any]] = [
    {"name": "datetime", "in": "query", "required": False, "style": "form", "explode": False,
     "description": "Instant or interval (start/end, '..' for an open end), RFC 3339; filters on the layer's "
                    "temporal property when it has one", "schema": {"type": "string"}},
    {"name": "filter", "in": "query", "required": False, "description": "CQL2 filter (text or JSON)",
     "schema": {"type": "string"}},
    {"name": "filter-lang", "in": "query", "required": False, "description": "Language of the filter",
     "schema": {"type": "string", "enum": FILTER_LANGS, "default": "cql2-text"}},
    {"name": "filter-crs", "in": "query", "required": False, "description": "CRS of the filter's geometries",
     "schema": {"type": "string", "format": "uri", "default": "http://www.opengis.net/def/crs/OGC/1.3/CRS84"}},
    {"name": "cursor", "in": "query", "required": False,
     "description": "Opaque position of a page, from a next link (keyset paging)", "schema": {"type": "string"}},
]  # fmt: skip

#: OGC API - Features Part 5 / Records ``sortby``, defined here instead of pygeoapi's reference to a
#: file on a branch of a GitHub repository (which a client may not reach)
SORTBY_REF = "#/components/parameters/sortby"
_SORTBY: dict[str, Any] = {
    "name": "sortby", "in": "query", "required": False, "style": "form", "explode": False,
    "description": "Properties to sort by, comma-separated, each with an optional + (ascending, default) or - "
                   "(descending) prefix; missing values sort last",
    "schema": {"type": "array", "minItems": 1, "items": {"type": "string", "pattern": "^[+-]?[A-Za-z_][A-Za-z0-9_]*$"}},
}  # fmt: skip


#: a queryables or schema document: a JSON Schema of an object with its properties
_JSON_SCHEMA_DOCUMENT: dict[str, Any] = {
    "type": "object", "required": ["type", "properties"],
    "properties": {"type": {"type": "string", "enum": ["object"]}, "properties": {"type": "object"}},
}  # fmt: skip


def feature_schema(info: LayerInfo, server_url: str) -> dict[str, Any]:
    """JSON Schema of one GeoJSON feature of the layer (properties typed, required ones listed)."""
    properties = {
        f.name: {**JSON_TYPES[f.type], "title": f.name, "description": f.description}
        | ({"enum": list(f.enum)} if f.enum else {})
        for f in info.fields
    }
    geometry_types = [info.spec.geometry_type] if info.spec.geometry_type else []
    if info.spec.geometry_type and info.spec.geometry_type.startswith("Multi"):
        geometry_types.append(info.spec.geometry_type[5:])  # single parts are accepted and promoted
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"{server_url.rstrip('/')}{FEATURE_SCHEMA_PATH.format(id=info.name)}",
        "title": info.spec.title,
        "type": "object",
        "required": ["type", "geometry", "properties"],
        "properties": {
            "type": {"type": "string", "enum": ["Feature"]},
            "id": {"type": "integer", "readOnly": True},
            "geometry": {
                "type": "object",
                "required": ["type", "coordinates"],
                "properties": {"type": {"type": "string", "enum": geometry_types}, "coordinates": {"type": "array"}},
            },
            "properties": {
                "type": "object",
                "properties": properties,
                "required": [f.name for f in info.fields if f.required],
                "additionalProperties": False,
            },
        },
    }


def extend_openapi(oas: dict[str, Any], layers: list[LayerInfo], server_url: str) -> dict[str, Any]:
    """``oas`` (pygeoapi's document) with the parameters and operations described above."""
    oas = copy.deepcopy(oas)
    paths = oas.get("paths", {})
    for info in layers:
        items = paths.get(f"/collections/{info.name}/items")
        if items is None or "get" not in items:
            continue
        ours = copy.deepcopy(_ITEMS_PARAMETERS) + [
            {"name": f.name, "in": "query", "required": False, "style": "form", "explode": False,
             "description": f"Features whose {f.name} equals this value", "schema": dict(JSON_TYPES[f.type])}
            for f in info.fields
        ]  # fmt: skip
        # ours replace pygeoapi's of the same name (it lists the properties too): OpenAPI 3.0 allows
        # a parameter once per name and location
        named = {p["name"] for p in ours}
        items["get"]["parameters"] = [
            {"$ref": SORTBY_REF} if p.get("$ref", "").endswith("/sortby.yaml") else p
            for p in items["get"].get("parameters", [])
            if p.get("name") not in named and not p.get("$ref", "").endswith("/parameters/datetime")
        ] + ours  # (pygeoapi's datetime is a reference into the Features Part 1 document: ours replaces it)
        items.pop("post", None)  # pygeoapi's CQL2-by-POST: not offered
        item = paths.get(f"/collections/{info.name}/items/{{featureId}}", {})
        for method in ("put", "patch", "delete"):
            item.pop(method, None)
        if info.spec.editable:
            schema = {k: v for k, v in feature_schema(info, server_url).items() if k not in ("$schema", "$id")}
            oas.setdefault("components", {}).setdefault("schemas", {})[_feature_schema_name(info)] = schema
            _add_writes(items, item, info)
    oas.setdefault("components", {}).setdefault("parameters", {})["sortby"] = copy.deepcopy(_SORTBY)
    if "Queryables" in oas["components"].get("responses", {}):
        # queryables and schema are JSON Schema documents (Features Part 3), served as
        # application/schema+json; pygeoapi's description is an older draft's {"queryables": [...]}
        oas["components"]["responses"]["Queryables"]["content"] = {
            **{media: {"schema": copy.deepcopy(_JSON_SCHEMA_DOCUMENT)} for media in ("application/schema+json", "application/json")},
            "text/html": {"schema": {"type": "string"}},
        }
    if any(info.spec.editable for info in layers):
        schemes = oas.setdefault("components", {}).setdefault("securitySchemes", {})
        schemes["bearerAuth"] = {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    return self_contained(oas)


def _feature_schema_name(info: LayerInfo) -> str:
    """The components/schemas entry of a layer's feature schema (the document's copy of
    ``/collections/{id}/feature-schema``: the document refers to nothing outside itself)."""
    return f"{info.name}_feature"


def _add_writes(items: dict[str, Any], item: dict[str, Any], info: LayerInfo) -> None:
    body = {
        "required": True,
        "content": {"application/geo+json": {"schema": {"$ref": f"#/components/schemas/{_feature_schema_name(info)}"}}},
    }
    security = [{"bearerAuth": []}]
    errors = {
        "400": {"description": "Not a valid feature of this collection (the description says why)"},
        "401": {"description": "Missing or invalid bearer token"},
        "403": {"description": "The token lacks the editor role"},
    }
    fid = {"name": "featureId", "in": "path", "required": True, "schema": {"type": "integer"}}
    tag = [info.name]
    items["post"] = {
        "summary": f"Add a feature to {info.spec.title}", "tags": tag, "operationId": f"create{info.name.capitalize()}",
        "security": security, "requestBody": body,
        "responses": {"201": {"description": "Created; Location names the new feature"}, **errors},
    }  # fmt: skip
    for method, summary, status in (
        ("put", "Replace", "204"), ("patch", "Update (merge properties, replace geometry if given)", "204"),
        ("delete", "Delete", "204"),
    ):  # fmt: skip
        operation: dict[str, Any] = {
            "summary": f"{summary} a feature of {info.spec.title}", "tags": tag, "parameters": [fid],
            "operationId": f"{method}{info.name.capitalize()}", "security": security,
            "responses": {status: {"description": "Done"}, "404": {"description": "No such feature"}, **errors},
        }  # fmt: skip
        if method != "delete":
            operation["requestBody"] = body
        item[method] = operation
