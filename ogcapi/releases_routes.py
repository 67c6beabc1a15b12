"""``GET /releases`` and ``GET /releases/{n}``: the kept releases of the base map as JSON
(cim/sharing/releases.py: number, created, current, the release before, layers with counts, the
checksums count, links to the catalog records, change feeds and downloads of each).

``{n}`` not a release number: 400; never published: 404; pruned away: 410 (``ReleaseGone``, naming
the releases kept). Parameters: ``f=json`` only (others: 400). The announcements of new releases
are ``/releases/stream`` (ogcapi/releases_stream.py) and MQTT (docs/sharing-announcements.md).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from cim.errors import BadInput
from cim.sharing.releases import (
    RELEASES_PATH, describe_release, describe_releases, find_release, parse_release_number, previous_number,
)  # fmt: skip
from cim.store import Store

STREAM_PATH = f"{RELEASES_PATH}/stream"


def check_parameters(
    request: Request, allowed: Sequence[str] = ("f",), formats: Sequence[str] = ("json", "application/json")
) -> None:
    """400 for a parameter the path does not take, one given twice, or an ``f`` not in ``formats``."""
    params = request.query_params
    for name in params:
        if name not in allowed:
            raise BadInput(f"unknown parameter {name[:40]!r} of {request.url.path[:80]} (parameters: {', '.join(allowed)})")
        if len(params.getlist(name)) > 1:
            raise BadInput(f"parameter {name!r} given more than once")
    f = params.get("f")
    if f is not None and f.strip().lower() not in formats:
        raise BadInput(f"unsupported format f={f[:40]!r}: {request.url.path[:80]} is served as f={formats[0]}")


def _release(store: Store, number: int, base: str) -> dict[str, Any]:
    release, releases = find_release(store, number)
    return describe_release(release, store.release_layers(number), previous_number(releases, number), base)


def releases_routes(store: Store, server_url: str) -> list[Route]:
    base = server_url.rstrip("/")

    async def list_releases(request: Request) -> Response:
        check_parameters(request)
        releases = await asyncio.to_thread(describe_releases, store, base)
        current = next((r["number"] for r in releases if r["current"]), None)
        body = {
            "releases": releases,
            "current": current,
            "numberReturned": len(releases),
            "links": [
                {"rel": "self", "type": "application/json", "title": "The releases", "href": f"{base}{RELEASES_PATH}"},
                {"rel": "hub", "type": "text/event-stream", "title": "Release announcements as Server-Sent Events",
                 "href": f"{base}{STREAM_PATH}"},
                {"rel": "service-desc", "type": "application/asyncapi+json",
                 "title": "The AsyncAPI definition of the announcement channels", "href": f"{base}/asyncapi"},
            ],
        }  # fmt: skip
        return JSONResponse(body, headers={"Cache-Control": "no-cache"})

    async def one_release(request: Request) -> Response:
        check_parameters(request)
        number = parse_release_number(request.path_params["number"], "release")
        body = await asyncio.to_thread(_release, store, number, base)
        return JSONResponse(body, headers={"Cache-Control": "no-cache"})

    return [
        Route(RELEASES_PATH, list_releases, methods=["GET"], name="releases"),
        Route(RELEASES_PATH + "/{number}", one_release, methods=["GET"], name="release"),
    ]


__all__ = ["STREAM_PATH", "check_parameters", "releases_routes"]
