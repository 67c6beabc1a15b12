"""JSON documents of the composite base map's map tiles (``/map/tiles``, ``/map/tiles/{tileMatrixSetId}``):
the dataset-level map tilesets of OGC API - Tiles, one per tile matrix set (``dataType: map``)."""

from __future__ import annotations

from typing import Any

from morecantile import TileMatrixSet

from cim.crs import CRS84_URI
from cim.tms import WEB_MERCATOR, limits
from tiles.basemap_map import PNG_MEDIA_TYPE, zooms
from tiles.documents import JSON, TILE_TEMPLATE, tileset_list_of, tileset_summary
from tiles.tilesets import Tileset

TITLE = "CIM base map (PNG map tiles)"


def basemap_map_prefix(base: str) -> str:
    return f"{base}/map/tiles"


def basemap_map_url(base: str, release: int | None) -> str:
    """The ``{z}/{y}/{x}`` WebMercatorQuad URL template (pinned to ``release``)."""
    pin = f"?release={release}" if release is not None else ""
    return f"{basemap_map_prefix(base)}/{WEB_MERCATOR}/{{z}}/{{y}}/{{x}}{pin}"


def basemap_map_tileset_list(base: str) -> dict[str, Any]:
    """``/map/tiles``: one map tileset per TileMatrixSet."""
    return tileset_list_of(TITLE, "map", basemap_map_prefix(base), base)


def basemap_map_tileset_metadata(ts: Tileset, tms: TileMatrixSet, base: str) -> dict[str, Any]:
    """Tileset metadata: the templated PNG ``item`` link, the vector tileset it is drawn from, limits."""
    doc = tileset_summary(TITLE, "map", tms, basemap_map_prefix(base), base)
    doc["description"] = "The composite base map drawn as PNG map tiles from its vector tiles (/tiles)."
    here = f"{basemap_map_prefix(base)}/{tms.id}"
    doc["links"] += [
        {"rel": "item", "type": PNG_MEDIA_TYPE, "templated": True, "title": "PNG map tile", "href": f"{here}/{TILE_TEMPLATE}"},
        {"rel": "related", "type": JSON, "title": "The vector tileset drawn", "href": f"{base}/tiles/{tms.id}"},
    ]
    if ts.bbox is not None:
        bbox = ts.bbox
        doc["boundingBox"] = {"lowerLeft": [bbox[0], bbox[1]], "upperRight": [bbox[2], bbox[3]], "crs": CRS84_URI}
        doc["tileMatrixSetLimits"] = limits(tms, bbox, zooms(ts, tms))
    return doc
