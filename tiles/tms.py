"""The TileMatrixSets tiles are served in: WebMercatorQuad, WorldCRS84Quad and CGCS2000Quad.

The first two come from morecantile's copy of the OGC TileMatrixSet registry. ``CGCS2000Quad`` is
our own grid, laid out like WorldCRS84Quad (2 × 1 tiles at matrix 0, halving per level) but on the
CGCS2000 geographic CRS (EPSG:4490, axis order latitude, longitude); it is not an OGC-registered
set, so it has no ``uri``. Tile coordinates everywhere are OGC order: tileMatrix, tileRow, tileCol.
"""

from __future__ import annotations

import math
import re
from functools import cache
from typing import Any

import morecantile
from morecantile import Tile, TileMatrixSet
from pyproj import CRS

from cim.crs import parse_crs, transform_bbox, transformer
from cim.errors import NotFound
from cim.store import Bounds

#: a tile matrix identifier: a zoom level in ASCII digits
_ZOOM = re.compile(r"[0-9]{1,4}")
WEB_MERCATOR = "WebMercatorQuad"
CRS84_QUAD = "WorldCRS84Quad"
CGCS2000_QUAD = "CGCS2000Quad"
#: EPSG code of each grid's CRS as the store's SQL names it (CRS84 shares EPSG:4326's lon/lat)
TILE_SRID: dict[str, int] = {WEB_MERCATOR: 3857, CRS84_QUAD: 4326, CGCS2000_QUAD: 4490}


def _cgcs2000_quad() -> TileMatrixSet:
    return TileMatrixSet.custom(
        [-180.0, -90.0, 180.0, 90.0],
        CRS.from_epsg(4490),
        matrix_scale=[2, 1],
        minzoom=0,
        maxzoom=23,
        id=CGCS2000_QUAD,
        title="CGCS2000 quad grid (EPSG:4490), laid out like WorldCRS84Quad",
        ordered_axes=["Lat", "Lon"],
        geographic_crs=CRS.from_epsg(4490),
    )


@cache
def grids() -> dict[str, TileMatrixSet]:
    """Every TileMatrixSet served, by id, in the order they are listed."""
    return {
        WEB_MERCATOR: morecantile.tms.get(WEB_MERCATOR),
        CRS84_QUAD: morecantile.tms.get(CRS84_QUAD),
        CGCS2000_QUAD: _cgcs2000_quad(),
    }


def get_grid(tms_id: str) -> TileMatrixSet:
    """The TileMatrixSet ``tms_id``; NotFound (404) for any other id."""
    grid = grids().get(tms_id)
    if grid is None:
        raise NotFound(f"no tile matrix set {tms_id!r} (available: {', '.join(grids())})")
    return grid


def zoom_range(grid: TileMatrixSet) -> range:
    return range(grid.minzoom, grid.maxzoom + 1)


def check_tile(grid: TileMatrixSet, tile_matrix: str, row: int, col: int) -> Tile:
    """The tile at ``tile_matrix``/``row``/``col``; NotFound (404) outside the grid."""
    # ASCII digits only: str.isdigit() and int() take Unicode digits ("¹" crashed int(), "١" read as 1)
    if _ZOOM.fullmatch(tile_matrix) is None or int(tile_matrix) not in zoom_range(grid):
        raise NotFound(
            f"no tile matrix {tile_matrix!r} in {grid.id} (tile matrices {grid.minzoom}..{grid.maxzoom})"
        )
    z = int(tile_matrix)
    matrix = grid.matrix(z)
    if not (0 <= row < matrix.matrixHeight and 0 <= col < matrix.matrixWidth):
        raise NotFound(
            f"tile {z}/{row}/{col} is outside {grid.id}: rows 0..{matrix.matrixHeight - 1}, "
            f"columns 0..{matrix.matrixWidth - 1} at tile matrix {z}"
        )
    return Tile(col, row, z)


def tile_bounds(grid: TileMatrixSet, tile: Tile) -> Bounds:
    """The tile in its grid's CRS, x/y order (x = easting / longitude)."""
    return tuple(grid.xy_bounds(tile))  # type: ignore[return-value]


def lonlat_bounds(grid: TileMatrixSet, tile: Tile) -> Bounds:
    """The tile's corners in CRS84 (west, south, east, north), as ``grid.bounds(tile)`` gives them,
    through a cached transformer: morecantile hashes the grid's CRS (a WKT export) on each call,
    0.3 ms of every uncached tile."""
    left, bottom, right, top = tile_bounds(grid, tile)
    to_lonlat = transformer(parse_crs(TILE_SRID[grid.id]), parse_crs("OGC:CRS84"))
    (west, east), (south, north) = to_lonlat.transform((left, right), (bottom, top))
    return (float(west), float(south), float(east), float(north))


def storage_bounds(grid: TileMatrixSet, tile: Tile, srid: int) -> Bounds:
    """The tile in the storage CRS ``srid`` (x/y), transformed with densified edges.

    When the storage CRS covers only part of the world (a Gauss-Krüger zone), the tile is first
    cut to that CRS's area of use so that far-away corners do not blow up the transformation.
    """
    tile_srid = TILE_SRID[grid.id]
    bounds = tile_bounds(grid, tile)
    if srid == tile_srid or (srid == 4326 and tile_srid == 4490) or (srid == 4490 and tile_srid == 4326):
        return bounds  # same coordinates (CGCS2000 and WGS84 agree to centimetres)
    if srid in (4326, 4490) and tile_srid == 3857:
        # Web Mercator maps longitude and latitude separately, each monotonic: the corners are exact
        return lonlat_bounds(grid, tile)
    storage = parse_crs(srid)
    area = storage.area_of_use
    if area is not None and (area.west, area.south, area.east, area.north) != (-180.0, -90.0, 180.0, 90.0):
        west, south, east, north = lonlat_bounds(grid, tile)
        clipped = (max(west, area.west), max(south, area.south), min(east, area.east), min(north, area.north))
        if clipped[0] < clipped[2] and clipped[1] < clipped[3]:
            return transform_bbox(clipped, parse_crs("OGC:CRS84"), storage)
    return transform_bbox(bounds, parse_crs(tile_srid), storage)


def web_mercator_zoom(grid: TileMatrixSet, z: int) -> int:
    """The WebMercatorQuad zoom whose scale is nearest to tile matrix ``z`` of ``grid``.

    The layer catalog gives zoom ranges as WebMercatorQuad levels; WorldCRS84Quad and CGCS2000Quad
    matrix ``z`` have the scale of WebMercatorQuad ``z + 1``.
    """
    if grid.id == WEB_MERCATOR:
        return z
    base = grids()[WEB_MERCATOR].matrix(0).scaleDenominator
    return round(math.log2(base / grid.matrix(z).scaleDenominator))


def grid_zoom(grid: TileMatrixSet, web_zoom: int) -> int:
    """The tile matrix of ``grid`` matching WebMercatorQuad zoom ``web_zoom``, clamped to the grid."""
    offset = web_mercator_zoom(grid, 0)
    return min(max(web_zoom - offset, grid.minzoom), grid.maxzoom)


def limits(grid: TileMatrixSet, bbox: Bounds, zooms: range) -> list[dict[str, Any]]:
    """OGC ``tileMatrixSetLimits`` covering ``bbox`` (CRS84) at each zoom of ``zooms``."""
    west, south, east, north = bbox
    out = []
    for z in zooms:
        upper_left = grid.tile(west, north, z)
        lower_right = grid.tile(east, south, z)
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


#: tileMatrixSetLimits of (grid id, bbox, zoom): morecantile's ``tile()`` hashes the grid's CRS (a
#: WKT export) on every call, which cost more than the rest of a cached tile's request
_LIMITS: dict[tuple[str, Bounds, int], dict[str, Any]] = {}
_LIMITS_MAX = 4096


def within_limits(grid: TileMatrixSet, bbox: Bounds, tile: Tile) -> bool:
    """Whether ``tile`` is inside the ``tileMatrixSetLimits`` of ``bbox`` at its zoom."""
    key = (grid.id, tuple(bbox), tile.z)
    limit = _LIMITS.get(key)
    if limit is None:
        (limit,) = limits(grid, bbox, range(tile.z, tile.z + 1))
        if len(_LIMITS) >= _LIMITS_MAX:
            _LIMITS.clear()
        _LIMITS[key] = limit
    return (
        limit["minTileRow"] <= tile.y <= limit["maxTileRow"]
        and limit["minTileCol"] <= tile.x <= limit["maxTileCol"]
    )


def tile_matrix_set_json(grid: TileMatrixSet) -> dict[str, Any]:
    """The OGC TileMatrixSet JSON document (2D-TMS 2.0) of ``grid``."""
    return grid.model_dump(exclude_none=True, mode="json")


def crs_uri(grid: TileMatrixSet) -> str:
    return str(grid.crs.root if hasattr(grid.crs, "root") else grid.crs)
