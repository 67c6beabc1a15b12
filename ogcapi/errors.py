"""Every HTTP error as an OGC API exception document (``{"code", "type", "description"}``).

Client errors (4xx) say what is wrong with the request. Server errors (5xx) say nothing about the
server's insides — no database text, no exception names: the description names a request id,
which the response repeats in an ``X-Request-Id`` header and the server log prints beside the
traceback. A database error the request's own values caused (a value out of range, an invalid
geometry from its numbers) is the client's: 400. A ``RecursionError`` (input nested too deeply for
some parser) is the client's too: 400.
"""

from __future__ import annotations

import logging
import secrets
from contextvars import ContextVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse

from cim.errors import CIMError, RequestTimeout

LOGGER = logging.getLogger(__name__)

_CODES = {
    400: "InvalidParameterValue", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 405: "MethodNotAllowed",
    413: "ContentTooLarge", 414: "URITooLong",
}  # fmt: skip
#: the id of the request being served (set by ogcapi/request_guard.py for each request)
REQUEST_ID: ContextVar[str | None] = ContextVar("cim_request_id", default=None)
REQUEST_ID_HEADER = "X-Request-Id"
#: what a client reads of a server error, by status
_SERVER_MESSAGES = {
    503: "the store cannot answer now; try again later",
    504: "the request took too long",
}
#: what a client reads when the database refused a value of the request
INVALID_VALUES = "the request's values cannot be evaluated (out of range or not a valid geometry): check the parameters"


def ogc_exception(status: int, description: str, code: str | None = None) -> JSONResponse:
    code = code or _CODES.get(status, "NoApplicableCode")
    return JSONResponse({"code": code, "type": code, "description": description}, status_code=status)


def request_id() -> str:
    """The current request's id (a new one outside a request)."""
    rid = REQUEST_ID.get()
    if rid is None:
        rid = secrets.token_hex(8)
        REQUEST_ID.set(rid)
    return rid


def server_error_description(status: int) -> str:
    """The client's whole view of a server error: what kind, and the request id to quote."""
    return f"{_SERVER_MESSAGES.get(status, 'internal error')} (request id {request_id()})"


def log_server_error(status: int, what: str, exc: BaseException | None = None) -> str:
    """Log a server error with the request id (and ``exc``'s traceback); returns the id."""
    rid = request_id()
    LOGGER.error("request %s: %s %s", rid, status, what, exc_info=(type(exc), exc, exc.__traceback__) if exc else None)
    return rid


def server_error(status: int, what: str, exc: BaseException | None = None, code: str | None = None) -> JSONResponse:
    """A 5xx response naming only the request id; ``what`` and ``exc`` go to the log."""
    rid = log_server_error(status, what, exc)
    response = ogc_exception(status, server_error_description(status), code)
    response.headers[REQUEST_ID_HEADER] = rid
    return response


def caused_by_values(exc: BaseException) -> bool:
    """Whether ``exc`` (or an exception it was raised from) is the database refusing a value:
    PostgreSQL's SQLSTATE class 22 (data exception) or 22P02/XX000 geometry errors from GEOS,
    DuckDB's conversion, out-of-range and invalid-input errors."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        module = type(current).__module__ or ""
        name = type(current).__name__
        if module.startswith("psycopg"):
            sqlstate = getattr(current, "sqlstate", None) or ""
            if sqlstate.startswith("22") or (sqlstate == "XX000" and "GEOS" in str(current)):
                return True
        if module.startswith(("duckdb", "_duckdb")) and name in (
            "ConversionException", "OutOfRangeException", "InvalidInputException",
        ):  # fmt: skip
            return True
        current = current.__cause__ or current.__context__
    return False


def cim_error_response(exc: CIMError) -> JSONResponse:
    """``exc`` as a response: its own message for client errors; a request id for server errors."""
    if isinstance(exc, RequestTimeout):  # our own words (cim/store/budget.py), no database text
        return ogc_exception(exc.status, str(exc), exc.code)
    if exc.status >= 500 and caused_by_values(exc):
        LOGGER.info("request %s: the database refused the request's values: %s", request_id(), exc)
        return ogc_exception(400, INVALID_VALUES)
    if exc.status >= 500:
        return server_error(exc.status, f"{type(exc).__name__}: {exc}", exc, exc.code)
    return ogc_exception(exc.status, str(exc), exc.code)


def exception_response(exc: Exception) -> JSONResponse:
    """Any other exception: RecursionError is the input's fault (400), the rest a 500."""
    if isinstance(exc, RecursionError):
        return ogc_exception(400, "the request is nested too deeply to be read")
    if isinstance(exc, CIMError):
        return cim_error_response(exc)
    return server_error(500, f"unhandled {type(exc).__name__}", exc)


def install_handlers(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        description = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 404 and description == "Not Found":
            description = f"no resource at {request.url.path}"
        if exc.status_code >= 500:
            return server_error(exc.status_code, description, exc)
        return ogc_exception(exc.status_code, description)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        return ogc_exception(400, problems)

    @app.exception_handler(CIMError)
    async def cim_error(request: Request, exc: CIMError) -> JSONResponse:
        return cim_error_response(exc)

    @app.exception_handler(RecursionError)
    async def too_deep(request: Request, exc: RecursionError) -> JSONResponse:
        return exception_response(exc)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        return exception_response(exc)
