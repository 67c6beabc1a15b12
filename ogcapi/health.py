"""Health endpoints for orchestrators and load balancers.

- ``GET /healthz`` (liveness): the process answers. Answered on the event loop, touching neither the
  store nor the worker threads, so a server busy with slow requests is still alive.
- ``GET /readyz`` (readiness): the store is reachable and has a current release — the DuckDB
  release file opens and answers, PostgreSQL answers the current-release query now (not from the
  reader's cache) within a few seconds. ``200 {"status": "ready", "release": N}``, else ``503`` with an
  OGC exception (``StoreUnavailable``) that names no database internals.

Both are cheap, never cached (``Cache-Control: no-store``; the tile fast path keeps only the tile
routes' responses) and outside the OGC API documents.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from cim.errors import CIMError, NoRelease, RequestTimeout
from ogcapi.errors import ogc_exception
from ogcapi.retry_after import RetryAfter

LOGGER = logging.getLogger(__name__)
NO_STORE = {"Cache-Control": "no-store"}


class ReadyStore(Protocol):
    def check_ready(self) -> int: ...


def install(app: Any, store: ReadyStore) -> None:
    """Add the health routes to FastAPI ``app`` (first, before any catch-all) and ``Retry-After``
    to its 503s (ogcapi/retry_after.py)."""
    app.router.routes[:0] = health_routes(store)
    app.add_middleware(RetryAfter)


def health_routes(store: ReadyStore) -> list[Route]:
    """``/healthz`` and ``/readyz`` over ``store``."""

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"}, headers=NO_STORE)

    async def readyz(request: Request) -> Response:
        try:
            number = await run_in_threadpool(store.check_ready)
        except CIMError as exc:
            return not_ready(exc)
        return JSONResponse({"status": "ready", "release": number}, headers=NO_STORE)

    return [
        Route("/healthz", healthz, methods=["GET", "HEAD"], name="healthz", include_in_schema=False),
        Route("/readyz", readyz, methods=["GET", "HEAD"], name="readyz", include_in_schema=False),
    ]


def not_ready(exc: CIMError) -> Response:
    """503 saying why, in our words (the cause, which may quote the database, goes to the log)."""
    if isinstance(exc, NoRelease):
        reason = "the store has no release yet"
    elif isinstance(exc, RequestTimeout):
        reason = "the store did not answer in time"
    else:
        reason = "the store cannot be reached"
    LOGGER.warning("not ready: %s: %s", type(exc).__name__, exc)
    response = ogc_exception(503, f"not ready: {reason}", "StoreUnavailable")
    response.headers.update(NO_STORE)
    return response
