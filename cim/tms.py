"""The TileMatrixSets tiles are served in: WebMercatorQuad, WorldCRS84Quad and CGCS2000Quad.

The first two come from morecantile's copy of the OGC TileMatrixSet registry. ``CGCS2000Quad`` is
our own tile matrix set, laid out like WorldCRS84Quad (2 × 1 tiles at matrix 0, halving per level) but on the
CGCS2000 geographic CRS (EPSG:4490, axis order latitude, longitude); it is not an OGC-registered
set, so it has no ``uri``. Tile coordinates everywhere are OGC order: tileMatrix, tileRow, tileCol.
"""

from __future__ import annotations

import math
from functools import cache
from typing import Any

import morecantile
from morecantile import Tile, TileMatrixSet
from pyproj import CRS

from cim.crs import Bounds, parse_crs, transform_bbox, transformer
from cim.errors import NotFound

WEB_MERCATOR = "WebMercatorQuad"
CRS84_QUAD = "WorldCRS84Quad"
CGCS2000_QUAD = "CGCS2000Quad"
#: the ids of the tile matrix sets served, in the order they are listed
TMS_IDS = (WEB_MERCATOR, CRS84_QUAD, CGCS2000_QUAD)
#: EPSG code of each tile matrix set's CRS as the store's SQL names it (CRS84 shares EPSG:4326's lon/lat)
TILE_SRID: dict[str, int] = {WEB_MERCATOR: 3857, CRS84_QUAD: 4326, CGCS2000_QUAD: 4490}
WEB_MERCATOR_SRID = TILE_SRID[WEB_MERCATOR]
#: half the width of the EPSG:3857 world (WebMercatorQuad's origin is at minus this)
HALF_WORLD = 20037508.342789244


def _cgcs2000_quad() -> TileMatrixSet:
    return TileMatrixSet.custom(
        [-180.0, -90.0, 180.0, 90.0],
        CRS.from_epsg(4490),
        matrix_scale=[2, 1],
        minzoom=0,
        maxzoom=23,
        id=CGCS2000_QUAD,
        title="CGCS2000 quad tile matrix set (EPSG:4490), laid out like WorldCRS84Quad",
        ordered_axes=["Lat", "Lon"],
        geographic_crs=CRS.from_epsg(4490),
    )


@cache
def tile_matrix_sets() -> dict[str, TileMatrixSet]:
    """Every TileMatrixSet served, by id, in the order they are listed."""
    return {
        WEB_MERCATOR: morecantile.tms.get(WEB_MERCATOR),
        CRS84_QUAD: morecantile.tms.get(CRS84_QUAD),
        CGCS2000_QUAD: _cgcs2000_quad(),
    }


def get_tms(tms_id: str) -> TileMatrixSet:
    """The TileMatrixSet ``tms_id``; NotFound (404) for any other id."""
    tms = tile_matrix_sets().get(tms_id)
    if tms is None:
        raise NotFound(f"no tile matrix set {tms_id!r} (available: {', '.join(tile_matrix_sets())})")
    return tms


def zoom_range(tms: TileMatrixSet) -> range:
    return range(tms.minzoom, tms.maxzoom + 1)


def check_tile(tms: TileMatrixSet, tile: Tile) -> Tile:
    """``tile`` itself if it is in ``tms``: its tile matrix one of the set's, its row and column
    inside that matrix; NotFound (404) otherwise."""
    z, row, col = tile.z, tile.y, tile.x
    if z not in zoom_range(tms):
        raise NotFound(f"no tile matrix {str(z)!r} in {tms.id} (tile matrices {tms.minzoom}..{tms.maxzoom})")
    matrix = tms.matrix(z)
    if not (0 <= row < matrix.matrixHeight and 0 <= col < matrix.matrixWidth):
        raise NotFound(
            f"tile {z}/{row}/{col} is outside {tms.id}: rows 0..{matrix.matrixHeight - 1}, "
            f"columns 0..{matrix.matrixWidth - 1} at tile matrix {z}"
        )
    return tile


def tile_bounds(tms: TileMatrixSet, tile: Tile) -> Bounds:
    """The tile in its tile matrix set's CRS, x/y order (x = easting / longitude)."""
    return tuple(tms.xy_bounds(tile))  # type: ignore[return-value]


def lonlat_bounds(tms: TileMatrixSet, tile: Tile) -> Bounds:
    """The tile's corners in CRS84 (west, south, east, north), as ``tms.bounds(tile)`` gives them,
    through a cached transformer: morecantile hashes the tile matrix set's CRS (a WKT export) on each call,
    0.3 ms of every uncached tile."""
    left, bottom, right, top = tile_bounds(tms, tile)
    to_lonlat = transformer(parse_crs(TILE_SRID[tms.id]), parse_crs("OGC:CRS84"))
    (west, east), (south, north) = to_lonlat.transform((left, right), (bottom, top))
    return (float(west), float(south), float(east), float(north))


def storage_bounds(tms: TileMatrixSet, tile: Tile, srid: int) -> Bounds:
    """The tile in the storage CRS ``srid`` (x/y), transformed with densified edges.

    When the storage CRS covers only part of the world (a Gauss-Krüger zone), the tile is first
    cut to that CRS's area of use so that far-away corners do not blow up the transformation.
    """
    tile_srid = TILE_SRID[tms.id]
    bounds = tile_bounds(tms, tile)
    if srid == tile_srid or (srid == 4326 and tile_srid == 4490) or (srid == 4490 and tile_srid == 4326):
        return bounds  # same coordinates (CGCS2000 and WGS84 agree to centimetres)
    if srid in (4326, 4490) and tile_srid == 3857:
        # Web Mercator maps longitude and latitude separately, each monotonic: the corners are exact
        return lonlat_bounds(tms, tile)
    storage = parse_crs(srid)
    area = storage.area_of_use
    if area is not None and (area.west, area.south, area.east, area.north) != (-180.0, -90.0, 180.0, 90.0):
        west, south, east, north = lonlat_bounds(tms, tile)
        clipped = (max(west, area.west), max(south, area.south), min(east, area.east), min(north, area.north))
        if clipped[0] < clipped[2] and clipped[1] < clipped[3]:
            return transform_bbox(clipped, parse_crs("OGC:CRS84"), storage)
    return transform_bbox(bounds, parse_crs(tile_srid), storage)


def web_mercator_zoom(tms: TileMatrixSet, z: int) -> int:
    """The WebMercatorQuad zoom whose scale is nearest to tile matrix ``z`` of ``tms``.

    The layer catalog gives zoom ranges as WebMercatorQuad levels; WorldCRS84Quad and CGCS2000Quad
    matrix ``z`` have the scale of WebMercatorQuad ``z + 1``.
    """
    if tms.id == WEB_MERCATOR:
        return z
    base = tile_matrix_sets()[WEB_MERCATOR].matrix(0).scaleDenominator
    return round(math.log2(base / tms.matrix(z).scaleDenominator))


def zoom_from_web_mercator(tms: TileMatrixSet, web_zoom: int) -> int:
    """The tile matrix of ``tms`` matching WebMercatorQuad zoom ``web_zoom``, clamped to the tile matrix set."""
    offset = web_mercator_zoom(tms, 0)
    return min(max(web_zoom - offset, tms.minzoom), tms.maxzoom)


def limits(tms: TileMatrixSet, bbox: Bounds, zooms: range) -> list[dict[str, Any]]:
    """OGC ``tileMatrixSetLimits`` covering ``bbox`` (CRS84) at each zoom of ``zooms``."""
    west, south, east, north = bbox
    out = []
    for z in zooms:
        upper_left = tms.tile(west, north, z)
        lower_right = tms.tile(east, south, z)
        out.append(
            {
                "tileMatrix": str(z),
                "minTileRow": upper_left.y,
                "maxTileRow": lower_right.y,
                "minTileCol": upper_left.x,
                "maxTileCol": lower_right.x,
            }
        )
    return out


#: tileMatrixSetLimits of (tile matrix set id, bbox, zoom): morecantile's ``tile()`` hashes the tile matrix set's CRS (a
#: WKT export) on every call, which cost more than the rest of a cached tile's request
_LIMITS: dict[tuple[str, Bounds, int], dict[str, Any]] = {}
_LIMITS_MAX = 4096


def within_limits(tms: TileMatrixSet, bbox: Bounds, tile: Tile) -> bool:
    """Whether ``tile`` is inside the ``tileMatrixSetLimits`` of ``bbox`` at its zoom."""
    key = (tms.id, tuple(bbox), tile.z)
    limit = _LIMITS.get(key)
    if limit is None:
        (limit,) = limits(tms, bbox, range(tile.z, tile.z + 1))
        if len(_LIMITS) >= _LIMITS_MAX:
            _LIMITS.clear()
        _LIMITS[key] = limit
    return (
        limit["minTileRow"] <= tile.y <= limit["maxTileRow"]
        and limit["minTileCol"] <= tile.x <= limit["maxTileCol"]
    )


def tile_matrix_set_json(tms: TileMatrixSet) -> dict[str, Any]:
    """The OGC TileMatrixSet JSON document (2D-TMS 2.0) of ``tms``."""
    return tms.model_dump(exclude_none=True, mode="json")


def crs_uri(tms: TileMatrixSet) -> str:
    return str(tms.crs.root if hasattr(tms.crs, "root") else tms.crs)
