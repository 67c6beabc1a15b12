"""The tiles paths of the OpenAPI document (pygeoapi's document knows only the Features paths).

Added by ogcapi/document_additions.py to every ``/openapi`` JSON response, so the OpenAPI definition
describes the tile resources as OGC API - Tiles /conf/oas30 asks.
"""

from __future__ import annotations

from typing import Any

from cim.tms import tile_matrix_sets

TAG = "tiles"
_ERROR = {"description": "OGC API exception", "content": {"application/json": {"schema": {"type": "object"}}}}


def _param(name: str, where: str, schema: dict[str, Any], description: str, required: bool = True) -> dict[str, Any]:
    return {"name": name, "in": where, "required": required, "description": description, "schema": schema}


def _parameters(collections: list[str]) -> dict[str, dict[str, Any]]:
    return {
        "tileMatrixSetId": _param("tileMatrixSetId", "path", {"type": "string", "enum": list(tile_matrix_sets())},
                                  "Identifier of a tile matrix set (tiling scheme)"),
        "tileMatrix": _param("tileMatrix", "path", {"type": "string"},
                             "Identifier of a tile matrix (zoom level) of the tile matrix set"),
        "tileRow": _param("tileRow", "path", {"type": "integer", "minimum": 0}, "Row index of the tile"),
        "tileCol": _param("tileCol", "path", {"type": "integer", "minimum": 0}, "Column index of the tile"),
        "collectionId": _param("collectionId", "path", {"type": "string", "enum": collections or [""]},
                               "Identifier of a vector collection"),
        "release": _param("release", "query", {"type": "integer"},
                          "Release the tile URL is pinned to: long-lived caching while it is current", False),
    }


def _json_get(summary: str, params: list[str]) -> dict[str, Any]:
    return {
        "get": {
            "tags": [TAG],
            "summary": summary,
            "parameters": [{"$ref": f"#/components/parameters/tiles_{p}"} for p in params],
            "responses": {
                "200": {"description": summary, "content": {"application/json": {"schema": {"type": "object"}}}},
                "400": _ERROR,
                "404": _ERROR,
            },
        }
    }


def _tile_get(summary: str, params: list[str]) -> dict[str, Any]:
    op = _json_get(summary, params + ["tileMatrix", "tileRow", "tileCol", "release"])
    op["get"]["responses"] = {
        "200": {"description": "A Mapbox vector tile",
                "content": {"application/vnd.mapbox-vector-tile": {"schema": {"type": "string", "format": "binary"}}}},
        "204": {"description": "No feature in the tile"},
        "304": {"description": "Not modified (If-None-Match matched the ETag)"},
        "400": _ERROR,
        "404": _ERROR,
    }
    return op


def _basemap_map_tile() -> dict[str, Any]:
    """A PNG map tile of the composite base map (ogcapi/basemap_map_routes.py)."""
    tile = _tile_get("A PNG map tile of the composite base map", ["tileMatrixSetId"])
    tile["get"]["responses"]["200"] = {"description": "A map tile (PNG, 256 x 256, RGBA)",
                                       "content": {"image/png": {"schema": {"type": "string", "format": "binary"}}}}
    tile["get"]["responses"]["204"] = {"description": "Nothing is drawn in the tile"}
    return tile


def tiles_paths() -> dict[str, Any]:
    """The path items, parameterised by ``collectionId`` and ``tileMatrixSetId``."""
    tms = ["tileMatrixSetId"]
    coll = ["collectionId"]
    return {
        "/tileMatrixSets": _json_get("The tile matrix sets (tiling schemes) tiles are available in", []),
        "/tileMatrixSets/{tileMatrixSetId}": _json_get("Definition of a tile matrix set", tms),
        "/tiles": _json_get("Vector tilesets of the composite base map", []),
        "/tiles/{tileMatrixSetId}": _json_get("Tileset metadata of the composite base map", tms),
        "/tiles/{tileMatrixSetId}/tilejson.json": _json_get("TileJSON of the composite base map (WebMercatorQuad)", tms),
        "/tiles/{tileMatrixSetId}/{tileMatrix}/{tileRow}/{tileCol}": _tile_get("A tile of the composite base map", tms),
        "/collections/{collectionId}/tiles": _json_get("Vector tilesets of a collection", coll),
        "/collections/{collectionId}/tiles/{tileMatrixSetId}": _json_get("Tileset metadata of a collection", coll + tms),
        "/collections/{collectionId}/tiles/{tileMatrixSetId}/tilejson.json": _json_get(
            "TileJSON of a collection (WebMercatorQuad)", coll + tms
        ),
        "/collections/{collectionId}/tiles/{tileMatrixSetId}/{tileMatrix}/{tileRow}/{tileCol}": _tile_get(
            "A tile of a collection", coll + tms
        ),
        "/map/tiles": _json_get("Map tilesets of the composite base map (PNG, drawn from its vector tiles)", []),
        "/map/tiles/{tileMatrixSetId}": _json_get("Map tileset metadata of the composite base map", tms),
        "/map/tiles/{tileMatrixSetId}/{tileMatrix}/{tileRow}/{tileCol}": _basemap_map_tile(),
        "/styles/basemap": {
            "get": {
                "tags": [TAG],
                "summary": "MapLibre style of the composite base map",
                "responses": {"200": {"description": "Style JSON",
                                      "content": {"application/vnd.mapbox.style+json": {"schema": {"type": "object"}}}}},
            }
        },
    }


_IMAGES = {media: {"schema": {"type": "string", "format": "binary"}} for media in ("image/png", "image/jpeg", "image/webp")}


def map_paths() -> dict[str, Any]:
    """The map tile paths of raster collections (ogcapi/tiles_map_routes.py)."""
    coll, tms = ["rasterCollectionId"], ["tileMatrixSetId"]
    tile = _tile_get("A map tile of a raster collection", coll + tms + ["style", "f"])
    tile["get"]["responses"]["200"] = {"description": "A map tile (PNG, JPEG or WebP)", "content": _IMAGES}
    tile["get"]["responses"]["204"] = {"description": "No pixel of the tile has data"}
    return {
        "/collections/{rasterCollectionId}/map/tiles": _json_get("Map tilesets of a raster collection", coll),
        "/collections/{rasterCollectionId}/map/tiles/{tileMatrixSetId}": _json_get(
            "Map tileset metadata of a raster collection", coll + tms
        ),
        "/collections/{rasterCollectionId}/map/tiles/{tileMatrixSetId}/tilejson.json": _json_get(
            "TileJSON of a raster collection's map tiles (WebMercatorQuad)", coll + tms + ["style"]
        ),
        "/collections/{rasterCollectionId}/map/tiles/{tileMatrixSetId}/{tileMatrix}/{tileRow}/{tileCol}": tile,
    }


def _map_parameters(rasters: list[str]) -> dict[str, dict[str, Any]]:
    return {
        "rasterCollectionId": _param("rasterCollectionId", "path", {"type": "string", "enum": rasters},
                                     "Identifier of a raster collection (DEM, imagery)"),
        "style": _param("style", "query", {"type": "string", "enum": ["hillshade", "terrain-rgb", "terrarium", "default"]},
                        "What the tile shows: DEM hillshade (default) / terrain-rgb / terrarium; imagery: default", False),
        "f": _param("f", "query", {"type": "string", "enum": ["png", "jpeg", "webp"]},
                    "Tile format (default: from the Accept header, else png; elevation encodings: png only)", False),
    }


def add_tiles_paths(doc: dict[str, Any], collections: list[str], rasters: list[str] | None = None) -> dict[str, Any]:
    """``doc`` (an OpenAPI 3.0 document) with the tiles paths and parameters added (map tile paths
    when there are raster collections)."""
    if not isinstance(doc.get("paths"), dict):
        return doc
    doc["paths"].update(tiles_paths())
    parameters = doc.setdefault("components", {}).setdefault("parameters", {})
    parameters.update({f"tiles_{k}": v for k, v in _parameters(collections).items()})
    if rasters:
        doc["paths"].update(map_paths())
        parameters.update({f"tiles_{k}": v for k, v in _map_parameters(rasters).items()})
    tags = doc.setdefault("tags", [])
    if not any(t.get("name") == TAG for t in tags):
        tags.append({"name": TAG, "description": "OGC API - Tiles: vector tiles of the base map"})
    return doc
