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
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from cim.errors import NotFound
from ogcapi.tile_fastpath import etag_matches, mark_release
from ogcapi.tiles_routes import DOCUMENTS, IMMUTABLE, SHORT, json_only, tile_address
from tiles import map_documents
from tiles.map_engine import MapTileEngine
from tiles.maptilesets import map_tileset
from cim.tms import WEB_MERCATOR, get_tms


class MapTilesAPI:
    def __init__(self, engine: MapTileEngine, server_url: str) -> None:
        self.engine = engine
        self.base = server_url.rstrip("/")

    def _json(self, doc: dict[str, Any]) -> JSONResponse:
        return JSONResponse(doc, headers={"Cache-Control": DOCUMENTS})

    async def tileset_list(self, request: Request) -> Response:
        json_only(request)
        ts = await run_in_threadpool(map_tileset, self.engine.store, request.path_params["collection_id"])
        return self._json(map_documents.map_tileset_list(ts, self.base))

    async def tileset(self, request: Request) -> Response:
        json_only(request)
        tms = get_tms(request.path_params["tms_id"])
        ts = await run_in_threadpool(map_tileset, self.engine.store, request.path_params["collection_id"])
        return self._json(map_documents.map_tileset_metadata(ts, tms, self.base))

    async def tilejson(self, request: Request) -> Response:
        tms = get_tms(request.path_params["tms_id"])
        if tms.id != WEB_MERCATOR:
            raise NotFound(f"TileJSON describes {WEB_MERCATOR} tiles only, not {tms.id}")

        def build() -> dict[str, Any]:
            ts = map_tileset(self.engine.store, request.path_params["collection_id"])
            style = ts.style(request.query_params.get("style"))
            return map_documents.map_tilejson(ts, style, self.base, self.engine.store.current_number())

        return self._json(await run_in_threadpool(build))

    async def tile(self, request: Request) -> Response:
        params, query = request.path_params, request.query_params
        tile_matrix, row, col = tile_address(params)
        pinned = query.get("release")
        if_none_match = request.headers.get("if-none-match")

        def serve() -> tuple[int, bytes, str, int, str]:
            located = self.engine.locate(
                params["collection_id"], params["tms_id"], tile_matrix, row, col,
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
        mark_release(request.scope, release)  # repeated from memory (ogcapi/tile_fastpath.py): varies by Accept only
        headers = {"ETag": etag, "Cache-Control": IMMUTABLE if pinned == str(release) else SHORT, "Vary": "Accept"}
        if status == 200:
            return Response(data, status_code=200, media_type=media_type, headers=headers)
        return Response(status_code=status, headers=headers)


def map_routes(engine: MapTileEngine, server_url: str) -> list[BaseRoute]:
    api = MapTilesAPI(engine, server_url)
    prefix = "/collections/{collection_id}/map/tiles"
    return [
        Route(prefix, api.tileset_list, name="map_tilesets"),
        Route(prefix + "/{tms_id}", api.tileset, name="map_tileset"),
        Route(prefix + "/{tms_id}/tilejson.json", api.tilejson, name="map_tilejson"),
        Route(prefix + "/{tms_id}/{tile_matrix}/{tile_row}/{tile_col}", api.tile, name="map_tile"),
    ]
