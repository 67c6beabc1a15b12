"""Reading one map tile of a COG: only the tile pixels the raster covers, pasted into an empty tile.

Why not ``Reader.tile`` over the whole tile: when the tile is much larger than the raster (low zoom
levels), rio-tiler asks rasterio for a *boundless* read of the tile's window at the raster's own
resolution — at WebMercatorQuad level 6 over a 13 m raster, a 48 000 × 48 000 pixel window — and
rasterio builds an in-memory VRT of that size to composite the raster into it. For a COG with an
alpha band (imagery) GDAL then reads the VRT's data and mask at full resolution before resampling
to 256 × 256 (the VRT has no overviews), so the time grows fourfold per zoom level out: 5 s at level
6, minutes at level 1, for a 300 × 300 pixel raster. Reading only the intersection, snapped outward
to whole tile pixels, keeps the boundless margin under one output pixel, so GDAL resamples from the
COG's overview nearest to the output resolution: the work is bounded by the output size (at most
one tile) plus the raster pixels of one overview level, whatever the zoom.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from morecantile import Tile, TileMatrixSet
from rasterio.warp import transform_bounds
from rio_tiler.errors import TileOutsideBounds
from rio_tiler.io import Reader


#: WarpedVRT options for a part reaching beyond the raster (any non-empty options make rio-tiler warp)
WARP = {"warp_mem_limit": 64}


@dataclass(frozen=True)
class TilePixels:
    """The pixels of a tile (with its buffer): ``data`` (bands, rows, cols) and ``mask`` (rows, cols),
    255 where a pixel has data, 0 elsewhere."""

    data: np.ndarray
    mask: np.ndarray


def covered_pixels(
    tile_bounds: tuple[float, float, float, float], raster_bounds: tuple[float, float, float, float], size: int
) -> tuple[int, int, int, int] | None:
    """Columns and rows ``(col0, row0, col1, row1)`` (end exclusive) of a ``size`` × ``size`` pixel grid
    over ``tile_bounds`` that the raster touches, rows from the north; None when it touches none."""
    west, south, east, north = tile_bounds
    r_west, r_south, r_east, r_north = raster_bounds
    dx, dy = (east - west) / size, (north - south) / size
    col0 = max(0, math.floor((r_west - west) / dx))
    col1 = min(size, math.ceil((r_east - west) / dx))
    row0 = max(0, math.floor((north - r_north) / dy))
    row1 = min(size, math.ceil((north - r_south) / dy))
    if col0 >= col1 or row0 >= row1:
        return None
    return col0, row0, col1, row1


def read_tile(path: str, tms: TileMatrixSet, tile: Tile, tile_size: int = 256, buffer: int = 0) -> TilePixels | None:
    """The tile's pixels (``tile_size + 2·buffer`` square) read bilinearly from the COG at ``path``,
    or None when the raster does not reach the tile."""
    size = tile_size + 2 * buffer
    west, south, east, north = tms.xy_bounds(tile)
    dx, dy = (east - west) / tile_size, (north - south) / tile_size
    bounds = (west - buffer * dx, south - buffer * dy, east + buffer * dx, north + buffer * dy)
    crs = tms.rasterio_crs
    with Reader(path, tms=tms) as src:
        raster = src.dataset.bounds
        if src.dataset.crs != crs:
            raster = transform_bounds(src.dataset.crs, crs, *raster, densify_pts=21)
        window = covered_pixels(bounds, tuple(raster), size)
        if window is None:
            return None
        col0, row0, col1, row1 = window
        part = (bounds[0] + col0 * dx, bounds[3] - row1 * dy, bounds[0] + col1 * dx, bounds[3] - row0 * dy)
        inside = part[0] >= raster[0] and part[1] >= raster[1] and part[2] <= raster[2] and part[3] <= raster[3]
        try:
            image = src.part(
                part, dst_crs=crs, bounds_crs=crs, width=col1 - col0, height=row1 - row0,
                resampling_method="bilinear", reproject_method="bilinear",
                # not a boundless read (see the module's note): GDAL's warper only works where the raster is
                vrt_options=None if inside else WARP,
            )
        except TileOutsideBounds:
            return None
    values = np.ma.getdata(image.array)
    # 255 where a pixel has data (rio-tiler's mask may come as floats)
    valid = np.where(np.nan_to_num(np.asarray(image.mask, dtype="float64")) > 0, 255, 0).astype("uint8")
    data = np.zeros((values.shape[0], size, size), dtype=values.dtype)
    mask = np.zeros((size, size), dtype="uint8")
    data[:, row0:row1, col0:col1] = values
    mask[row0:row1, col0:col1] = valid
    return TilePixels(data, mask)
