"""Impact of a warning (or any polygon): ``GET /collections/warnings/items/{featureId}/impact`` and
``POST /impact`` (a GeoJSON Polygon/MultiPolygon, or a Feature of one, in CRS84).

Both answer the summary of :func:`cim.impact.impact` as JSON (``f=json``, the default) or an HTML table
(``f=html``); ``lists=buildings,pois,parcels,roads`` adds those features as GeoJSON FeatureCollections
(CRS84). Every error is an OGC exception JSON: 404 for an unknown warning, 400 for a bad polygon or
parameter or a list longer than ``max_features`` (10,000), 413 for a body over ``max_body_bytes``, 415
for a body not sent as JSON. docs/warnings/impact.md.
"""

from __future__ import annotations

import asyncio
import html
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from cim.errors import BadInput, CIMError, FeatureNotFound
from cim.impact import LISTS, Impact, impact
from cim.limits import limits
from cim.store import Store, TooLarge, check_depth
from ogcapi import parameters
from ogcapi.bodies import media_type, read_at_most
from ogcapi.errors import ogc_exception

JSON_TYPES = ("application/geo+json", "application/json")
KNOWN_PARAMETERS = {"lists", "f"}


def impact_routes(store: Store) -> list[Route]:
    """The impact routes over ``store`` (mount them before pygeoapi's collection routes)."""

    async def of_warning(request: Request) -> Response:
        try:
            lists, fmt = _options(request)
            text = request.path_params["featureId"]
            fid = parameters.feature_id(text)
            if fid is None:
                raise FeatureNotFound(f"no feature {text[:40]!r} in 'warnings'")
            loop = asyncio.get_running_loop()
            feature = await loop.run_in_executor(None, lambda: store.get_feature("warnings", fid, out_srid=4326))
            if not feature.get("geometry"):
                raise BadInput(f"warning {fid} has no geometry: nothing to analyse")
            result = await loop.run_in_executor(None, lambda: _analyse(store, feature["geometry"], lists))
            return _answer(result, lists, fmt, f"warning {fid}", {"warning": {"id": fid, **_warning_summary(feature)}})
        except CIMError as exc:
            return ogc_exception(exc.status, str(exc), exc.code)

    async def of_polygon(request: Request) -> Response:
        try:
            lists, fmt = _options(request)
            area = _json_body(await _read_body(request))
            loop = asyncio.get_running_loop()
            result = await loop.run_in_executor(None, lambda: _analyse(store, area, lists))
            return _answer(result, lists, fmt, "the polygon", {})
        except CIMError as exc:
            return ogc_exception(exc.status, str(exc), exc.code)

    return [
        Route("/collections/warnings/items/{featureId}/impact", of_warning, methods=["GET"], name="warning_impact"),
        Route("/impact", of_polygon, methods=["POST"], name="impact"),
    ]


def _analyse(store: Store, area: Any, lists: list[str]) -> Impact:
    import shapely.errors

    try:
        result = impact(store, area, area_crs=4326, lists=lists)
    except shapely.errors.ShapelyError as exc:  # GEOS on a degenerate polygon the checks let through
        raise BadInput(f"the area cannot be analysed: {str(exc)[:200]}") from None
    most = limits().max_features
    for name, frame in result.lists.items():
        if len(frame) > most:
            raise BadInput(
                f"lists={name} would return {len(frame)} features, more than max_features ({most}): ask without"
                f" lists={name} (the summary has every figure) or for a smaller area"
            )
    return result


def _options(request: Request) -> tuple[list[str], str]:
    query = request.query_params
    unknown = sorted(set(query.keys()) - KNOWN_PARAMETERS)
    if unknown:
        raise BadInput(f"unknown parameter {unknown[0][:40]!r}: this resource takes lists and f")
    fmt = query.get("f", "json")
    if fmt not in ("json", "html"):
        raise BadInput(f"f must be json or html, not {fmt[:40]!r}")
    lists = [name.strip() for name in query.get("lists", "").split(",") if name.strip()]
    if bad := [name for name in lists if name not in LISTS]:
        raise BadInput(f"unknown list {bad[0][:40]!r}: lists takes {', '.join(LISTS)} (comma separated)")
    return lists, fmt


def _warning_summary(feature: dict[str, Any]) -> dict[str, Any]:
    props = feature.get("properties") or {}
    return {k: props.get(k) for k in ("identifier", "event", "severity", "colour", "headline", "valid_from", "valid_until")}


def _answer(result: Impact, lists: list[str], fmt: str, title: str, extra: dict[str, Any]) -> Response:
    doc = {**extra, **result.to_json(lists)}
    if fmt == "html":
        return HTMLResponse(_html(doc, title))
    return Response(orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY), media_type="application/json")


def _html(doc: dict[str, Any], title: str) -> str:
    def table(rows: list[dict[str, Any]]) -> str:
        if not rows:
            return "<p>none</p>"
        head = "".join(f"<th>{html.escape(str(k))}</th>" for k in rows[0])
        body = "".join("<tr>" + "".join(f"<td>{html.escape(_cell(v))}</td>" for v in row.values()) + "</tr>" for row in rows)
        return f"<table><tr>{head}</tr>{body}</table>"

    totals = table([doc["totals"]])
    parts = [f"<h1>Impact of {html.escape(title)}</h1>", "<h2>Totals</h2>", totals,
             "<h2>By division</h2>", table(doc["by_division"]),
             "<h2>POIs by category</h2>", table(doc["pois_by_category"]),
             "<h2>Roads by class</h2>", table(doc["roads_by_class"]),
             f"<p>people from: {html.escape(doc['people_source'])}; absent layers: {html.escape(', '.join(doc['absent']) or 'none')}</p>"]
    return "<!doctype html><html><head><meta charset='utf-8'><title>Impact</title></head><body>" + "".join(parts) + "</body></html>"


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.1f}"
    return "" if value is None else str(value)


async def _read_body(request: Request) -> bytes:
    media_type(request, JSON_TYPES, "the polygon")
    most = limits().max_body_bytes
    return await read_at_most(request, most, TooLarge(f"the body is larger than {most} bytes"))


def _json_body(raw: bytes) -> Any:
    if not raw.strip():
        raise BadInput("the request has no body: send a GeoJSON Polygon or MultiPolygon (or a Feature of one)")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadInput(f"the body is not JSON (a GeoJSON polygon was expected): {str(exc)[:200]}") from None
    geometry = body.get("geometry") if isinstance(body, dict) and body.get("type") == "Feature" else body
    if not isinstance(geometry, dict):
        raise BadInput("the body must be a GeoJSON Polygon or MultiPolygon, or a Feature of one")
    check_depth({**geometry, "coordinates": None})
    coordinates = geometry.get("coordinates")
    if not _nested_at_most(coordinates, 3):
        raise BadInput("the polygon's coordinates are nested deeper than a MultiPolygon's")
    return geometry


def _nested_at_most(value: Any, depth: int) -> bool:
    """Whether ``value`` nests lists at most ``depth`` deep below positions (without recursion)."""
    stack = [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, list):
            if level > depth:
                return False
            stack.extend((child, level + 1) for child in item if isinstance(child, list))
    return True
