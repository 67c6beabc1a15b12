"""OGC API - Tiles dataset-level map tiles: the composite base map as PNG (tiles/basemap_map.py).

- ``/map/tiles``: the map tilesets (one per tile matrix set)
- ``/map/tiles/{tileMatrixSetId}``: tileset metadata
- ``/map/tiles/{tileMatrixSetId}/{tileMatrix}/{tileRow}/{tileCol}[?release=N]``: a PNG (256 px),
  ``204 No Content`` when nothing is drawn in it

ETag / ``If-None-Match`` → 304 and Cache-Control as for vector tiles (immutable when pinned to the
current release and no layer of the composite is editable or live). Tile matrices outside the zoom
range, rows/columns outside the tile matrix set or the limits, unknown tile matrix sets: 404;
non-integer rows or columns, ``f`` other than png: 400 — OGC exception JSON (ogcapi/errors.py).
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from cim.tms import get_tms
from ogcapi import parameters
from ogcapi.tiles_fastpath import etag_matches, mark_release
from ogcapi.tiles_responses import document, json_only, tile_response
from tiles.basemap_map import PNG_MEDIA_TYPE, BasemapMapEngine
from tiles.basemap_map_documents import (
    basemap_map_tileset_list,
    basemap_map_tileset_metadata,
)
from tiles.engine import TileVersion
from tiles.tilesets import composite


class BasemapMapAPI:
    def __init__(self, engine: BasemapMapEngine, server_url: str) -> None:
        self.engine = engine
        self.base = server_url.rstrip("/")

    async def tileset_list(self, request: Request) -> Response:
        json_only(request)
        return document(basemap_map_tileset_list(self.base))

    async def tileset(self, request: Request) -> Response:
        json_only(request)
        tms = get_tms(request.path_params["tms_id"])
        ts = await run_in_threadpool(composite, self.engine.store)
        return document(basemap_map_tileset_metadata(ts, tms, self.base))

    async def tile(self, request: Request) -> Response:
        params, query = request.path_params, request.query_params
        tile = parameters.tile_address(params)
        parameters.only_format(query.get("f"), "png", "base-map map tiles are PNG")
        pinned = parameters.release_pin(query.get("release"))
        tms = get_tms(params["tms_id"])
        if_none_match = request.headers.get("if-none-match")

        def serve() -> tuple[int, bytes, TileVersion]:
            located = self.engine.locate(tms, tile)
            if if_none_match:
                version = self.engine.version(located)
                if etag_matches(if_none_match, version.etag):
                    return 304, b"", version
            result = self.engine.tile(located)
            return (200 if result.data else 204), result.data, TileVersion(result.release, result.etag, result.mutable, result.generation)

        status, data, version = await run_in_threadpool(serve)
        mark_release(request.scope, version.release, version.generation if version.mutable else None)
        immutable = pinned == version.release and not version.mutable
        return tile_response(status, data, PNG_MEDIA_TYPE, version.etag, immutable)


def basemap_map_routes(engine: BasemapMapEngine, server_url: str) -> list[BaseRoute]:
    api = BasemapMapAPI(engine, server_url)
    return [
        Route("/map/tiles", api.tileset_list, name="basemap_map_tilesets"),
        Route("/map/tiles/{tms_id}", api.tileset, name="basemap_map_tileset"),
        Route("/map/tiles/{tms_id}/{tile_matrix}/{tile_row}/{tile_col}", api.tile, name="basemap_map_tile"),
    ]
