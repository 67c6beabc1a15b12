"""The OpenAPI document, self-contained: every ``$ref`` points into the document itself.

pygeoapi's document refers to the OGC's published OpenAPI fragments on schemas.opengis.net (the
Features Part 1 responses and ``featureId`` parameter, the Tiles ``link`` schema, the Processes
exception schema). A client, a validator or a fuzzer without internet access cannot resolve those,
and a change on that site would change our API's description. :func:`self_contained` replaces each
such reference by a local one (``#/components/...``) and adds the definition here, written after
the OGC's fragments (OGC API - Features - Part 1, 1.0, and the OGC API exception document).
"""

from __future__ import annotations

import copy
from typing import Any

_EXCEPTION = {
    "type": "object",
    "description": "OGC API exception (code, type, description)",
    "required": ["code"],
    "properties": {"code": {"type": "string"}, "type": {"type": "string"}, "description": {"type": "string"}},
}
_LINK = {
    "type": "object",
    "required": ["href"],
    "properties": {
        "href": {"type": "string"}, "rel": {"type": "string"}, "type": {"type": "string"},
        "hreflang": {"type": "string"}, "title": {"type": "string"}, "length": {"type": "integer"},
        "templated": {"type": "boolean"},
    },
}  # fmt: skip
_FEATURE = {
    "type": "object",
    "required": ["type", "geometry", "properties"],
    "properties": {
        "type": {"type": "string", "enum": ["Feature"]},
        "geometry": {"type": "object", "nullable": True},
        "properties": {"type": "object", "nullable": True},
        "id": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
        "links": {"type": "array", "items": {"$ref": "#/components/schemas/link"}},
    },
}
_FEATURE_COLLECTION = {
    "type": "object",
    "required": ["type", "features"],
    "properties": {
        "type": {"type": "string", "enum": ["FeatureCollection"]},
        "features": {"type": "array", "items": {"$ref": "#/components/schemas/featureGeoJSON"}},
        "links": {"type": "array", "items": {"$ref": "#/components/schemas/link"}},
        "timeStamp": {"type": "string", "format": "date-time"},
        "numberMatched": {"type": "integer", "minimum": 0},
        "numberReturned": {"type": "integer", "minimum": 0},
    },
}
_HTML = {"text/html": {"schema": {"type": "string"}}}
#: the other encodings pygeoapi offers (``f=html``, ``f=jsonld``)
_OTHER = {**_HTML, "application/ld+json": {"schema": {"type": "object"}}}


def _json(schema: dict[str, Any], media_type: str = "application/json") -> dict[str, Any]:
    return {media_type: {"schema": schema}}


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        # pygeoapi labels an error in the encoding asked for (f=jsonld: application/ld+json)
        "content": {**_json({"$ref": "#/components/schemas/exception"}), **_HTML,
                    "application/ld+json": {"schema": {"$ref": "#/components/schemas/exception"}}},
    }


#: the local definitions, by (component kind, name)
COMPONENTS: dict[tuple[str, str], dict[str, Any]] = {
    ("schemas", "exception"): _EXCEPTION,
    ("schemas", "link"): _LINK,
    ("schemas", "featureGeoJSON"): _FEATURE,
    ("schemas", "featureCollectionGeoJSON"): _FEATURE_COLLECTION,
    ("parameters", "featureId"): {
        "name": "featureId", "in": "path", "required": True, "description": "local identifier of a feature",
        "schema": {"type": "string"},
    },
    ("responses", "LandingPage"): {
        "description": "The document (landing page, conformance declaration, collections)",
        "content": {**_json({"type": "object"}), **_OTHER},
    },
    ("responses", "ConformanceDeclaration"): {
        "description": "The conformance classes the server implements",
        "content": {**_json({"type": "object", "required": ["conformsTo"]}), **_OTHER},
    },
    ("responses", "Collections"): {"description": "The feature collections", "content": {**_json({"type": "object"}), **_OTHER}},
    ("responses", "Collection"): {
        "description": "Information about the feature collection", "content": {**_json({"type": "object"}), **_OTHER},
    },
    ("responses", "Features"): {
        "description": "The features of the collection that match the request",
        "content": {**_json({"$ref": "#/components/schemas/featureCollectionGeoJSON"}, "application/geo+json"), **_OTHER},
    },
    ("responses", "Feature"): {
        "description": "The feature",
        "content": {**_json({"$ref": "#/components/schemas/featureGeoJSON"}, "application/geo+json"), **_OTHER},
    },
    ("responses", "InvalidParameter"): _error("A query parameter has an invalid value"),
    ("responses", "NotFound"): _error("The requested resource does not exist on the server"),
    ("responses", "ServerError"): _error("A server error occurred (the description names a request id)"),
}  # fmt: skip
_IMPACT_RESPONSE = {
    "description": "What lies inside the area: totals, by administrative division, POIs by category, road length by "
                   "class; with lists, GeoJSON FeatureCollections of the features inside (docs/warnings/impact.md)",
    "content": {**_json({"type": "object", "required": ["totals", "by_division", "pois_by_category", "roads_by_class"]}), **_HTML},
}
_IMPACT_PARAMETERS = [
    {"name": "lists", "in": "query", "required": False, "style": "form", "explode": False,
     "description": "Add the features inside as GeoJSON (CRS84): any of buildings, pois, parcels, roads",
     "schema": {"type": "array", "items": {"type": "string", "enum": ["buildings", "pois", "parcels", "roads"]}}},
    {"name": "f", "in": "query", "required": False, "schema": {"type": "string", "enum": ["json", "html"], "default": "json"}},
]
_IMPACT_ERRORS = {"400": _error("A bad polygon or parameter"), "500": _error("A server error occurred (the description names a request id)")}


def impact_paths(warnings: bool = True) -> dict[str, Any]:
    """The OpenAPI paths of ogcapi/impact_routes.py (the warning's only when the warnings collection exists)."""
    paths: dict[str, Any] = {
        "/impact": {"post": {
            "summary": "Impact of a polygon", "operationId": "impact", "tags": ["impact"],
            "description": "Buildings, floor area, estimated people, POIs, parcels and roads inside a GeoJSON Polygon or MultiPolygon (CRS84)",
            "parameters": copy.deepcopy(_IMPACT_PARAMETERS),
            "requestBody": {"required": True, "content": {media: {"schema": {"type": "object"}} for media in ("application/geo+json", "application/json")}},
            "responses": {"200": copy.deepcopy(_IMPACT_RESPONSE), **copy.deepcopy(_IMPACT_ERRORS),
                          "413": _error("The body is too large"), "415": _error("The body is not sent as JSON")},
        }},
    }
    if warnings:
        paths["/collections/warnings/items/{featureId}/impact"] = {"get": {
            "summary": "Impact of a warning", "operationId": "warningImpact", "tags": ["impact"],
            "description": "What lies inside the warning's area (same answer as POST /impact, plus the warning's summary)",
            "parameters": [copy.deepcopy(COMPONENTS[("parameters", "featureId")]), *copy.deepcopy(_IMPACT_PARAMETERS)],
            "responses": {"200": copy.deepcopy(_IMPACT_RESPONSE), **copy.deepcopy(_IMPACT_ERRORS),
                          "404": _error("No such warning")},
        }}
    return paths


#: whole-file references (no fragment): the component each stands for
_FILES = {"exception.yaml": ("schemas", "exception"), "link.yaml": ("schemas", "link")}


def _local(ref: str) -> tuple[str, str] | None:
    """The (kind, name) a reference to an external document stands for, if we define it."""
    document, _, fragment = ref.partition("#")
    parts = fragment.strip("/").split("/")
    if len(parts) == 3 and parts[0] == "components" and (parts[1], parts[2]) in COMPONENTS:
        return parts[1], parts[2]
    return _FILES.get(document.rsplit("/", 1)[-1]) if not fragment else None


def self_contained(oas: dict[str, Any]) -> dict[str, Any]:
    """``oas`` with external references replaced by local ones (definitions added under
    ``components``). A reference we have no definition for is replaced by an unconstrained one:
    a schema ``{}``, a response ``{"description": ...}``; never left pointing outside."""
    oas = copy.deepcopy(oas)
    needed: set[tuple[str, str]] = set()

    def walk(node: Any, kind: str | None) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and not ref.startswith("#"):
                target = _local(ref)
                if target is not None:
                    needed.add(target)
                    return {"$ref": f"#/components/{target[0]}/{target[1]}"}
                return {"description": f"see {ref}"} if kind == "responses" else {}
            return {k: walk(v, "responses" if k == "responses" else kind) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(item, kind) for item in node]
        return node

    oas = walk(oas, None)
    # definitions refer to others (a feature to the link schema): add until closed
    pending = set(needed)
    components = oas.setdefault("components", {})
    while pending:
        kind, name = pending.pop()
        definition = copy.deepcopy(COMPONENTS[(kind, name)])
        components.setdefault(kind, {}).setdefault(name, definition)
        for inner in _local_refs(definition):
            if inner in COMPONENTS and inner not in needed:
                needed.add(inner)
                pending.add(inner)
    return oas


def _local_refs(node: Any) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            ref = item.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/components/"):
                _, _, kind, name = ref.split("/", 3)
                found.append((kind, name))
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found
