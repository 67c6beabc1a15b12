"""JSON documents describing tiles: OGC API - Tiles tileset lists and tileset metadata, the
TileMatrixSet list, and TileJSON 3.0 for MapLibre. ``base`` is the public URL of the service."""

from __future__ import annotations

from typing import Any

from morecantile import TileMatrixSet

from cim.crs import CRS84_URI
from cim.store import LayerInfo
from cim.tms import WEB_MERCATOR, crs_uri, limits, tile_matrix_sets
from tiles.tilesets import Tileset

MVT = "application/vnd.mapbox-vector-tile"
JSON = "application/json"
REL_TILING_SCHEME = "http://www.opengis.net/def/rel/ogc/1.0/tiling-scheme"
REL_GEODATA = "http://www.opengis.net/def/rel/ogc/1.0/geodata"
REL_TILESETS_VECTOR = "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector"
REL_TILING_SCHEMES = "http://www.opengis.net/def/rel/ogc/1.0/tiling-schemes"
TILE_TEMPLATE = "{tileMatrix}/{tileRow}/{tileCol}"

_JSON_TYPES = {"string": "string", "integer": "integer", "number": "number", "boolean": "boolean"}
_TILEJSON_TYPES = {"integer": "Number", "number": "Number", "boolean": "Boolean"}
_DIMENSION = {"Point": 0, "MultiPoint": 0, "LineString": 1, "MultiLineString": 1, "Polygon": 2, "MultiPolygon": 2}


def tiles_prefix(base: str, ts: Tileset) -> str:
    """URL of the tileset list a tileset belongs to: ``/tiles`` or ``/collections/{id}/tiles``."""
    return f"{base}/tiles" if ts.composite else f"{base}/collections/{ts.id}/tiles"


def tileset_summary(title: str, data_type: str, tms: TileMatrixSet, prefix: str, base: str) -> dict[str, Any]:
    """A tileset's entry in a tileset list (and the start of its metadata): title, dataType, CRS,
    the registered TileMatrixSet URI where there is one, self and tiling-scheme links; ``prefix`` is
    the URL of the list it belongs to."""
    doc: dict[str, Any] = {"title": f"{title} ({tms.id})", "dataType": data_type, "crs": crs_uri(tms)}
    if tms.uri:
        doc["tileMatrixSetURI"] = tms.uri
    kind = "tileset" if data_type == "vector" else f"{data_type} tileset"
    doc["links"] = [
        {"rel": "self", "type": JSON, "title": f"{title}, {tms.id} {kind}", "href": f"{prefix}/{tms.id}"},
        {"rel": REL_TILING_SCHEME, "type": JSON, "title": f"{tms.id} definition", "href": f"{base}/tileMatrixSets/{tms.id}"},
    ]
    return doc


def tileset_list_of(title: str, data_type: str, prefix: str, base: str) -> dict[str, Any]:
    """The tileset list at ``prefix``: one tileset of ``data_type`` (``vector``, ``map``) per
    TileMatrixSet served (:func:`tileset_summary` each)."""
    return {
        "tilesets": [tileset_summary(title, data_type, tms, prefix, base) for tms in tile_matrix_sets().values()],
        "links": [{"rel": "self", "type": JSON, "title": f"{data_type.capitalize()} tilesets", "href": prefix}],
    }


def _summary(ts: Tileset, tms: TileMatrixSet, base: str) -> dict[str, Any]:
    return tileset_summary(ts.title, "vector", tms, tiles_prefix(base, ts), base)


def tileset_list(ts: Tileset, base: str) -> dict[str, Any]:
    """``/tiles`` or ``/collections/{id}/tiles``: one vector tileset per TileMatrixSet."""
    return tileset_list_of(ts.title, "vector", tiles_prefix(base, ts), base)


def _properties_schema(info: LayerInfo) -> dict[str, Any]:
    props = {}
    for name in info.spec.tile_attributes:
        field = info.spec.field(name)
        props[name] = {"type": _JSON_TYPES.get(field.type, "string"), "description": field.description}
        if field.enum:
            props[name]["enum"] = list(field.enum)
    return {"type": "object", "properties": props}


def _layer(ts: Tileset, tms: TileMatrixSet, info: LayerInfo, base: str) -> dict[str, Any]:
    low, high = ts.zoom_range(tms, info)
    return {
        "id": info.name,
        "title": info.spec.title,
        "description": info.spec.description,
        "dataType": "vector",
        "geometryDimension": _DIMENSION[info.spec.geometry_type or "Polygon"],
        "featureType": info.name,
        "minTileMatrix": str(low),
        "maxTileMatrix": str(high),
        "propertiesSchema": _properties_schema(info),
        "links": [{"rel": REL_GEODATA, "type": JSON, "title": info.spec.title, "href": f"{base}/collections/{info.name}"}],
    }


def tileset_metadata(ts: Tileset, tms: TileMatrixSet, base: str) -> dict[str, Any]:
    """OGC tileset metadata: links (self, tiling scheme, the templated ``item`` tile URL), limits, layers."""
    doc = _summary(ts, tms, base)
    doc["description"] = ts.description
    here = f"{tiles_prefix(base, ts)}/{tms.id}"
    doc["links"].append(
        {"rel": "item", "type": MVT, "title": "Mapbox vector tiles", "templated": True, "href": f"{here}/{TILE_TEMPLATE}"}
    )
    if tms.id == WEB_MERCATOR:
        doc["links"].append({"rel": "describedby", "type": JSON, "title": "TileJSON", "href": f"{here}/tilejson.json"})
    if not ts.composite:
        doc["links"].append({"rel": REL_GEODATA, "type": JSON, "title": ts.title, "href": f"{base}/collections/{ts.id}"})
    bbox = ts.bbox
    if bbox is not None:
        doc["boundingBox"] = {"lowerLeft": [bbox[0], bbox[1]], "upperRight": [bbox[2], bbox[3]], "crs": CRS84_URI}
        doc["tileMatrixSetLimits"] = limits(tms, bbox, ts.zooms(tms))
    doc["layers"] = [_layer(ts, tms, info, base) for info in ts.layers]
    return doc


def tile_matrix_set_list(base: str) -> dict[str, Any]:
    """``/tileMatrixSets``: the tile matrix sets served, each linked to its definition."""
    entries = []
    for tms in tile_matrix_sets().values():
        href = f"{base}/tileMatrixSets/{tms.id}"
        entry: dict[str, Any] = {"id": tms.id, "title": tms.title, "crs": crs_uri(tms)}
        if tms.uri:
            entry["uri"] = tms.uri
        entry["links"] = [
            {"rel": "self", "type": JSON, "title": f"{tms.id} definition", "href": href},
            {"rel": "item", "type": JSON, "title": f"{tms.id} definition", "href": href},
        ]
        entries.append(entry)
    return {
        "tileMatrixSets": entries,
        "links": [{"rel": "self", "type": JSON, "title": "Tile matrix sets", "href": f"{base}/tileMatrixSets"}],
    }


def tile_url(base: str, ts: Tileset, release: int | None) -> str:
    """The ``{z}/{y}/{x}`` URL template of a tileset's WebMercatorQuad tiles (pinned to ``release``)."""
    url = f"{tiles_prefix(base, ts)}/{WEB_MERCATOR}/{{z}}/{{y}}/{{x}}"
    return f"{url}?release={release}" if release is not None else url


def tilejson(ts: Tileset, base: str, release: int) -> dict[str, Any]:
    """TileJSON 3.0.0 of a tileset's WebMercatorQuad tiles, tile URLs pinned to the current release."""
    tms = tile_matrix_sets()[WEB_MERCATOR]
    zooms = ts.zooms(tms)
    bbox = ts.bbox or (-180.0, -85.0511287798066, 180.0, 85.0511287798066)
    minzoom, maxzoom = zooms.start, max(zooms.start, ts.maxzoom(tms))
    vector_layers = []
    for info in ts.layers:
        low, high = ts.zoom_range(tms, info)
        fields = {name: _TILEJSON_TYPES.get(info.spec.field(name).type, "String") for name in info.spec.tile_attributes}
        vector_layers.append(
            {"id": info.name, "description": info.spec.title, "minzoom": low, "maxzoom": high, "fields": fields}
        )
    return {
        "tilejson": "3.0.0",
        "name": ts.title,
        "description": ts.description,
        "version": f"1.0.{release}",
        "scheme": "xyz",
        "tiles": [tile_url(base, ts, release)],
        "minzoom": minzoom,
        "maxzoom": maxzoom,
        "bounds": list(bbox),
        "center": [(bbox[0] + bbox[2]) / 2, (bbox[1] + bbox[3]) / 2, max(minzoom, min(maxzoom, 13))],
        "vector_layers": vector_layers,
    }
