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
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from cim.errors import InvalidQuery, NotFound
from ogcapi import parameters
from ogcapi.tile_fastpath import etag_matches, mark_release
from tiles import documents
from tiles.engine import MVT_MEDIA_TYPE, TileEngine, TileVersion
from tiles.maptilesets import raster_layers
from tiles.style import basemap_style
from tiles.tilesets import COMPOSITE, Tileset, collection, composite
from cim.tms import WEB_MERCATOR, get_tms, tile_matrix_set_json

#: Cache-Control of tiles whose URL names the current release
IMMUTABLE = "public, max-age=86400, immutable"
#: Cache-Control of tiles by unpinned URL (their content changes with the next release) and of
#: tiles of tilesets with an editable layer (edits change them within a release)
SHORT = "public, max-age=60"
#: Cache-Control of metadata documents (they name the current release)
DOCUMENTS = "public, max-age=60"
STYLE_MEDIA_TYPE = "application/vnd.mapbox.style+json"


def tile_address(path_params: dict[str, str]) -> tuple[str, int, int]:
    """tileMatrix, tileRow and tileCol of a tile route, typed by :mod:`ogcapi.parameters` (the tile
    matrix stays an identifier string, canonical: ASCII digits without leading zeros)."""
    z = parameters.tile_matrix(path_params["tile_matrix"])
    row = parameters.tile_index(path_params["tile_row"], "tileRow")
    col = parameters.tile_index(path_params["tile_col"], "tileCol")
    return str(z), row, col


def json_only(request: Request) -> None:
    f = request.query_params.get("f")
    if f not in (None, "json"):
        raise InvalidQuery(f"unsupported format f={f!r}: this resource is available as JSON (f=json)")


class TilesAPI:
    """The endpoints, bound to one engine and the public base URL."""

    def __init__(self, engine: TileEngine, server_url: str) -> None:
        self.engine = engine
        self.base = server_url.rstrip("/")

    def _tileset(self, request: Request) -> Tileset:
        cid = request.path_params.get("collection_id")
        return composite(self.engine.store) if cid is None else collection(self.engine.store, cid)

    def _json(self, doc: dict[str, Any], media_type: str = "application/json") -> JSONResponse:
        return JSONResponse(doc, media_type=media_type, headers={"Cache-Control": DOCUMENTS})

    async def tile_matrix_sets(self, request: Request) -> Response:
        json_only(request)
        return self._json(documents.tile_matrix_set_list(self.base))

    async def tile_matrix_set(self, request: Request) -> Response:
        json_only(request)
        return self._json(tile_matrix_set_json(get_tms(request.path_params["tms_id"])))

    async def tileset_list(self, request: Request) -> Response:
        json_only(request)
        ts = await run_in_threadpool(self._tileset, request)
        return self._json(documents.tileset_list(ts, self.base))

    async def tileset(self, request: Request) -> Response:
        json_only(request)
        tms = get_tms(request.path_params["tms_id"])
        ts = await run_in_threadpool(self._tileset, request)
        return self._json(documents.tileset_metadata(ts, tms, self.base))

    async def tilejson(self, request: Request) -> Response:
        tms = get_tms(request.path_params["tms_id"])
        if tms.id != WEB_MERCATOR:
            raise NotFound(f"TileJSON describes {WEB_MERCATOR} tiles only, not {tms.id}")

        def build() -> dict[str, Any]:
            ts = self._tileset(request)
            return documents.tilejson(ts, self.base, self.engine.store.current_number())

        return self._json(await run_in_threadpool(build))

    async def style(self, request: Request) -> Response:
        def build() -> dict[str, Any]:
            store = self.engine.store
            return basemap_style(composite(store), self.base, store.current_number(), tuple(raster_layers(store)))

        return self._json(await run_in_threadpool(build), STYLE_MEDIA_TYPE)

    async def tile(self, request: Request) -> Response:
        params = request.path_params
        tileset_id = params.get("collection_id", COMPOSITE)
        tile_matrix, row, col = tile_address(params)
        f = request.query_params.get("f")
        if f not in (None, "mvt"):
            raise InvalidQuery(f"unsupported format f={f!r}: tiles are Mapbox vector tiles (f=mvt)")
        args = (tileset_id, params["tms_id"], tile_matrix, row, col)
        pinned = request.query_params.get("release")
        if_none_match = request.headers.get("if-none-match")

        def serve() -> tuple[int, bytes, TileVersion]:
            if if_none_match:
                version = self.engine.version(*args)
                if etag_matches(if_none_match, version.etag):
                    return 304, b"", version
            result = self.engine.tile(*args)
            return (200 if result.data else 204), result.data, TileVersion(result.release, result.etag, result.mutable, result.generation)

        status, data, version = await run_in_threadpool(serve)
        # repeated from memory (ogcapi/tile_fastpath.py) while its release — and, for a tileset with
        # an editable layer, the store's edit generation — is still the store's
        mark_release(request.scope, version.release, version.generation if version.mutable else None)
        immutable = pinned == str(version.release) and not version.mutable
        headers = {"ETag": version.etag, "Cache-Control": IMMUTABLE if immutable else SHORT}
        if status == 200:
            return Response(data, status_code=200, media_type=MVT_MEDIA_TYPE, headers=headers)
        return Response(status_code=status, headers=headers)


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
