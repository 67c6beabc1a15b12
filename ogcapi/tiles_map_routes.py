"""OGC API - Tiles map tiles of raster collections (DEM, imagery), over :mod:`tiles.map_engine`.

- ``/collections/{collectionId}/map/tiles``: the map tilesets (one per tile matrix set)
- ``/collections/{collectionId}/map/tiles/{tileMatrixSetId}``: tileset metadata
- ``/collections/{collectionId}/map/tiles/{tileMatrixSetId}/tilejson.json[?style=]`` (WebMercatorQuad)
- ``/collections/{collectionId}/map/tiles/{tileMatrixSetId}/{tileMatrix}/{tileRow}/{tileCol}[?style=&f=]``

A tile is ``200`` (PNG, JPEG or WebP: ``f=``, else the ``Accept`` header, else PNG) or ``204 No
Content`` when none of its pixels has data. ETag / ``If-None-Match`` → 304 and Cache-Control as for
vector tiles; ``Vary: Accept``. Unknown collections (or vector ones), tile matrix sets, tile matrices outside
the tileset's zoom range, rows/columns outside the tile matrix set or the limits: 404; an unknown style or
format, non-integer rows or columns: 400 — OGC exception JSON (ogcapi/errors.py).
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from cim.tms import get_tms
from ogcapi import parameters
from ogcapi.tiles_fastpath import etag_matches, mark_release
from ogcapi.tiles_responses import document, json_only, tile_response, tilejson_tms
from tiles import map_documents
from tiles.map_engine import MapTileEngine
from tiles.map_tilesets import map_tileset


class MapTilesAPI:
    def __init__(self, engine: MapTileEngine, server_url: str) -> None:
        self.engine = engine
        self.base = server_url.rstrip("/")

    async def tileset_list(self, request: Request) -> Response:
        json_only(request)
        ts = await run_in_threadpool(map_tileset, self.engine.store, request.path_params["collection_id"])
        return document(map_documents.map_tileset_list(ts, self.base))

    async def tileset(self, request: Request) -> Response:
        json_only(request)
        tms = get_tms(request.path_params["tms_id"])
        ts = await run_in_threadpool(map_tileset, self.engine.store, request.path_params["collection_id"])
        return document(map_documents.map_tileset_metadata(ts, tms, self.base))

    async def tilejson(self, request: Request) -> Response:
        tilejson_tms(request.path_params["tms_id"])

        def build() -> dict[str, Any]:
            ts = map_tileset(self.engine.store, request.path_params["collection_id"])
            style = ts.style(request.query_params.get("style"))
            return map_documents.map_tilejson(ts, style, self.base, self.engine.store.current_number())

        return document(await run_in_threadpool(build))

    async def tile(self, request: Request) -> Response:
        params, query = request.path_params, request.query_params
        tile = parameters.tile_address(params)
        pinned = parameters.release_pin(query.get("release"))
        tms = get_tms(params["tms_id"])
        if_none_match = request.headers.get("if-none-match")

        def serve() -> tuple[int, bytes, str, int, str]:
            located = self.engine.locate(
                params["collection_id"], tms, tile,
                style=query.get("style"), fmt=query.get("f"), accept=request.headers.get("accept"),
            )
            if if_none_match:
                number = self.engine.store.current_number()
                etag = self.engine.etag_now(located)
                if etag_matches(if_none_match, etag):
                    return 304, b"", etag, number, located.media_type
            result = self.engine.tile(located)
            return (200 if result.data else 204), result.data, result.etag, result.release, located.media_type

        status, data, etag, release, media_type = await run_in_threadpool(serve)
        mark_release(request.scope, release)  # repeated from memory (ogcapi/tiles_fastpath.py): varies by Accept only
        return tile_response(status, data, media_type, etag, pinned == release, vary="Accept")


def map_routes(engine: MapTileEngine, server_url: str) -> list[BaseRoute]:
    api = MapTilesAPI(engine, server_url)
    prefix = "/collections/{collection_id}/map/tiles"
    return [
        Route(prefix, api.tileset_list, name="map_tilesets"),
        Route(prefix + "/{tms_id}", api.tileset, name="map_tileset"),
        Route(prefix + "/{tms_id}/tilejson.json", api.tilejson, name="map_tilejson"),
        Route(prefix + "/{tms_id}/{tile_matrix}/{tile_row}/{tile_col}", api.tile, name="map_tile"),
    ]
