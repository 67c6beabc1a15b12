"""The terrain paths of the OpenAPI document (ogcapi/terrain_routes.py), added by
ogcapi/document_additions.py when the current release has a DEM. Inline schemas, no external $ref."""

from __future__ import annotations

from typing import Any

from tiles.terrain.engine import TERRAIN_MEDIA_TYPE

TAG = "terrain"
_ERROR = {"description": "OGC API exception", "content": {"application/json": {"schema": {"type": "object"}}}}


def _path_param(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "description": description, "schema": schema}


def _release() -> dict[str, Any]:
    return {"name": "release", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 1},
            "description": "The release whose DEM is served (default: the current one); URLs pinned to the "
                           "current release are cached as immutable"}


def terrain_paths(dems: list[str]) -> dict[str, Any]:
    collection = _path_param("demCollectionId", {"type": "string", "enum": dems},
                             "Identifier of the DEM collection (the release's elevation raster)")
    layer_json = {
        "get": {
            "tags": [TAG],
            "summary": "layer.json of the DEM's terrain (quantized-mesh-1.0, for CesiumJS CesiumTerrainProvider)",
            "parameters": [collection, _release()],
            "responses": {
                "200": {"description": "TileJSON 2.1.0 with the quantized-mesh tile URLs and the available tiles",
                        "content": {"application/json": {"schema": {"type": "object"}}}},
                "400": _ERROR, "404": _ERROR, "410": _ERROR,
            },
        }
    }
    tile = {
        "get": {
            "tags": [TAG],
            "summary": "A terrain tile: quantized-mesh-1.0 over Cesium's geographic tiling (EPSG:4326, TMS rows)",
            "parameters": [
                collection,
                _path_param("z", {"type": "integer", "minimum": 0}, "Level (0: two tiles of 180 degrees)"),
                _path_param("x", {"type": "integer", "minimum": 0}, "Column, from 180 degrees west"),
                _path_param("y", {"type": "integer", "minimum": 0}, "Row, from the south pole (TMS)"),
                _release(),
                {"name": "v", "in": "query", "required": False, "schema": {"type": "string"},
                 "description": "The layer.json version (CesiumJS adds it; ignored)"},
                {"name": "Accept", "in": "header", "required": False, "schema": {"type": "string"},
                 "description": f"'{TERRAIN_MEDIA_TYPE};extensions=octvertexnormals' adds per-vertex normals"},
            ],
            "responses": {
                "200": {"description": "A quantized-mesh-1.0 tile",
                        "content": {TERRAIN_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}}},
                "304": {"description": "Not modified (If-None-Match matched the ETag)"},
                "400": _ERROR, "404": _ERROR, "410": _ERROR,
            },
        }
    }
    return {
        "/collections/{demCollectionId}/terrain/layer.json": layer_json,
        "/collections/{demCollectionId}/terrain/{z}/{x}/{y}.terrain": tile,
    }


def add_terrain_paths(doc: dict[str, Any], dems: list[str]) -> dict[str, Any]:
    """``doc`` (an OpenAPI 3.0 document) with the terrain paths, when there is a DEM."""
    if not dems or not isinstance(doc.get("paths"), dict):
        return doc
    doc["paths"].update(terrain_paths(dems))
    tags = doc.setdefault("tags", [])
    if not any(t.get("name") == TAG for t in tags):
        tags.append({"name": TAG, "description": "Terrain of the DEM as quantized-mesh tiles for CesiumJS"})
    return doc
