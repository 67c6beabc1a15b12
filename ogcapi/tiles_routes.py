"""OGC API - Tiles routes (plus TileJSON and the MapLibre style), over :mod:`tiles`.

- ``/tileMatrixSets``, ``/tileMatrixSets/{tileMatrixSetId}``: the tile matrix sets (OGC TileMatrixSet JSON)
- ``/tiles``, ``/tiles/{tileMatrixSetId}``, ``/tiles/{tileMatrixSetId}/{tileMatrix}/{tileRow}/{tileCol}``:
  the dataset's composite base map
- ``/collections/{collectionId}/tiles/...``: the same per vector collection
- ``.../{tileMatrixSetId}/tilejson.json`` (WebMercatorQuad) and ``/styles/basemap`` for MapLibre

A tile is ``200`` with ``application/vnd.mapbox-vector-tile``, or ``204 No Content`` when no feature
falls in it. Every tile response carries an ``ETag`` (release + tile key, and the store's edit
generation for tilesets with an editable layer) and answers a matching ``If-None-Match`` with
``304``. Tile URLs pinned to a release (``?release=N``, as TileJSON and the style give them) are
``Cache-Control: public, max-age=86400, immutable`` while N is current; unpinned URLs — whose
content changes with the next release — and every tile of a tileset with an editable layer (it
changes with edits) get a short max-age.
Unknown tile matrix sets, tilesets, tile matrices and tiles outside the tile matrix set or the tileset's limits: 404;
non-integer rows or columns: 400; all as OGC exception JSON (ogcapi/errors.py).
"""

from __future__ import annotations

from typing import Any, Callable

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from cim.tms import get_tms, tile_matrix_set_json
from ogcapi import parameters
from ogcapi.tiles_fastpath import etag_matches, mark_release
from ogcapi.tiles_responses import document, json_only, tile_response, tilejson_tms
from tiles import documents
from tiles.engine import MVT_MEDIA_TYPE, TileEngine, TileVersion
from tiles.map_tilesets import raster_layers
from tiles.style import basemap_style
from tiles.tilesets import COMPOSITE, Tileset, collection, composite

STYLE_MEDIA_TYPE = "application/vnd.mapbox.style+json"


class TilesAPI:
    """The endpoints, bound to one engine and the public base URL."""

    def __init__(self, engine: TileEngine, server_url: str) -> None:
        self.engine = engine
        self.base = server_url.rstrip("/")

    def _tileset(self, request: Request) -> Tileset:
        cid = request.path_params.get("collection_id")
        return composite(self.engine.store) if cid is None else collection(self.engine.store, cid)

    async def tile_matrix_sets(self, request: Request) -> Response:
        json_only(request)
        return document(documents.tile_matrix_set_list(self.base))

    async def tile_matrix_set(self, request: Request) -> Response:
        json_only(request)
        return document(tile_matrix_set_json(get_tms(request.path_params["tms_id"])))

    async def tileset_list(self, request: Request) -> Response:
        json_only(request)
        ts = await run_in_threadpool(self._tileset, request)
        return document(documents.tileset_list(ts, self.base))

    async def tileset(self, request: Request) -> Response:
        json_only(request)
        tms = get_tms(request.path_params["tms_id"])
        ts = await run_in_threadpool(self._tileset, request)
        return document(documents.tileset_metadata(ts, tms, self.base))

    async def tilejson(self, request: Request) -> Response:
        tilejson_tms(request.path_params["tms_id"])

        def build() -> dict[str, Any]:
            ts = self._tileset(request)
            return documents.tilejson(ts, self.base, self.engine.store.current_number())

        return document(await run_in_threadpool(build))

    async def style(self, request: Request) -> Response:
        def build() -> dict[str, Any]:
            store = self.engine.store
            return basemap_style(composite(store), self.base, store.current_number(), tuple(raster_layers(store)))

        return document(await run_in_threadpool(build), STYLE_MEDIA_TYPE)

    async def tile(self, request: Request) -> Response:
        params, query = request.path_params, request.query_params
        tileset_id = params.get("collection_id", COMPOSITE)
        tile = parameters.tile_address(params)
        parameters.only_format(query.get("f"), "mvt", "tiles are Mapbox vector tiles")
        pinned = parameters.release_pin(query.get("release"))
        tms = get_tms(params["tms_id"])
        if_none_match = request.headers.get("if-none-match")

        def serve() -> tuple[int, bytes, TileVersion]:
            if if_none_match:
                version = self.engine.version(tileset_id, tms, tile)
                if etag_matches(if_none_match, version.etag):
                    return 304, b"", version
            result = self.engine.tile(tileset_id, tms, tile)
            return (200 if result.data else 204), result.data, TileVersion(result.release, result.etag, result.mutable, result.generation)

        status, data, version = await run_in_threadpool(serve)
        # repeated from memory (ogcapi/tiles_fastpath.py) while its release — and, for a tileset with
        # an editable layer, the store's edit generation — is still the store's
        mark_release(request.scope, version.release, version.generation if version.mutable else None)
        immutable = pinned == version.release and not version.mutable
        return tile_response(status, data, MVT_MEDIA_TYPE, version.etag, immutable)


def routes(engine: TileEngine, server_url: str) -> list[BaseRoute]:
    """The tiles routes; mount them before pygeoapi's (``/collections/{id}`` would not match them,
    but keeping them first makes the precedence explicit)."""
    api = TilesAPI(engine, server_url)
    out: list[BaseRoute] = [
        Route("/tileMatrixSets", api.tile_matrix_sets, name="tile_matrix_sets"),
        Route("/tileMatrixSets/{tms_id}", api.tile_matrix_set, name="tile_matrix_set"),
        Route("/styles/basemap", api.style, name="style_basemap"),
    ]
    for prefix, label in (("/tiles", "dataset"), ("/collections/{collection_id}/tiles", "collection")):
        handlers: list[tuple[str, Callable[[Request], Any], str]] = [
            ("", api.tileset_list, "tilesets"),
            ("/{tms_id}", api.tileset, "tileset"),
            ("/{tms_id}/tilejson.json", api.tilejson, "tilejson"),
            ("/{tms_id}/{tile_matrix}/{tile_row}/{tile_col}", api.tile, "tile"),
        ]
        out.extend(Route(prefix + path, handler, name=f"{label}_{name}") for path, handler, name in handlers)
    return out
