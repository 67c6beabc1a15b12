"""What a store needs to render one vector tile, and what it gives back.

The tile engine (package ``tiles``) works out which layers go into a tile and where the tile lies;
the store turns that into one Mapbox Vector Tile with SQL (``ST_AsMVT``/``ST_AsMVTGeom``) — see
:mod:`cim.store.sql.tiles` for the generalisation rules applied on the way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from cim.crs import Bounds

#: default feature budget per layer and tile (see docs/tiles.md, "Generalisation")
MAX_FEATURES = 10_000
#: layer geometry types by how tiles treat them
POLYGONS = ("Polygon", "MultiPolygon")
LINES = ("LineString", "MultiLineString")
POINTS = ("Point", "MultiPoint")


@dataclass(frozen=True)
class TileLayerQuery:
    """One layer of a tile: which store layer, which attributes, and the MVT layer name."""

    layer: str
    attributes: tuple[str, ...] = ()
    #: name of the layer inside the tile; defaults to ``layer``
    name: str | None = None

    @property
    def tile_name(self) -> str:
        return self.name or self.layer


@dataclass(frozen=True)
class TileQuery:
    """One tile: its layers, its bounds in the tile CRS and the same tile in the storage CRS.

    Sizes in pixels refer to a tile of ``tile_size`` pixels a side (256 for the OGC tile matrix sets).
    """

    layers: tuple[TileLayerQuery, ...]
    #: minx, miny, maxx, maxy of the tile in its own CRS (x = easting / longitude)
    bounds: Bounds
    #: EPSG code of the tile CRS (3857 for WebMercatorQuad, 4326 for WorldCRS84Quad, 4490 for CGCS2000Quad)
    srid: int
    #: the (unbuffered) tile in each storage CRS of the layers, keyed by EPSG code, x/y order
    storage_bounds: dict[int, Bounds] = field(default_factory=dict)
    extent: int = 4096
    #: buffer around the tile, in tile units (of ``extent``)
    buffer: int = 64
    tile_size: int = 256
    #: Douglas-Peucker tolerance, in pixels
    simplify_px: float = 0.5
    #: polygons with a smaller area (px²) are dropped
    min_area_px: float = 1.0
    #: lines shorter than this (px) are dropped
    min_length_px: float = 1.0
    #: at most this many features per layer: the largest are kept (points: one per grid cell)
    max_features: int = MAX_FEATURES
    #: the tile matrix set's id and the tile's zoom (tile matrix), where the engine knows them: the
    #: store may use geometry prepared for that tile matrix set and zoom (cim/store/sql/tile_geometry.py)
    tms_id: str | None = None
    zoom: int | None = None

    def storage_pixel(self, srid: int) -> tuple[float, float]:
        """Width and height of one pixel in storage units of ``srid``."""
        minx, miny, maxx, maxy = self.storage_bounds[srid]
        return (maxx - minx) / self.tile_size, (maxy - miny) / self.tile_size

    def buffered_storage_bounds(self, srid: int) -> Bounds:
        """The storage bounds grown by the buffer (features there are clipped into the buffer)."""
        minx, miny, maxx, maxy = self.storage_bounds[srid]
        fx = (maxx - minx) * self.buffer / self.extent
        fy = (maxy - miny) * self.buffer / self.extent
        return minx - fx, miny - fy, maxx + fx, maxy + fy

    def point_cell(self, srid: int) -> float:
        """Side of the grid cell (storage units) in which at most one point is kept.

        ``max(1 px, tile width / sqrt(max_features))``: one point per pixel normally, coarser when
        the budget demands it, so a tile never holds more than about ``max_features`` points.
        """
        px_w, _ = self.storage_pixel(srid)
        cells = max(1.0, self.tile_size / math.sqrt(max(1, self.max_features)))
        return px_w * cells


@dataclass(frozen=True)
class RenderedTile:
    """An encoded tile and the release it was read from (b"" = no feature in the tile)."""

    release: int
    data: bytes
