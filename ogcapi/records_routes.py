"""The layer catalog as an OGC API – Records collection, ``catalog`` (records: cim/sharing/records.py).

- ``GET /collections/catalog``: the records collection (``itemType: record``, ``type: Collection``,
  extent of every record, links to its items, queryables and sortables);
- ``GET /collections/catalog/items``: the records as a GeoJSON FeatureCollection, searched with
  ``q``, ``bbox``, ``datetime``, ``type``, ``externalIds``, ``ids``, sorted by ``sortby``, paged
  with ``limit`` and ``offset`` (next/prev links); ``numberMatched`` and ``numberReturned``;
- ``GET /collections/catalog/items/{recordId}`` (``buildings@r3``): one record;
- ``GET /collections/catalog/queryables`` and ``/sortables``: JSON Schemas of what the search and
  ``sortby`` use.
JSON, or HTML with ``f=html`` / a browser's ``Accept``. Mounted before pygeoapi's
``/collections/{collectionId}`` routes. The records of the kept releases are made once per set of
releases (a publish, a rollback or a prune makes them again).
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from cim.crs import CRS84_URI
from cim.errors import NotFound
from cim.sharing.records import CATALOG, catalog_records, parse_record_id
from cim.sharing.records_search import SORTABLES, search
from cim.store import Store
from ogcapi import parameters
from ogcapi.records_html import collection_page, record_page, records_page
from ogcapi.records_parameters import records_query

JSON, GEOJSON, HTML, SCHEMA = "application/json", "application/geo+json", "text/html", "application/schema+json"
#: records are in CRS84 (Features Part 2's header, as on every collection's items)
CONTENT_CRS = {"Content-Crs": f"<{CRS84_URI}>"}
REL_QUERYABLES = "http://www.opengis.net/def/rel/ogc/1.0/queryables"
REL_SORTABLES = "http://www.opengis.net/def/rel/ogc/1.0/sortables"
TITLE = "Layer catalog (数据目录)"
DESCRIPTION = (
    "One record per layer and release of the base map, with its lineage: the sources it came from (file, format, "
    "declared and embedded CRS, sha256, the authoritative source and those verifying it), the cross-checks, QA counts, "
    "build time and config; links to the layer's collection, tilesets, change feed and downloads."
)
#: the record properties the search reads (queryables) and their JSON Schema types
QUERYABLES: dict[str, dict[str, Any]] = {
    "id": {"type": "string", "description": "layer@rN"},
    "type": {"type": "string", "enum": ["dataset"]},
    "title": {"type": "string"},
    "description": {"type": "string"},
    "keywords": {"type": "array", "items": {"type": "string"}},
    "themes": {"type": "array", "items": {"type": "object"}},
    "externalIds": {"type": "array", "items": {"type": "object"}, "description": "sha256 of each source file"},
    "geometry": {"format": "geometry-polygon"},
    "time": {"type": "object", "description": "the period the release was the newest"},
    "layer": {"type": "string"},
    "release": {"type": "integer"},
}
_SORT_TYPES = {"title": "string", "created": "string", "updated": "string", "layer": "string", "release": "integer", "count": "integer"}


class CatalogRecords:
    """The records of a store's kept releases, made again only when the releases change."""

    def __init__(self, store: Store, base: str) -> None:
        self.store = store
        self.base = base
        self._lock = threading.Lock()
        self._made: tuple[tuple[tuple[int, bool], ...], list[dict[str, Any]]] | None = None

    def records(self) -> list[dict[str, Any]]:
        key = tuple((r.number, r.current) for r in self.store.releases())
        with self._lock:
            if self._made is not None and self._made[0] == key:
                return self._made[1]
        made = catalog_records(self.store, self.base)
        with self._lock:
            self._made = (key, made)
        return made

    def collection(self) -> dict[str, Any]:
        return collection_document(self.records(), self.base)


def collection_document(records: list[dict[str, Any]], base: str) -> dict[str, Any]:
    """The records collection: its extent (every record's), links to items, queryables, sortables."""
    here = f"{base}/collections/{CATALOG}"
    boxes = [r["geometry"]["coordinates"][0] for r in records if r.get("geometry")]
    bbox = (
        [min(b[0][0] for b in boxes), min(b[0][1] for b in boxes), max(b[2][0] for b in boxes), max(b[2][1] for b in boxes)]
        if boxes else [-180.0, -90.0, 180.0, 90.0]
    )  # fmt: skip
    starts = sorted(r["time"]["interval"][0] for r in records)
    return {
        "id": CATALOG,
        "type": "Collection",
        "itemType": "record",
        "title": TITLE,
        "description": DESCRIPTION,
        "keywords": ["catalog", "数据目录", "lineage", "血缘", "metadata", "元数据"],
        "language": {"code": "en"},
        "recordLanguages": [{"code": "en"}, {"code": "zh"}],
        "extent": {
            "spatial": {"bbox": [bbox], "crs": CRS84_URI},
            "temporal": {"interval": [[starts[0] if starts else None, None]]},
        },
        "crs": [CRS84_URI],
        "storageCrs": CRS84_URI,
        "links": [
            {"rel": "self", "type": JSON, "title": "This collection", "href": here},
            {"rel": "alternate", "type": HTML, "title": "This collection as HTML", "href": f"{here}?f=html"},
            {"rel": "items", "type": GEOJSON, "title": "The records", "href": f"{here}/items"},
            {"rel": "items", "type": HTML, "title": "The records as HTML", "href": f"{here}/items?f=html"},
            {"rel": REL_QUERYABLES, "type": SCHEMA, "title": "Queryables", "href": f"{here}/queryables"},
            {"rel": REL_SORTABLES, "type": SCHEMA, "title": "Sortables", "href": f"{here}/sortables"},
        ],
    }


def _schema(base: str, name: str, title: str, properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "$schema": "https://json-schema.org/draft/2019-09/schema",
        "$id": f"{base}/collections/{CATALOG}/{name}",
        "type": "object",
        "title": title,
        "properties": properties,
        "additionalProperties": False,
    }


def _page_url(here: str, request: Request, offset: int, html: bool = False) -> str:
    pairs = [(k, v) for k, v in request.query_params.multi_items() if k not in ("offset", "f")]
    if offset:
        pairs.append(("offset", str(offset)))
    if html:
        pairs.append(("f", "html"))
    return f"{here}?{urlencode(pairs)}" if pairs else here


def records_routes(store: Store, server_url: str, catalog: CatalogRecords | None = None) -> list[Route]:
    base = server_url.rstrip("/")
    catalog = catalog or CatalogRecords(store, base)
    here = f"{base}/collections/{CATALOG}"

    def as_html(request: Request, what: str) -> bool:
        return parameters.wants_html(request.query_params.get("f"), request.headers.get("accept"), what)

    async def collection(request: Request) -> Response:
        html = as_html(request, "the catalog")
        doc = await run_in_threadpool(catalog.collection)
        if html:
            return Response(collection_page(doc, base), media_type=HTML)
        return JSONResponse(doc)

    async def items(request: Request) -> Response:
        html = as_html(request, "records")
        query = records_query(request.query_params.multi_items())
        records = await run_in_threadpool(catalog.records)
        page, matched = search(records, query)
        url = f"{here}/items"
        links = [
            {"rel": "self", "type": GEOJSON, "title": "This page", "href": _page_url(url, request, query.offset)},
            {"rel": "alternate", "type": HTML, "title": "This page as HTML", "href": _page_url(url, request, query.offset, True)},
            {"rel": "collection", "type": JSON, "title": TITLE, "href": here},
        ]  # fmt: skip
        if query.offset + len(page) < matched:
            links.append({"rel": "next", "type": GEOJSON, "title": "Next page", "href": _page_url(url, request, query.offset + query.limit)})
        if query.offset > 0:
            links.append({"rel": "prev", "type": GEOJSON, "title": "Previous page", "href": _page_url(url, request, max(0, query.offset - query.limit))})
        doc = {
            "type": "FeatureCollection", "features": page, "numberMatched": matched, "numberReturned": len(page),
            "timeStamp": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"), "links": links,
        }  # fmt: skip
        if html:
            return Response(records_page(doc, base, request.query_params), media_type=HTML)
        return JSONResponse(doc, media_type=GEOJSON, headers=CONTENT_CRS)

    async def item(request: Request) -> Response:
        html = as_html(request, "records")
        for name in ("crs",):
            if request.query_params.get(name):
                parameters.crs(request.query_params[name], name, [CRS84_URI])
        rid = parse_record_id(request.path_params["recordId"])  # NotFound for an id no record can have
        records = await run_in_threadpool(catalog.records)
        found = next((r for r in records if r["id"] == str(rid)), None)
        if found is None:
            await run_in_threadpool(store.release_layers, rid.release)  # ReleaseGone (410) for a pruned release
            raise NotFound(f"no record {str(rid)!r}: release {rid.release} has no built layer {rid.layer!r}")
        if html:
            return Response(record_page(found, base), media_type=HTML)
        return JSONResponse(found, media_type=GEOJSON, headers=CONTENT_CRS)

    async def queryables(request: Request) -> Response:
        parameters.only_format(request.query_params.get("f"), "json", "queryables are JSON Schema")
        return JSONResponse(_schema(base, "queryables", "Queryables of the layer catalog", QUERYABLES), media_type=SCHEMA)

    async def sortables(request: Request) -> Response:
        parameters.only_format(request.query_params.get("f"), "json", "sortables are JSON Schema")
        properties = {name: {"type": _SORT_TYPES[name], "description": text} for name, text in SORTABLES.items()}
        return JSONResponse(_schema(base, "sortables", "Sortables of the layer catalog", properties), media_type=SCHEMA)

    return [
        Route(f"/collections/{CATALOG}", collection, methods=["GET"]),
        Route(f"/collections/{CATALOG}/items", items, methods=["GET"]),
        Route(f"/collections/{CATALOG}/items/{{recordId}}", item, methods=["GET"]),
        Route(f"/collections/{CATALOG}/queryables", queryables, methods=["GET"]),
        Route(f"/collections/{CATALOG}/sortables", sortables, methods=["GET"]),
    ]
