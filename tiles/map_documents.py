"""JSON documents of map tilesets: the tileset list (``/collections/{id}/map/tiles``), tileset
metadata per tile matrix set (``dataType: map``) and TileJSON 3.0 for MapLibre (raster / raster-dem sources)."""

from __future__ import annotations

from typing import Any

from morecantile import TileMatrixSet

from cim.crs import CRS84_URI
from cim.tms import WEB_MERCATOR, limits, tile_matrix_sets
from tiles.documents import JSON, REL_GEODATA, TILE_TEMPLATE, tileset_list_of, tileset_summary
from tiles.map_tilesets import DEM_ENCODING, FORMATS, STYLE_TITLES, MapTileset

REL_TILESETS_MAP = "http://www.opengis.net/def/rel/ogc/1.0/tilesets-map"


def map_prefix(base: str, ts: MapTileset) -> str:
    return f"{base}/collections/{ts.id}/map/tiles"


def _query(ts: MapTileset, style: str, fmt: str, release: int | None = None) -> str:
    params = [f"release={release}"] if release is not None else []
    if style != ts.default_style:
        params.append(f"style={style}")
    params.append(f"f={fmt}")
    return "?" + "&".join(params)


def _summary(ts: MapTileset, tms: TileMatrixSet, base: str) -> dict[str, Any]:
    return tileset_summary(ts.title, "map", tms, map_prefix(base, ts), base)


def map_tileset_list(ts: MapTileset, base: str) -> dict[str, Any]:
    """``/collections/{id}/map/tiles``: one map tileset per TileMatrixSet."""
    return tileset_list_of(ts.title, "map", map_prefix(base, ts), base)


def map_tileset_metadata(ts: MapTileset, tms: TileMatrixSet, base: str) -> dict[str, Any]:
    """Tileset metadata: a templated ``item`` link per style and format, limits, the styles."""
    doc = _summary(ts, tms, base)
    doc["description"] = ts.info.spec.description
    here = f"{map_prefix(base, ts)}/{tms.id}"
    for style, formats in ts.styles.items():
        for fmt in formats:
            doc["links"].append(
                {"rel": "item", "type": FORMATS[fmt][1], "templated": True,
                 "title": f"{STYLE_TITLES[style]}, {fmt.upper()}",
                 "href": f"{here}/{TILE_TEMPLATE}{_query(ts, style, fmt)}"}
            )
    if tms.id == WEB_MERCATOR:
        for style in ts.styles:
            suffix = "" if style == ts.default_style else f"?style={style}"
            doc["links"].append(
                {"rel": "describedby", "type": JSON, "title": f"TileJSON ({style})", "href": f"{here}/tilejson.json{suffix}"}
            )
    doc["links"].append({"rel": REL_GEODATA, "type": JSON, "title": ts.title, "href": f"{base}/collections/{ts.id}"})
    zooms = ts.zooms(tms)
    if ts.bbox is not None:
        bbox = ts.bbox
        doc["boundingBox"] = {"lowerLeft": [bbox[0], bbox[1]], "upperRight": [bbox[2], bbox[3]], "crs": CRS84_URI}
        doc["tileMatrixSetLimits"] = limits(tms, bbox, zooms)
    doc["styles"] = [
        {"id": style, "title": STYLE_TITLES[style], "formats": [FORMATS[f][1] for f in formats],
         **({"encoding": DEM_ENCODING[style]} if style in DEM_ENCODING else {})}
        for style, formats in ts.styles.items()
    ]
    return doc


def map_tile_url(base: str, ts: MapTileset, style: str, fmt: str, release: int | None) -> str:
    """The ``{z}/{y}/{x}`` WebMercatorQuad URL template of a style (pinned to ``release``)."""
    return f"{map_prefix(base, ts)}/{WEB_MERCATOR}/{{z}}/{{y}}/{{x}}{_query(ts, style, fmt, release)}"


def map_tilejson(ts: MapTileset, style: str, base: str, release: int) -> dict[str, Any]:
    """TileJSON 3.0.0 of one style's WebMercatorQuad tiles (PNG), pinned to the current release."""
    tms = tile_matrix_sets()[WEB_MERCATOR]
    zooms = ts.zooms(tms)
    bbox = ts.bbox or (-180.0, -85.0511287798066, 180.0, 85.0511287798066)
    doc: dict[str, Any] = {
        "tilejson": "3.0.0",
        "name": f"{ts.title} ({style})",
        "description": ts.info.spec.description,
        "version": f"1.0.{release}",
        "scheme": "xyz",
        "tiles": [map_tile_url(base, ts, style, ts.styles[style][0], release)],
        "minzoom": zooms.start,
        "maxzoom": zooms.stop - 1,
        "bounds": list(bbox),
        "center": [(bbox[0] + bbox[2]) / 2, (bbox[1] + bbox[3]) / 2, min(zooms.stop - 1, 13)],
    }
    if style in DEM_ENCODING:
        doc["encoding"] = DEM_ENCODING[style]  # what a MapLibre raster-dem source needs
    return doc
