"""pygeoapi, mounted into our ASGI app over an ``API`` object we build ourselves.

pygeoapi's own Starlette module reads its configuration from environment variables once, at import.
We need collections that follow the store's current release, so we construct ``pygeoapi.api.API``
from a generated configuration and rebuild it when the release changes; the endpoint functions are
pygeoapi's own (landing page, conformance, collections, items, queryables, OpenAPI, HTML).

Before pygeoapi sees an items or item request, :mod:`ogcapi.parameters` turns its parameters into
typed values or a 400; those values travel to the provider in the side channel
(:data:`ogcapi.pygeoapi.request.CURRENT`).
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import threading
from dataclasses import replace
from http import HTTPStatus
from pathlib import Path
from typing import Any, Callable

import pygeoapi
import pygeoapi.api as core_api
import pygeoapi.api.itemtypes as itemtypes_api
from pygeoapi.api import API, F_JSON, APIRequest, apply_gzip
from pygeoapi.openapi import get_oas
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from cim.errors import CIMError
from cim.store import Store
from ogcapi import parameters
from ogcapi.errors import cim_error_response, server_error
from ogcapi.openapi_features import extend_openapi, feature_schema
from ogcapi.pygeoapi import crs_patch, items_patch, json_patch
from ogcapi.pygeoapi.config import build_config
from ogcapi.pygeoapi.conformance import conformance
from ogcapi.pygeoapi.request import CURRENT, ItemRequest, ItemsRequest

GEOJSON = "application/geo+json"
ApiFunction = Callable[..., tuple[dict[str, Any], int, Any]]


class PygeoapiService:
    """A pygeoapi ``API`` for the store's current release, rebuilt when the release changes."""

    def __init__(self, store: Store, store_url: str, base_config: dict[str, Any], server_url: str) -> None:
        self.store = store
        self.store_url = store_url
        self.base_config = base_config
        self.server_url = server_url
        self._lock = threading.Lock()
        self._key: object = None
        self._api: API | None = None
        #: the release the API was built for
        self._release: int | None = None
        self.api()  # fail at start-up, not on the first request

    def is_current(self) -> bool:
        """Whether the API was built for the release the store knows to be current, asked without
        any I/O (``Store.known_current_number``; None, unknown, counts as not current)."""
        return self._api is not None and self.store.known_current_number() == self._release

    def api(self) -> API:
        layers = self.store.layers()
        key = tuple((i.name, i.count, i.bbox, i.srid, i.interval) for i in layers), self.store.current_number()
        if key != self._key or self._api is None:
            with self._lock:
                if key != self._key or self._api is None:
                    config = build_config(self.base_config, layers, self.store_url, self.server_url)
                    vectors = [i for i in layers if i.spec.kind == "vector"]
                    oas = extend_openapi(get_oas(config, fail_on_invalid_collection=False), vectors, self.server_url)
                    self._api = API(config, oas, {})
                    self._key = key
                    self._release = key[1]
        return self._api

    @property
    def config(self) -> dict[str, Any]:
        return self.api().config

    def collections_url(self) -> str:
        """``{server}/collections``, as the API's links write it."""
        return self.api().get_collections_url()

    def supported_crs(self, collection_id: str) -> list[str] | None:
        """The CRS URIs of a feature collection (CRS84 first); None when there is no such collection."""
        return _supported_crs(self.api(), collection_id)


def _supported_crs(api: API, collection_id: str) -> list[str] | None:
    resource = api.config["resources"].get(collection_id)
    return None if resource is None else list(resource["providers"][0].get("crs", []))


def _to_response(headers: dict[str, str], status: int, content: Any) -> Response:
    if headers.get("Content-Type") == "text/html":
        response: Response = HTMLResponse(content=content, status_code=status)
    elif isinstance(content, dict):
        response = JSONResponse(content, status_code=status)
    else:
        response = Response(content, status_code=status)
    response.headers.update(headers)
    return response


def _server_error(status: int, content: Any) -> Response:
    """pygeoapi's 5xx answer, reduced to its exception code and our request id: its description
    may quote the database (the provider logged the cause with the same id)."""
    code = None
    try:
        document = json.loads(content) if isinstance(content, (str, bytes)) else content
        code = str(document["code"]) if isinstance(document, dict) and "code" in document else None
    except ValueError:
        pass
    return server_error(status, f"pygeoapi answered {status}: {str(content)[:2000]}", code=code)


def _call_in_thread(loop: asyncio.AbstractEventLoop, fn: ApiFunction, *args: Any) -> Any:
    asyncio.set_event_loop(loop)  # some pygeoapi paths look for a loop
    return fn(*args)


def _items_request(service: PygeoapiService, request: Request) -> ItemsRequest | None:
    """The typed parameters of an items request (:func:`ogcapi.parameters.items_parameters`; None
    for an unknown collection: pygeoapi's 404); InvalidQuery names a wrong one."""
    collection_id = request.path_params["collection_id"]
    api = service.api()
    crs_list = _supported_crs(api, collection_id)
    if crs_list is None:
        return None
    try:
        properties = service.store.layer(collection_id).field_types
    except CIMError:
        return None  # pygeoapi answers the unknown collection with its 404
    values = parameters.items_parameters(request.query_params, crs_list, properties)
    return ItemsRequest(f"{api.get_collections_url()}/{collection_id}/items", tuple(request.query_params.multi_items()), values)


def _item_request(service: PygeoapiService, request: Request) -> ItemRequest:
    """The feature id of an item request (:func:`ogcapi.parameters.feature_id`)."""
    return ItemRequest(parameters.feature_id(request.path_params["item_id"]))


def _endpoint(
    service: PygeoapiService,
    fn: ApiFunction,
    *path_params: str,
    check_format: bool = True,
    typed: Callable[[PygeoapiService, Request], ItemsRequest | ItemRequest | None] | None = None,
    features: bool = False,
):
    """An endpoint calling pygeoapi's ``fn``; ``typed`` makes the request's typed values for the
    side channel (raising InvalidQuery: 400); ``features``: its JSON responses are GeoJSON."""

    async def endpoint(request: Request) -> Response:
        # a new release is opened and pygeoapi's API rebuilt in a thread, never on the event loop;
        # while the release is the one the API was built for, no thread hop (a fifth of a feature's time)
        if not service.is_current():
            await asyncio.get_running_loop().run_in_executor(None, service.api)
        values = None
        if typed is not None:
            try:
                values = typed(service, request)
            except CIMError as exc:
                return cim_error_response(exc)
        cursor = values.values.cursor if isinstance(values, ItemsRequest) else None
        if cursor is not None and "offset" not in request.query_params:
            # pygeoapi numbers the page (and links the previous one) from the cursor's position
            scope = {**request.scope, "query_string": f"{request.url.query}&offset={cursor.position}".encode()}
            request = Request(scope, request.receive)
        api = service.api()
        api_request = await APIRequest.from_starlette(request, api.locales)
        if isinstance(values, ItemsRequest) and api_request.format in (F_JSON, None):  # None: pygeoapi's default, GeoJSON
            values = replace(values, geojson_output=True)
        if check_format and not api_request.is_valid():
            headers, status, content = api.get_format_exception(api_request)
        else:
            args = [request.path_params[p] for p in path_params]
            loop = asyncio.get_running_loop()
            context = contextvars.copy_context()
            context.run(CURRENT.set, values)
            headers, status, content = await loop.run_in_executor(
                None, context.run, _call_in_thread, loop, fn, api, api_request, *args
            )
            if features and status == HTTPStatus.OK and headers.get("Content-Type") == "application/json":
                # pygeoapi labels GeoJSON application/json; Part 1 (/req/geojson/content) wants geo+json
                headers["Content-Type"] = GEOJSON
            if status >= 500:
                return _server_error(status, content)
            if status != HTTPStatus.NO_CONTENT:
                content = apply_gzip(headers, content)
        return _to_response(headers, status, content)

    return endpoint


def _feature_schema(service: PygeoapiService) -> Callable[[Request], Any]:
    async def endpoint(request: Request) -> Response:
        try:
            info = service.store.layer(request.path_params["collection_id"])
        except CIMError as exc:
            return cim_error_response(exc)
        return JSONResponse(feature_schema(info, service.server_url), media_type="application/schema+json")

    return endpoint


def routes(service: PygeoapiService) -> list[BaseRoute]:
    """The OGC API - Features routes (and pygeoapi's static files for its HTML pages)."""
    items_patch.install()
    crs_patch.install()
    json_patch.install()
    static = Path(pygeoapi.__file__).parent / "static"
    return [
        Route("/", _endpoint(service, core_api.landing_page), name="landing_page"),
        Route("/openapi", _endpoint(service, core_api.openapi_), name="openapi"),
        Route("/conformance", _endpoint(service, conformance), name="conformance"),
        Route("/collections", _endpoint(service, core_api.describe_collections), name="collections"),
        Route(
            "/collections/{collection_id}",
            _endpoint(service, core_api.describe_collections, "collection_id"),
            name="collection",
        ),
        Route(
            "/collections/{collection_id}/queryables",
            _endpoint(service, itemtypes_api.get_collection_queryables, "collection_id"),
            name="queryables",
        ),
        Route("/collections/{collection_id}/feature-schema", _feature_schema(service), name="feature_schema"),
        Route(
            "/collections/{collection_id}/schema",
            _endpoint(service, core_api.get_collection_schema, "collection_id"),
            name="schema",
        ),
        Route(
            "/collections/{collection_id}/items",
            _endpoint(
                service, itemtypes_api.get_collection_items, "collection_id", check_format=False, typed=_items_request,
                features=True,
            ),
            name="items",
        ),
        Route(
            "/collections/{collection_id}/items/{item_id}",
            _endpoint(
                service, itemtypes_api.get_collection_item, "collection_id", "item_id", check_format=False, typed=_item_request,
                features=True,
            ),
            name="item",
        ),
        Mount("/static", app=StaticFiles(directory=static), name="static"),
    ]
