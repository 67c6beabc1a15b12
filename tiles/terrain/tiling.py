"""Cesium's geographic tiling of terrain (quantized-mesh-1.0, ``projection`` EPSG:4326, ``scheme`` tms).

Level ``z`` has ``2^(z+1)`` × ``2^z`` tiles of ``180 / 2^z`` degrees; ``x`` counts from -180° eastwards,
``y`` from -90° northwards (TMS). CesiumJS decides when to refine a tile from its own estimate of a
level's geometric error (:func:`geometric_error`: a 65-sample heightmap per tile at level 0, halved
per level), so meshes are simplified to that error (tiles/terrain/quantized_mesh.py) and finer only at
the deepest level, :func:`max_level`, chosen from the DEM's pixel size.

Availability (``layer.json`` ``available``): every tile of levels ``0..WORLD_LEVELS - 1`` (the globe
must be covered at level 0; outside the DEM the tiles are flat at 0 m) and, deeper, the tiles over
the DEM's extent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: semi-major axis of WGS 84 (Cesium's ``Ellipsoid.WGS84.maximumRadius``)
WGS84_A = 6378137.0
#: samples per tile edge CesiumJS assumes when it estimates a level's geometric error
CESIUM_HEIGHTMAP_WIDTH = 65
#: the geometric error CesiumJS assumes for level 0 (``getEstimatedLevelZeroGeometricErrorForAHeightmap``
#: with 2 tiles at level 0): 77,067 m
LEVEL_ZERO_ERROR = WGS84_A * 2 * math.pi * 0.25 / (CESIUM_HEIGHTMAP_WIDTH * 2)
#: levels whose every tile is available (the whole globe)
WORLD_LEVELS = 1
#: the deepest level served, whatever the DEM's resolution (tiles of 0.7 m at the equator)
MAX_LEVEL = 21
#: grid samples per tile edge (pymartini needs 2^k + 1)
GRID = 257
#: metres per degree of latitude (mean), to compare a DEM's ground pixel with a tile's spacing
METRES_PER_DEGREE = 111_320.0


@dataclass(frozen=True)
class TerrainTile:
    """A tile address of the geographic TMS (y from the south)."""

    z: int
    x: int
    y: int

    def bounds(self) -> tuple[float, float, float, float]:
        """West, south, east, north in degrees."""
        size = 180.0 / (1 << self.z)
        west = -180.0 + self.x * size
        south = -90.0 + self.y * size
        return west, south, west + size, south + size


def tiles_across(z: int) -> tuple[int, int]:
    """Columns and rows of level ``z``."""
    return 1 << (z + 1), 1 << z


def geometric_error(z: int) -> float:
    """The geometric error (m) CesiumJS assumes for tiles of level ``z``."""
    return LEVEL_ZERO_ERROR / (1 << z)


def max_level(pixel_m: float, latitude: float) -> int:
    """The deepest level for a DEM of ``pixel_m`` Web Mercator metres per pixel at ``latitude``: the
    first whose grid spacing (tile size / (GRID - 1)) is no larger than the DEM's ground pixel, so
    the deepest tiles sample every pixel; between ``WORLD_LEVELS - 1`` and :data:`MAX_LEVEL`."""
    ground = abs(pixel_m) * math.cos(math.radians(latitude))
    if not math.isfinite(ground) or ground <= 0:
        return WORLD_LEVELS - 1
    degrees = ground / METRES_PER_DEGREE
    level = math.ceil(math.log2(180.0 / ((GRID - 1) * degrees)))
    return max(WORLD_LEVELS - 1, min(MAX_LEVEL, level))


@dataclass(frozen=True)
class TileRange:
    """Tiles ``start_x..end_x`` × ``start_y..end_y`` (inclusive) of one level."""

    start_x: int
    start_y: int
    end_x: int
    end_y: int

    def contains(self, x: int, y: int) -> bool:
        return self.start_x <= x <= self.end_x and self.start_y <= y <= self.end_y

    def to_json(self) -> dict[str, int]:
        return {"startX": self.start_x, "startY": self.start_y, "endX": self.end_x, "endY": self.end_y}


def covering(z: int, bbox: tuple[float, float, float, float]) -> TileRange:
    """The tiles of level ``z`` that ``bbox`` (west, south, east, north degrees) touches."""
    cols, rows = tiles_across(z)
    size = 180.0 / (1 << z)

    def index(value: float, origin: float, count: int) -> int:
        return min(count - 1, max(0, math.floor((value - origin) / size)))

    west, south, east, north = bbox
    return TileRange(index(west, -180.0, cols), index(south, -90.0, rows), index(east, -180.0, cols), index(north, -90.0, rows))


def availability(bbox: tuple[float, float, float, float], maxzoom: int) -> list[list[TileRange]]:
    """The available tiles per level ``0..maxzoom``: the globe for the first :data:`WORLD_LEVELS`,
    then the tiles over ``bbox``."""
    out: list[list[TileRange]] = []
    for z in range(maxzoom + 1):
        cols, rows = tiles_across(z)
        out.append([TileRange(0, 0, cols - 1, rows - 1) if z < WORLD_LEVELS else covering(z, bbox)])
    return out
