"""The request guard: an ASGI middleware refusing oversized or hostile requests before any route,
parser or database sees them.

- the whole query string longer than ``max_query_bytes`` → 414 URI Too Long;
- a ``filter`` longer than ``max_filter_bytes`` → 414; nested deeper than ``max_filter_depth``
  (parentheses, brackets, braces, measured by :func:`cim.limits.text_depth`) → 400 — the ``cql2``
  parser (native code) crashes the whole process on a few thousand nested parentheses;
- a NUL character in any query parameter (name or value) → 400 naming the parameter (PostgreSQL
  refuses NUL in text, DuckDB cuts strings at it);
- a request body larger than ``max_body_bytes`` → 413 Content Too Large: by ``Content-Length``
  before reading, and while streaming for bodies without one (chunked) or lying about it.

Every request gets a request id (:data:`ogcapi.errors.REQUEST_ID`) here, which 5xx responses name
in their body and in an ``X-Request-Id`` header, and the server log beside the traceback.
The limits come from :func:`cim.limits.limits` (``CIM_LIMIT_*`` environment variables).
"""

from __future__ import annotations

import secrets
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cim.errors import CIMError
from cim.limits import limits, text_depth
from ogcapi.errors import REQUEST_ID, ogc_exception


class ContentTooLarge(CIMError):
    """The request body is larger than ``max_body_bytes``."""

    status = 413
    code = "ContentTooLarge"


class _Refused(Exception):
    def __init__(self, status: int, description: str, code: str | None = None) -> None:
        super().__init__(description)
        self.status, self.description, self.code = status, description, code


def check_query(query_string: bytes) -> None:
    """Raise _Refused when the query string breaks a limit (size, filter size and depth, NUL)."""
    lim = limits()
    if len(query_string) > lim.max_query_bytes:
        raise _Refused(414, f"the query string has {len(query_string)} bytes; at most {lim.max_query_bytes} are accepted", "URITooLong")
    if not query_string:
        return
    text = query_string.decode("utf-8", "replace")
    for name, value in parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="replace"):
        if "\x00" in name or "\x00" in value:
            shown = name.replace("\x00", "\\x00")[:40]
            raise _Refused(400, f"query parameter {shown!r} contains a NUL character")
        if name == "filter":
            size = len(value.encode())
            if size > lim.max_filter_bytes:
                raise _Refused(414, f"filter has {size} bytes; at most {lim.max_filter_bytes} are accepted", "URITooLong")
            depth = text_depth(value)
            if depth > lim.max_filter_depth:
                raise _Refused(400, f"filter is nested {depth} levels deep; at most {lim.max_filter_depth} are accepted")


def _content_length(scope: Scope) -> int | None:
    for key, value in scope.get("headers", []):
        if key == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class RequestGuard:
    """ASGI middleware; see the module's description."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        REQUEST_ID.set(secrets.token_hex(8))
        max_body = limits().max_body_bytes
        try:
            check_query(scope.get("query_string", b""))
            length = _content_length(scope)
            if length is not None and length > max_body:
                raise _Refused(413, f"the request body has {length} bytes; at most {max_body} are accepted", "ContentTooLarge")
        except _Refused as refused:
            await ogc_exception(refused.status, refused.description, refused.code)(scope, receive, send)
            return

        received = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_body:
                    raise ContentTooLarge(f"the request body is larger than {max_body} bytes, the most accepted")
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, watched_send)
        except ContentTooLarge as exc:
            if started:
                raise
            await ogc_exception(exc.status, str(exc), exc.code)(scope, receive, send)
