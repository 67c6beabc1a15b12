"""Bulk downloads: ``GET /collections/{collectionId}/downloads/{format}`` (gpkg, parquet, fgb).

A vector layer of the current release (with its edits, as ``/items`` serves it) or, with
``?release=N``, of a kept past release, as one file from the download cache
(cim/sharing/download_cache.py), written on the first request (which waits for it) and streamed from
disk afterwards: Starlette's ``FileResponse`` (``Range`` requests, ``HEAD``), ``ETag`` = the sha256
of the bytes (``If-None-Match`` → 304), ``Content-Disposition: attachment`` with
``<layer>-r<N>.<ext>``. Store work runs in threads, never on the event loop; at most
``$CIM_DOWNLOAD_BUILDS`` (default 2) files are written at once, further first requests wait their
turn. Restricted layers need their role (ogcapi/access.py covers the path). Errors are OGC
exception JSON: 400 unknown format, raster layer, bad ``release``; 404 unknown layer or release; 410
a pruned release. docs/sharing-downloads.md.
"""

from __future__ import annotations

import os
from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from cim.errors import CIMError
from cim.sharing.download_cache import Download, DownloadCache
from cim.sharing.formats import download_format
from cim.store import Store
from ogcapi import parameters
from ogcapi.errors import ogc_exception

#: files written at once by one server process (``$CIM_DOWNLOAD_BUILDS``)
BUILDS_VARIABLE = "CIM_DOWNLOAD_BUILDS"
#: a past release's file never changes (a pruned one is 410, not other bytes)
IMMUTABLE = "public, max-age=31536000, immutable"
#: the current release's file changes with a new release or an edit: revalidate (ETag) every time
REVALIDATE = "public, no-cache"


def _limiter(state: dict[str, Any]) -> anyio.CapacityLimiter:
    """The builds' limiter, made in the event loop on first use."""
    if "limiter" not in state:
        state["limiter"] = anyio.CapacityLimiter(max(1, int(os.environ.get(BUILDS_VARIABLE, "2") or 2)))
    return state["limiter"]


def downloads_routes(store: Store) -> list[Route]:
    """The download route over ``store`` (mount it before pygeoapi's collection routes)."""
    cache = DownloadCache(store)
    state: dict[str, Any] = {}

    async def download(request: Request) -> Response:
        try:
            release = parameters.download_release(request.query_params)
            fmt = download_format(request.path_params["format"])
            layer = request.path_params["collectionId"]
            found = await anyio.to_thread.run_sync(cache.find, layer, fmt, release)
            if found is None:  # written now (or by a request before this one, while we waited)
                found = await anyio.to_thread.run_sync(cache.get, layer, fmt, release, limiter=_limiter(state))
        except CIMError as exc:
            return ogc_exception(exc.status, str(exc), exc.code)
        return _respond(request, found, release is not None)

    return [Route("/collections/{collectionId}/downloads/{format}", download, methods=["GET", "HEAD"], name="download")]


def _respond(request: Request, download: Download, pinned: bool) -> Response:
    etag = f'"{download.sha256}"'
    headers = {"ETag": etag, "Cache-Control": IMMUTABLE if pinned else REVALIDATE}
    if _matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    return FileResponse(
        download.path, media_type=download.format.media_type, filename=download.filename, headers=headers,
        content_disposition_type="attachment",
    )


def _matches(header: str | None, etag: str) -> bool:
    """Whether an ``If-None-Match`` value names ``etag`` (weak comparison, as RFC 9110 says for it)."""
    if not header:
        return False
    tags = [t.strip().removeprefix("W/") for t in header.split(",")]
    return "*" in tags or etag in tags


__all__ = ["downloads_routes"]
