"""The change feed: ``GET /collections/{collectionId}/changes?from=N[&to=M][&limit=][&cursor=][&crs=]``.

A GeoJSON FeatureCollection of the features of the collection added, removed and changed from
release N to release M (default: the current release, with its API edits), each with its
``change`` member, paged by an opaque cursor (``next`` link); :mod:`cim.sharing.changes` does the
work, ogcapi/parameters.py reads the query. The format is documented in docs/sharing.md.
Mounted before pygeoapi's collection routes; restricted collections need their role
(ogcapi/access.py). Every error is an OGC exception JSON (400, 404, 410; never a 5xx for bad input).
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlencode

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from cim.crs import CRS84_URI, axis_order_is_yx, parse_crs, srid_of
from cim.errors import CIMError
from cim.sharing.changes import changes
from ogcapi import parameters
from ogcapi.errors import ogc_exception

#: the link relation of a collection's change feed (no OGC relation names one)
REL_CHANGES = "changes"
GEOJSON = "application/geo+json"


def changes_path(collection_id: str) -> str:
    return f"/collections/{collection_id}/changes"


def changes_link(base: str, collection_id: str) -> dict[str, str]:
    """The link from a collection document to its change feed (a template: ``from`` is required)."""
    return {
        "rel": REL_CHANGES, "type": GEOJSON, "title": f"Changes of {collection_id} between releases (add ?from=N)",
        "href": f"{base}{changes_path(collection_id)}",
    }  # fmt: skip


def changes_routes(service: Any) -> list[Route]:
    """The change feed over ``service`` (an ogcapi.pygeoapi.PygeoapiService: store, links, CRSs)."""
    store = service.store

    async def feed(request: Request) -> Response:
        collection_id = request.path_params["collection_id"]
        try:
            supported = service.supported_crs(collection_id) or [CRS84_URI]
            values = parameters.changes_parameters(request.query_params.multi_items(), supported)
            target = parse_crs(values.crs)
            out_srid, flip = srid_of(target), axis_order_is_yx(target)
            loop = asyncio.get_running_loop()
            page = await loop.run_in_executor(
                None,
                lambda: changes(
                    store, collection_id, values.from_release, values.to_release, values.limit, values.cursor, out_srid, flip
                ),
            )
        except CIMError as exc:
            return ogc_exception(exc.status, str(exc), exc.code)
        doc = page.feature_collection()
        href = f"{service.server_url.rstrip('/')}{changes_path(collection_id)}"
        query = {"from": values.from_release, "to": page.to_release, "limit": values.limit}
        if values.crs_given:
            query["crs"] = values.crs
        self_query = dict(query, **({"cursor": values.cursor} if values.cursor else {}))
        links = [{"rel": "self", "type": GEOJSON, "title": "This page", "href": f"{href}?{urlencode(self_query)}"}]
        if page.next_cursor is not None:
            next_query = dict(query, cursor=page.next_cursor)
            links.append({"rel": "next", "type": GEOJSON, "title": "The next page", "href": f"{href}?{urlencode(next_query)}"})
        links.append({"rel": "collection", "type": "application/json", "title": collection_id,
                      "href": f"{service.server_url.rstrip('/')}/collections/{collection_id}"})  # fmt: skip
        doc["links"] = links
        return Response(
            orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY), media_type=GEOJSON,
            headers={"Content-Crs": f"<{values.crs}>"},
        )  # fmt: skip

    return [Route("/collections/{collection_id}/changes", feed, methods=["GET"], name="collection_changes")]


__all__ = ["REL_CHANGES", "changes_link", "changes_path", "changes_routes"]
