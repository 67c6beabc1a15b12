"""``POST /warnings``: a city's warning publisher sends a CAP 1.2 alert or a GeoJSON warning.

Checked in this order: the bearer token carries the warning-publisher role (401/403,
``CIM_JWT_WARNING_ROLE``), the body is sent as CAP XML or GeoJSON (415), is at most the warning
size limit (413, read no further), then the document itself (cim/warnings: hardened XML, the CAP
1.2 schema, geometry, times, references: 400/409 naming what is wrong). Answers 201 with
``Location`` (the version's feature in ``/collections/warnings/items``) and the feature; the same
alert again answers 200 with the feature stored the first time. Nothing is stored on any error.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from cim.crs import CRS84_URI
from cim.errors import CIMError
from cim.warnings.errors import WarningTooLarge
from cim.warnings.versions import LAYER
from cim.warnings.xml_guard import warning_byte_limit
from ogcapi import auth as auth_module
from ogcapi.auth import AuthError, JWTAuth
from ogcapi.bodies import media_type, read_at_most
from ogcapi.errors import ogc_exception

#: what a warning may be sent as (CAP XML; GeoJSON)
WARNING_TYPES = ("application/cap+xml", "application/xml", "text/xml", "application/geo+json", "application/json")


def warnings_routes(service: Any, auth: JWTAuth | None) -> list[Route]:
    async def publish(request: Request) -> Response:
        try:
            publisher = auth_module.configured(auth, "publishing warnings")
            # a JWKS may be fetched to verify the token: never on the event loop
            who = await run_in_threadpool(
                publisher.require, request.headers.get("authorization"), publisher.warning_role, "publish warnings"
            )
            kind = media_type(request, WARNING_TYPES, "the warning")
            body = await _read_body(request)
            loop = asyncio.get_running_loop()
            from cim.warnings.ingest import ingest

            result = await loop.run_in_executor(None, ingest, service.store, body, kind, who)
            _poke(request)
            feature = await loop.run_in_executor(None, lambda: service.store.get_feature(LAYER, result.fid, out_srid=4326))
        except AuthError as exc:
            return exc.response()
        except CIMError as exc:
            return ogc_exception(exc.status, str(exc), exc.code)
        location = f"{service.collections_url()}/{LAYER}/items/{result.fid}"
        return JSONResponse(
            feature,
            status_code=201 if result.created else 200,
            headers={"Location": location, "Content-Crs": f"<{CRS84_URI}>"},
            media_type="application/geo+json",
        )

    return [Route("/warnings", publish, methods=["POST"], name="publish_warning")]


def _poke(request: Request) -> None:
    """Wake this process's warnings watcher (push to SSE and MQTT at once, not at its next poll)."""
    watcher = getattr(request.app.state, "warnings_watcher", None)
    if watcher is not None:
        watcher.poke()


async def _read_body(request: Request) -> bytes:
    """The body, read no further than the warning size limit (413 past it)."""
    most = warning_byte_limit()
    return await read_at_most(request, most, WarningTooLarge(f"the warning is larger than {most} bytes, the limit (CIM_LIMIT_WARNING_BYTES)"))
