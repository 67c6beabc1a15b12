"""Request bodies of the write routes (features, warnings, impact): the media type checked (415)
and the body read no further than a limit (413), with or without a ``Content-Length``."""

from __future__ import annotations

from starlette.requests import Request

from cim.errors import CIMError


class UnsupportedMediaType(CIMError):
    """The body is not sent as one of the accepted media types: 415."""

    status = 415
    code = "UnsupportedMediaType"


def media_type(request: Request, accepted: tuple[str, ...], what: str) -> str:
    """The request's media type (parameters such as ``charset`` allowed), one of ``accepted``;
    UnsupportedMediaType naming what to send ``what`` as otherwise."""
    header = request.headers.get("content-type", "")
    kind = header.split(";", 1)[0].strip().lower()
    if kind not in accepted:
        shown = repr(header[:80]) if header else "none"
        raise UnsupportedMediaType(f"send {what} as {' or '.join(accepted)}; the Content-Type was {shown}")
    return kind


async def read_at_most(request: Request, most: int, too_large: CIMError) -> bytes:
    """The body; ``too_large`` (a 413) once it passes ``most`` bytes — up front when the
    ``Content-Length`` says so, else while it streams in (chunked or lying bodies)."""
    declared = request.headers.get("content-length", "").strip()
    if declared.isascii() and declared.isdigit() and int(declared) > most:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > most:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)
