"""Raster collections (DEM, imagery) beside pygeoapi's feature collections.

pygeoapi's collections are made from feature providers; raster layers have no features. This ASGI
middleware answers for them: ``/collections/{id}`` with our collection document (extent, storage
CRS, a ``tilesets-map`` link to ``/collections/{id}/map/tiles``), and ``404`` (OGC exception JSON)
for the feature resources a raster collection does not have (``/items``, ``/items/{id}``,
``/queryables``, ``/schema``, ``/feature-schema``); an elevation layer's document links its terrain
(``alternate``, :func:`terrain_link`). ``/collections`` lists them through
ogcapi/document_additions.py, which appends :func:`raster_collection` documents.
"""

from __future__ import annotations

import json
from typing import Any, Callable

from starlette.types import ASGIApp, Receive, Scope, Send

from cim.crs import CRS84_URI, crs_uri
from cim.store import LayerInfo
from tiles.map_documents import REL_TILESETS_MAP

#: the feature resources of a collection, which raster collections lack
FEATURE_RESOURCES = frozenset({"items", "queryables", "schema", "feature-schema"})


def raster_collection(info: LayerInfo, base: str) -> dict[str, Any]:
    """The OGC API collection document of a raster layer."""
    spec = info.spec
    here = f"{base}/collections/{info.name}"
    return {
        "id": info.name,
        "title": spec.title,
        "description": spec.description,
        "keywords": list(spec.keywords) or [spec.name],
        "extent": {"spatial": {"bbox": [list(info.bbox or (-180.0, -90.0, 180.0, 90.0))], "crs": CRS84_URI}},
        "dataType": "map",
        "storageCrs": crs_uri(info.srid),
        "links": [
            {"rel": "self", "type": "application/json", "title": "This document as JSON", "href": here},
            {"rel": REL_TILESETS_MAP, "type": "application/json", "title": f"Map tilesets of {info.name}",
             "href": f"{here}/map/tiles"},
        ] + ([terrain_link(info.name, here)] if spec.raster == "elevation" else []),
    }


def terrain_link(name: str, here: str) -> dict[str, str]:
    """The DEM's terrain (ogcapi/terrain_routes.py). No link relation is registered for a terrain
    mesh; the quantized-mesh tiles are another representation of the DEM's heights, hence
    ``alternate``, described by the title and pointing at the layer.json CesiumJS starts from."""
    return {"rel": "alternate", "type": "application/json",
            "title": f"Terrain of {name} as quantized-mesh-1.0 tiles for CesiumJS (layer.json)",
            "href": f"{here}/terrain/layer.json"}


class RasterCollections:
    """ASGI middleware; ``rasters()`` gives the current release's raster layers."""

    def __init__(self, app: ASGIApp, server_url: str, rasters: Callable[[], list[LayerInfo]]) -> None:
        self.app = app
        self.base = server_url.rstrip("/")
        self.rasters = rasters

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        parts = scope["path"].strip("/").split("/") if scope["type"] == "http" else []
        if len(parts) < 2 or parts[0] != "collections" or (len(parts) > 2 and parts[2] not in FEATURE_RESOURCES):
            await self.app(scope, receive, send)
            return
        info = next((i for i in self.rasters() if i.name == parts[1]), None)
        if info is None:
            await self.app(scope, receive, send)
            return
        if len(parts) == 2 and scope["method"] in ("GET", "HEAD"):
            status, doc = 200, raster_collection(info, self.base)
        elif len(parts) == 2:
            status, doc = 405, _exception("MethodNotAllowed", f"{scope['method']} is not allowed on /collections/{info.name}")
        else:
            status, doc = 404, _exception(
                "NotFound",
                f"collection {info.name!r} is a raster layer: it has no {parts[2]}; its map tiles are at "
                f"/collections/{info.name}/map/tiles",
            )
        body = json.dumps(doc, ensure_ascii=False).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body if scope["method"] != "HEAD" else b""})


def _exception(code: str, description: str) -> dict[str, str]:
    return {"code": code, "type": code, "description": description}
