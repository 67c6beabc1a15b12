"""Heights of a DEM at points: what LOD1 blocks stand on (tiles/threed/) and what the terrain shows.

The DEM of a release is a COG in Web Mercator (cim/store/rasters.py). Heights are read as they are
stored — metres, taken as heights above the ellipsoid by both the terrain tiles and the blocks, so
the two agree (docs/3d.md: no geoid model is applied) — bilinearly between the four pixel centres
around a point. A point outside the DEM, or next to a nodata pixel, has no height (NaN).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import rasterio
from pyproj import Transformer
from rasterio.windows import Window

from cim.store import LayerInfo

_TO_MERCATOR = Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True)


def elevation_layer(layers: Sequence[LayerInfo]) -> LayerInfo | None:
    """The first ``elevation`` raster layer of a release (with its COG), None when it has none."""
    for info in layers:
        if info.spec.kind == "raster" and info.spec.raster == "elevation" and info.raster_path:
            return info
    return None


def heights_at(
    raster_path: str | Path, lon: npt.ArrayLike, lat: npt.ArrayLike
) -> npt.NDArray[np.float64]:
    """The DEM's heights at (``lon``, ``lat``) (degrees, WGS 84 / CGCS2000), bilinear; NaN outside
    the DEM or beside nodata. Reads only the window around the points."""
    lon = np.asarray(lon, dtype=np.float64).ravel()
    lat = np.asarray(lat, dtype=np.float64).ravel()
    out = np.full(len(lon), np.nan)
    if len(lon) == 0:
        return out
    x, y = _TO_MERCATOR.transform(lon, lat)
    with rasterio.open(raster_path) as src:
        # fractional pixel coordinates of the points, relative to pixel centres
        inverse = ~src.transform
        col, row = inverse * (np.asarray(x), np.asarray(y))
        col = np.asarray(col) - 0.5
        row = np.asarray(row) - 0.5
        finite = np.isfinite(col) & np.isfinite(row)
        inside = finite & (col >= 0) & (row >= 0) & (col <= src.width - 1) & (row <= src.height - 1)
        if not inside.any():
            return out
        c0 = int(np.floor(col[inside].min()))
        r0 = int(np.floor(row[inside].min()))
        c1 = min(int(np.floor(col[inside].max())) + 2, src.width)
        r1 = min(int(np.floor(row[inside].max())) + 2, src.height)
        window = Window(c0, r0, c1 - c0, r1 - r0)
        data = src.read(1, window=window, masked=True).astype(np.float64)
    grid = np.ma.filled(data, np.nan)
    cc = col[inside] - c0
    rr = row[inside] - r0
    ci = np.clip(np.floor(cc).astype(np.int64), 0, grid.shape[1] - 1)
    ri = np.clip(np.floor(rr).astype(np.int64), 0, grid.shape[0] - 1)
    cj = np.minimum(ci + 1, grid.shape[1] - 1)
    rj = np.minimum(ri + 1, grid.shape[0] - 1)
    fc = cc - ci
    fr = rr - ri
    top = grid[ri, ci] * (1 - fc) + grid[ri, cj] * fc
    bottom = grid[rj, ci] * (1 - fc) + grid[rj, cj] * fc
    out[inside] = top * (1 - fr) + bottom * fr
    return out
