"""OGC API – 3D GeoVolumes (draft 22-029), 3D Tiles access: the tileset and its GLB contents of the
lod1 collections (the demo's ``buildings``), over :class:`tiles.threed.engine.SceneEngine`.

- ``GET /collections/{collectionId}/3dtiles``: the tileset.json (3D Tiles 1.1) of the current release,
  or of release N with ``?release=N``; its content URIs are absolute and pinned to the release they
  belong to: ``{base}/collections/{id}/3dtiles/{level}/{x}/{y}.glb?release=N``. ``ETag`` = a hash of
  the document (``If-None-Match`` → 304); ``Cache-Control`` short: unpinned, it names the current
  release, which the next publish changes. Encoded once per release (and edit generation) and sent
  gzip-compressed to clients that accept it (``Content-Encoding: gzip``, its own ETag).
- ``GET|HEAD /collections/{collectionId}/3dtiles/{level}/{x}/{y}.glb``: a leaf's content,
  ``model/gltf-binary``. ``ETag`` from the engine (``If-None-Match`` → 304 without rendering:
  :meth:`SceneEngine.version`); ``Cache-Control: public, max-age=86400, immutable`` when the URL
  pins the release the content belongs to and the layer is not editable (an editable layer's current
  contents change with edits), else short (ogcapi/tiles_responses.py). Repeated from memory by the
  tile fast path while its release (and edit generation) is current, as vector tiles are.

``release`` is stricter here than on vector tile URLs (where anything but a release number just
means "not pinned"): it selects what is served, so it must be a release number (ASCII digits) — else
400; an unknown release is 404, a pruned one 410 (the engine's NotFound / ReleaseGone). The same
value given twice is accepted (CesiumJS repeats the tileset URL's query parameters on content URIs
that already carry them); two different values are a 400. Other query parameters are ignored
(clients append tokens or cache busters), except ``f``, which must name the one format served.

Path values: ``level``, ``x``, ``y`` ASCII digits (anything else, negatives included: 400); a level
above :data:`MAX_LEVEL` or an x/y outside the level's 2^level cells, a last segment not ending in
``.glb``, a collection that is unknown or not lod1, and a tile not in the plan: 404 naming it. All
errors are OGC exception JSON (ogcapi/errors.py). Restricted collections need their read role for
both resources (ogcapi/access.py). The engine blocks (store reads, meshing): it runs in threads.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from cim.errors import InvalidQuery, NotFound
from ogcapi import parameters
from ogcapi.tiles_fastpath import etag_matches, mark_release
from ogcapi.tiles_responses import DOCUMENTS, tile_response
from ogcapi.threed_openapi import INDEX_DIGITS, MAX_LEVEL, SUFFIX, TILESET_PATH, content_href
from tiles.threed.engine import SceneEngine
from tiles.threed.model import GLB_MEDIA_TYPE, TILESET_MEDIA_TYPE, SceneContent

#: digits of a release number
RELEASE_DIGITS = 9
#: encoded tileset documents kept in memory (per collection, release asked and current release)
DOCUMENTS_KEPT = 8


@dataclass(frozen=True)
class TilesetDocument:
    """tileset.json encoded once, plain and gzip (3 MB → ~0.3 MB at a million buildings), with an
    ETag for each encoding."""

    body: bytes
    gzip: bytes
    etag: str
    etag_gzip: str


def scene_release(query: Any) -> int | None:
    """``release`` of a 3D Tiles URL (see the module's doc): None when absent; 400 for anything but
    a release number, or two different values."""
    values = query.getlist("release") if hasattr(query, "getlist") else [v for v in [query.get("release")] if v is not None]
    if not values:
        return None
    numbers = {parameters.integer(v, "release", RELEASE_DIGITS, minimum=1) for v in values}
    if len(numbers) > 1:
        raise InvalidQuery(f"release is given {len(values)} times with different values; give it once")
    return numbers.pop()


def content_address(path_params: Mapping[str, str]) -> tuple[int, int, int]:
    """``{level}/{x}/{y}.glb`` as integers: 400 for values that are no integer in ASCII digits, 404
    for a name without ``.glb`` and for cells outside the quadtree."""
    name = path_params["tile"]
    if not name.endswith(SUFFIX):
        shown = repr(name if len(name) <= 40 else name[:40] + "…")
        raise NotFound(f"no 3D tile content {shown}: contents are named {{y}}{SUFFIX}")
    level = parameters.integer(path_params["level"], "level", INDEX_DIGITS)
    x = parameters.integer(path_params["x"], "x", INDEX_DIGITS)
    y = parameters.integer(name[: -len(SUFFIX)], "y", INDEX_DIGITS)
    if level > MAX_LEVEL:
        raise NotFound(f"no 3D tile level {level}: the tilesets' quadtrees have levels 0..{MAX_LEVEL}")
    if x >= 2**level or y >= 2**level:
        raise NotFound(f"no 3D tile {level}/{x}/{y}: level {level} has cells 0..{2**level - 1} in x and y")
    return level, x, y


class ScenesAPI:
    """The two endpoints, bound to one engine and the public base URL."""

    def __init__(self, engine: SceneEngine, server_url: str) -> None:
        self.engine = engine
        self.base = server_url.rstrip("/")
        self._documents: OrderedDict[tuple[Any, ...], TilesetDocument] = OrderedDict()
        self._lock = threading.Lock()

    async def tileset(self, request: Request) -> Response:
        parameters.only_format(request.query_params.get("f"), "json", "the tileset is 3D Tiles JSON")
        release = scene_release(request.query_params)
        cid = request.path_params["collectionId"]
        document = await run_in_threadpool(self._document, cid, release)
        gzipped = "gzip" in request.headers.get("accept-encoding", "").lower()
        etag = document.etag_gzip if gzipped else document.etag
        headers = {"ETag": etag, "Cache-Control": DOCUMENTS, "Vary": "Accept-Encoding"}
        if etag_matches(request.headers.get("if-none-match"), etag):
            return Response(status_code=304, headers=headers)
        if gzipped:
            return Response(document.gzip, media_type=TILESET_MEDIA_TYPE, headers={**headers, "Content-Encoding": "gzip"})
        return Response(document.body, media_type=TILESET_MEDIA_TYPE, headers=headers)

    def _document(self, cid: str, release: int | None) -> TilesetDocument:
        """The encoded tileset.json, kept per (collection, release asked, current release, edit
        generation): a million buildings make a 3 MB document, encoded once rather than per request."""
        store = self.engine.store
        key = (cid, release, store.current_number(), store.edit_generation())
        with self._lock:
            found = self._documents.get(key)
            if found is not None:
                self._documents.move_to_end(key)
                return found

        def uri(number: int, level: int, x: int, y: int) -> str:
            return content_href(self.base, cid, number, level, x, y)

        body = json.dumps(self.engine.tileset(cid, uri, release), separators=(",", ":"), ensure_ascii=False).encode()
        digest = hashlib.blake2b(body, digest_size=12).hexdigest()
        document = TilesetDocument(body, gzip.compress(body, 6), f'"{digest}"', f'"{digest}-gzip"')
        with self._lock:
            self._documents[key] = document
            while len(self._documents) > DOCUMENTS_KEPT:
                self._documents.popitem(last=False)
        return document

    async def content(self, request: Request) -> Response:
        parameters.only_format(request.query_params.get("f"), "glb", "3D tile contents are glTF binary")
        release = scene_release(request.query_params)
        cid = request.path_params["collectionId"]
        level, x, y = content_address(request.path_params)
        if_none_match = request.headers.get("if-none-match")

        def serve() -> tuple[int, SceneContent]:
            if if_none_match:
                version = self.engine.version(cid, level, x, y, release)
                if etag_matches(if_none_match, version.etag):
                    return 304, version
            return 200, self.engine.content(cid, level, x, y, release)

        status, found = await run_in_threadpool(serve)
        mark_release(request.scope, found.release, found.generation if found.mutable else None)
        immutable = release == found.release and not found.mutable
        return tile_response(status, found.data, GLB_MEDIA_TYPE, found.etag, immutable)


def threed_routes(engine: SceneEngine, server_url: str) -> list[Route]:
    """The 3D Tiles routes (mount them before pygeoapi's collection routes)."""
    api = ScenesAPI(engine, server_url)
    return [
        Route(TILESET_PATH, api.tileset, methods=["GET", "HEAD"], name="threed_tileset"),
        Route("/collections/{collectionId}/3dtiles/{level}/{x}/{tile}", api.content, methods=["GET", "HEAD"],
              name="threed_content"),
    ]  # fmt: skip


__all__ = ["content_address", "scene_release", "threed_routes"]
