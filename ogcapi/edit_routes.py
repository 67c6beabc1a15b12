"""OGC API - Features Part 4 routes: POST /collections/{id}/items, PUT/PATCH/DELETE .../items/{fid}.

pygeoapi's own transaction handling has no PATCH, no authorisation and answers a non-editable
collection with 400; these routes call the store directly (:meth:`cim.store.Store.edit`), after
checking, in this order: the collection exists (404), is editable (405, with ``Allow``), the bearer
token (401/403, see :mod:`ogcapi.auth`), the body is sent as ``application/geo+json`` or
``application/json`` (415), is at most ``max_body_bytes`` long (413; read no further than that, with
or without a ``Content-Length``), is JSON (400: orjson, which refuses NaN, Infinity, numbers beyond a
double and nesting past 1024) nested at most ``max_json_depth`` deep (400), and its ``Content-Crs``
is one of the collection's CRSs (400). The store checks the feature itself against the layer
(:mod:`cim.store.edits`, :mod:`cim.store.write_checks`: 400 or 413 saying why).
Answers: 201 with ``Location`` and the feature as stored (CRS84) for POST, 204 for the others.
"""

from __future__ import annotations

import asyncio
from typing import Any, Callable

import orjson

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from cim.crs import CRS84_URI
from cim.errors import CIMError, FeatureNotFound
from cim.limits import limits
from cim.store import Edit, InvalidFeature, NotEditable, TooLarge, check_depth
from ogcapi import auth as auth_module
from ogcapi import parameters
from ogcapi.auth import AuthError, JWTAuth
from ogcapi.bodies import media_type, read_at_most
from ogcapi.errors import ogc_exception

#: what a write request may be sent as
JSON_TYPES = ("application/geo+json", "application/json")


def edit_routes(service: Any, auth: JWTAuth | None) -> list[Route]:
    """The write routes over ``service`` (an ogcapi.pygeoapi.PygeoapiService: its store, collections
    URL and the collections' CRSs)."""
    items = _endpoint(service, auth, collection_level=True)
    item = _endpoint(service, auth, collection_level=False)
    return [
        Route("/collections/{collection_id}/items", items, methods=["POST"], name="create_item"),
        Route("/collections/{collection_id}/items/{item_id}", item, methods=["PUT", "PATCH", "DELETE"], name="edit_item"),
    ]


def _endpoint(service: Any, auth: JWTAuth | None, collection_level: bool) -> Callable[[Request], Any]:
    actions = {"POST": "create", "PUT": "replace", "PATCH": "update", "DELETE": "delete"}

    async def endpoint(request: Request) -> Response:
        collection_id = request.path_params["collection_id"]
        try:
            info = service.store.layer(collection_id)
            if not info.spec.editable:
                raise NotEditable(f"collection {collection_id!r} is not editable")
            who = _editor(auth_module.check(auth, request.headers.get("authorization")))
            fid = None if collection_level else _fid(request.path_params["item_id"], collection_id)
            action = actions[request.method]
            body = None if action == "delete" else _json_body(await _read_body(request))
            edit = Edit(collection_id, action, who, fid, body, _content_crs(service, request, collection_id))  # type: ignore[arg-type]
            loop = asyncio.get_running_loop()
            fid = await loop.run_in_executor(None, service.store.edit, edit)
            if action != "create":
                return Response(status_code=204)
            feature = await loop.run_in_executor(None, lambda: service.store.get_feature(collection_id, fid, out_srid=4326))
        except AuthError as exc:
            return exc.response()
        except NotEditable as exc:
            response = ogc_exception(405, str(exc), exc.code)
            response.headers["Allow"] = "GET, HEAD"
            return response
        except CIMError as exc:
            return ogc_exception(exc.status, str(exc), exc.code)
        location = f"{service.collections_url()}/{collection_id}/items/{fid}"
        return JSONResponse(
            feature,
            status_code=201,
            headers={"Location": location, "Content-Crs": f"<{CRS84_URI}>"},
            media_type="application/geo+json",
        )

    return endpoint


def _fid(text: str, collection_id: str) -> int:
    """The feature id of a path (:func:`ogcapi.parameters.feature_id`), else no such feature (404)."""
    fid = parameters.feature_id(text)
    if fid is not None:
        return fid
    raise FeatureNotFound(f"no feature {text[:40]!r} in {collection_id!r}")


def _editor(who: str) -> str:
    """The token's ``sub``, which the edit log stores: refused (401) when it could not be stored."""
    longest = limits().max_text_chars
    if "\x00" in who or len(who) > longest:
        reason = "contains a NUL character" if "\x00" in who else f"is longer than {longest} characters"
        raise AuthError(401, f"invalid token: its sub {reason}", "invalid_token")
    return who


async def _read_body(request: Request) -> bytes:
    """The body of a GeoJSON or JSON media type (415), read no further than ``max_body_bytes`` (413)."""
    media_type(request, JSON_TYPES, "the feature")
    most = limits().max_body_bytes
    return await read_at_most(request, most, TooLarge(f"the body is larger than {most} bytes, the limit of a write"))


def _json_body(raw: bytes) -> Any:
    if not raw.strip():
        raise _invalid("the request has no body: send a GeoJSON Feature")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if "depth limit" in str(exc):
            raise _invalid(f"the body is nested more than {limits().max_json_depth} levels deep (arrays and objects)") from None
        raise _invalid(f"the body is not JSON (a GeoJSON Feature was expected): {exc}") from None
    # coordinates nest as their geometry type says (checked without recursion by the store's
    # write_checks.check_positions): the depth limit is for the rest, and walking them costs
    geometry = body.get("geometry") if isinstance(body, dict) else None
    if isinstance(geometry, dict) and "coordinates" in geometry:
        check_depth({**body, "geometry": {**geometry, "coordinates": None}})
    else:
        check_depth(body)
    return body


def _content_crs(service: Any, request: Request, collection_id: str) -> str:
    """The CRS of the body (``Content-Crs: <uri>``), one of the collection's; CRS84 when not given."""
    header = request.headers.get("content-crs")
    if header is None:
        return CRS84_URI
    uri = header.strip().strip("<>").strip()
    supported = service.supported_crs(collection_id) or [CRS84_URI]
    if uri not in supported:
        raise _invalid(f"unsupported Content-Crs {uri!r}: use one of {', '.join(supported)}")
    return uri


def _invalid(message: str) -> CIMError:
    return InvalidFeature(message)
