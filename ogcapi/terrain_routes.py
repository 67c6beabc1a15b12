"""Terrain of the DEM collection for CesiumJS, over :mod:`tiles.terrain.engine`.

- ``/collections/{demId}/terrain/layer.json[?release=N]``: the layer.json ``CesiumTerrainProvider``
  reads (``Cesium.CesiumTerrainProvider.fromUrl("{base}/collections/{demId}/terrain")``), tile URLs
  relative to it and pinned to the release it describes;
- ``/collections/{demId}/terrain/{z}/{x}/{y}.terrain[?release=N&v=...]``: a quantized-mesh-1.0 tile
  (``application/vnd.quantized-mesh``), with the ``octvertexnormals`` extension when the ``Accept``
  header asks for it (``application/vnd.quantized-mesh;extensions=octvertexnormals``, extensions
  joined by ``-``, as CesiumJS sends with ``requestVertexNormals``). ``Vary: Accept``.

``release=N`` serves release N's DEM (404 for a release never published, 410 for a pruned one);
ETag / ``If-None-Match`` → 304 and Cache-Control as tiles (ogcapi/tiles_responses.py): immutable
when pinned to the current release. Tiles are not gzipped (no response of the app is compressed by
a middleware). A collection that is not the release's elevation raster, or a release without a DEM:
404 saying so; a level, column or row outside the tiling or the available tiles: 404; a level,
column, row or release that is no number in ASCII digits: 400 — OGC exception JSON.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ogcapi import parameters
from ogcapi.tiles_fastpath import etag_matches, mark_release
from ogcapi.tiles_responses import document, tile_response
from tiles.terrain.engine import TERRAIN_MEDIA_TYPE, TerrainEngine, TerrainResult

#: digits of a level (the deepest served is 21) and of a column or row (2^22 columns at level 21)
LEVEL_DIGITS = 2
INDEX_DIGITS = 10
RELEASE_DIGITS = 9


def release_parameter(value: str | None) -> int | None:
    """``release`` of a terrain URL: the release served (absent: the current one); 400 unless a
    positive integer in ASCII digits."""
    if value is None:
        return None
    return parameters.integer(value, "release", RELEASE_DIGITS, minimum=1)


def wants_normals(accept: str | None) -> bool:
    """Whether ``Accept`` asks for the ``octvertexnormals`` extension of quantized-mesh."""
    for media_range in (accept or "").split(","):
        kind, *params = (part.strip() for part in media_range.split(";"))
        if kind.lower() != TERRAIN_MEDIA_TYPE:
            continue
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "extensions" and "octvertexnormals" in value.strip().strip('"').split("-"):
                return True
    return False


class TerrainAPI:
    def __init__(self, engine: TerrainEngine) -> None:
        self.engine = engine

    async def layer_json(self, request: Request) -> Response:
        parameters.only_format(request.query_params.get("f"), "json", "layer.json is JSON")
        release = release_parameter(request.query_params.get("release"))
        layer = request.path_params["collection_id"]
        return document(await run_in_threadpool(self.engine.layer_json, layer, release))

    async def tile(self, request: Request) -> Response:
        params, query = request.path_params, request.query_params
        z = parameters.integer(params["z"], "level (z)", LEVEL_DIGITS)
        x = parameters.integer(params["x"], "column (x)", INDEX_DIGITS)
        y = parameters.integer(params["y"], "row (y)", INDEX_DIGITS)
        release = release_parameter(query.get("release"))
        normals = wants_normals(request.headers.get("accept"))
        if_none_match = request.headers.get("if-none-match")
        layer = params["collection_id"]

        def serve() -> tuple[int, TerrainResult, int]:
            current = self.engine.store.current_number()
            if if_none_match:
                version = self.engine.version(layer, z, x, y, release, normals)
                if etag_matches(if_none_match, version.etag):
                    return 304, version, current
            return 200, self.engine.tile(layer, z, x, y, release, normals), current

        status, result, current = await run_in_threadpool(serve)
        if result.release == current:  # repeated from memory while its release is current (ogcapi/tiles_fastpath.py)
            mark_release(request.scope, result.release)
        media_type = TERRAIN_MEDIA_TYPE + (";extensions=octvertexnormals" if normals else "")
        return tile_response(status, result.data, media_type, result.etag, release == current, vary="Accept")


def terrain_routes(engine: TerrainEngine) -> list[BaseRoute]:
    """The terrain routes; mount them before pygeoapi's."""
    api = TerrainAPI(engine)
    prefix = "/collections/{collection_id}/terrain"
    return [
        Route(prefix + "/layer.json", api.layer_json, name="terrain_layer_json"),
        Route(prefix + "/{z}/{x}/{y}.terrain", api.tile, name="terrain_tile"),
    ]
