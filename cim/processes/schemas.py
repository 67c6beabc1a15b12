"""JSON Schemas the process descriptions share (inline: no external ``$ref``, so a description is
usable offline). Geometry follows GeoJSON (RFC 7946); ``format`` values follow OGC API – Processes
(``geojson-geometry``, ``ogc-bbox``)."""

from __future__ import annotations

from typing import Any

_POSITION: dict[str, Any] = {"type": "array", "minItems": 2, "maxItems": 3, "items": {"type": "number"}}
_RING: dict[str, Any] = {"type": "array", "minItems": 4, "items": _POSITION}

POINT: dict[str, Any] = {
    "type": "object",
    "format": "geojson-geometry",
    "required": ["type", "coordinates"],
    "properties": {"type": {"const": "Point"}, "coordinates": _POSITION},
}
POLYGON: dict[str, Any] = {
    "type": "object",
    "required": ["type", "coordinates"],
    "properties": {"type": {"const": "Polygon"}, "coordinates": {"type": "array", "minItems": 1, "items": _RING}},
}
MULTIPOLYGON: dict[str, Any] = {
    "type": "object",
    "required": ["type", "coordinates"],
    "properties": {
        "type": {"const": "MultiPolygon"},
        "coordinates": {"type": "array", "minItems": 1, "items": {"type": "array", "minItems": 1, "items": _RING}},
    },
}
#: a Polygon or MultiPolygon (GeoJSON geometry)
AREA: dict[str, Any] = {"format": "geojson-geometry", "oneOf": [POLYGON, MULTIPOLYGON]}
#: any GeoJSON geometry but collections (measure)
GEOMETRY: dict[str, Any] = {
    "type": "object",
    "format": "geojson-geometry",
    "required": ["type", "coordinates"],
    "properties": {
        "type": {"enum": ["Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon"]},
        "coordinates": {"type": "array"},
    },
}
#: the CRS of geometry inputs (x/y order), an OGC CRS URI; default CRS84 (lon/lat)
CRS: dict[str, Any] = {"type": "string", "format": "uri", "default": "http://www.opengis.net/def/crs/OGC/1.3/CRS84"}
#: a release number of the store
RELEASE: dict[str, Any] = {"type": "integer", "minimum": 1}
#: a GeoJSON FeatureCollection (outputs), lon/lat
FEATURE_COLLECTION: dict[str, Any] = {
    "type": "object",
    "contentMediaType": "application/geo+json",
    "required": ["type", "features"],
    "properties": {"type": {"const": "FeatureCollection"}, "features": {"type": "array"}},
}


def input_description(title: str, description: str, schema: dict[str, Any], optional: bool = False) -> dict[str, Any]:
    """One ``inputDescription`` (minOccurs 0 when optional)."""
    return {"title": title, "description": description, "schema": schema, "minOccurs": 0 if optional else 1, "maxOccurs": 1}


def output_description(title: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"title": title, "description": description, "schema": schema}


#: the optional ``crs`` input of every process that takes a geometry
CRS_INPUT: dict[str, Any] = input_description(
    "CRS", "The CRS of the geometry input (an OGC CRS URI; x/y order), default CRS84 (lon/lat)", CRS, optional=True
)
