"""What the tile routes answer with, written once for vector tiles (ogcapi/tiles_routes.py) and map
tiles (ogcapi/tiles_map_routes.py): Cache-Control values, JSON documents, tile responses.

Tile URLs pinned to the current release (``?release=N``, as TileJSON and the style give them) are
:data:`IMMUTABLE`; unpinned URLs — whose content changes with the next release — and tiles of a
tileset with an editable layer (edits change them within a release) are :data:`SHORT`.
"""

from __future__ import annotations

from typing import Any

from morecantile import TileMatrixSet
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from cim.errors import NotFound
from cim.tms import WEB_MERCATOR, get_tms
from ogcapi import parameters

#: Cache-Control of tiles whose URL names the current release
IMMUTABLE = "public, max-age=86400, immutable"
#: Cache-Control of tiles by unpinned URL (their content changes with the next release) and of
#: tiles of tilesets with an editable layer (edits change them within a release)
SHORT = "public, max-age=60"
#: Cache-Control of metadata documents (they name the current release)
DOCUMENTS = "public, max-age=60"


def json_only(request: Request) -> None:
    """400 unless ``f`` is absent or ``json``: the documents are JSON only."""
    parameters.only_format(request.query_params.get("f"), "json", "this resource is available as JSON")


def document(doc: dict[str, Any], media_type: str = "application/json") -> JSONResponse:
    """A metadata document (tileset list and metadata, TileJSON, style), cached :data:`DOCUMENTS`."""
    return JSONResponse(doc, media_type=media_type, headers={"Cache-Control": DOCUMENTS})


def tilejson_tms(tms_id: str) -> TileMatrixSet:
    """The tile matrix set of a ``tilejson.json`` route: 404 for unknown ones and for any but
    WebMercatorQuad (TileJSON has no other)."""
    tms = get_tms(tms_id)
    if tms.id != WEB_MERCATOR:
        raise NotFound(f"TileJSON describes {WEB_MERCATOR} tiles only, not {tms.id}")
    return tms


def tile_response(
    status: int, data: bytes, media_type: str, etag: str, immutable: bool, vary: str | None = None
) -> Response:
    """A tile (200), an empty tile (204) or a Not Modified (304), with its ETag and Cache-Control
    (:data:`IMMUTABLE` or :data:`SHORT`) and, if given, ``Vary``."""
    headers = {"ETag": etag, "Cache-Control": IMMUTABLE if immutable else SHORT}
    if vary is not None:
        headers["Vary"] = vary
    if status == 200:
        return Response(data, status_code=200, media_type=media_type, headers=headers)
    return Response(status_code=status, headers=headers)
