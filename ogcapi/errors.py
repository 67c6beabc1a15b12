"""Every HTTP error as an OGC API exception document (``{"code", "type", "description"}``)."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse

from cim.errors import CIMError

LOGGER = logging.getLogger(__name__)

_CODES = {400: "InvalidParameterValue", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 405: "MethodNotAllowed"}


def ogc_exception(status: int, description: str, code: str | None = None) -> JSONResponse:
    code = code or _CODES.get(status, "NoApplicableCode")
    return JSONResponse({"code": code, "type": code, "description": description}, status_code=status)


def install_handlers(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        description = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 404 and description == "Not Found":
            description = f"no resource at {request.url.path}"
        return ogc_exception(exc.status_code, description)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        return ogc_exception(400, problems)

    @app.exception_handler(CIMError)
    async def cim_error(request: Request, exc: CIMError) -> JSONResponse:
        return ogc_exception(exc.status, str(exc), exc.code)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        LOGGER.exception("unhandled error on %s", request.url.path)
        return ogc_exception(500, f"internal error: {type(exc).__name__}")
