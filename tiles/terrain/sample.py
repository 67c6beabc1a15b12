"""Heights of a DEM at points: what LOD1 blocks stand on (tiles/threed/) and what the terrain shows.

The DEM of a release is a COG in Web Mercator (cim/store/rasters.py). Heights are read as they are
stored — metres, taken as heights above the ellipsoid by both the terrain tiles and the blocks, so
the two agree (docs/3d.md: no geoid model is applied) — bilinearly between the four pixel centres
around a point. A point outside the DEM, or next to a nodata pixel, has no height (NaN).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
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
        return _bilinear(src, col, row, out)


def grid_heights(
    raster_path: str | Path, lon: npt.ArrayLike, lat: npt.ArrayLike, spacing_m: float | None = None
) -> npt.NDArray[np.float64]:
    """The DEM's heights on the grid ``lat`` × ``lon`` (1-D, degrees): an array (len(lat), len(lon)),
    bilinear as :func:`heights_at` (the same values at the same points; NaN outside or beside
    nodata). ``spacing_m``: the grid's spacing in Web Mercator metres; the coarsest overview of the
    COG whose pixels are no larger is read instead of the full resolution (averaged pixels: coarse
    grids do not alias)."""
    lon = np.asarray(lon, dtype=np.float64).ravel()
    lat = np.asarray(lat, dtype=np.float64).ravel()
    out = np.full((len(lat), len(lon)), np.nan)
    # Web Mercator is separable: x depends on the longitude only, y on the latitude only
    x, _ = _TO_MERCATOR.transform(lon, np.zeros_like(lon))
    _, y = _TO_MERCATOR.transform(np.zeros_like(lat), lat)
    level = _overview_level(str(raster_path), spacing_m)
    with rasterio.open(raster_path, **({} if level is None else {"overview_level": level})) as src:
        inverse = ~src.transform
        if inverse.b != 0 or inverse.d != 0:  # not north-up: point by point
            gx, gy = np.meshgrid(np.asarray(x), np.asarray(y))
            col, row = inverse * (gx.ravel(), gy.ravel())
            flat = _bilinear(src, np.asarray(col) - 0.5, np.asarray(row) - 0.5, np.full(gx.size, np.nan))
            return flat.reshape(out.shape)
        col = inverse.a * np.asarray(x) + inverse.c - 0.5
        row = inverse.e * np.asarray(y) + inverse.f - 0.5
        in_col = np.isfinite(col) & (col >= 0) & (col <= src.width - 1)
        in_row = np.isfinite(row) & (row >= 0) & (row <= src.height - 1)
        if not in_col.any() or not in_row.any():
            return out
        col, row = col[in_col], row[in_row]
        c0, r0 = int(np.floor(col.min())), int(np.floor(row.min()))
        c1 = min(int(np.floor(col.max())) + 2, src.width)
        r1 = min(int(np.floor(row.max())) + 2, src.height)
        data = src.read(1, window=Window(c0, r0, c1 - c0, r1 - r0), masked=True).astype(np.float64)
    grid = np.ma.filled(data, np.nan)
    # the arithmetic of _bilinear, by rows and columns
    cc, rr = col - c0, row - r0
    ci = np.clip(np.floor(cc).astype(np.int64), 0, grid.shape[1] - 1)
    ri = np.clip(np.floor(rr).astype(np.int64), 0, grid.shape[0] - 1)
    cj = np.minimum(ci + 1, grid.shape[1] - 1)
    rj = np.minimum(ri + 1, grid.shape[0] - 1)
    fc = (cc - ci)[None, :]
    fr = (rr - ri)[:, None]
    top = grid[np.ix_(ri, ci)] * (1 - fc) + grid[np.ix_(ri, cj)] * fc
    bottom = grid[np.ix_(rj, ci)] * (1 - fc) + grid[np.ix_(rj, cj)] * fc
    out[np.ix_(in_row, in_col)] = top * (1 - fr) + bottom * fr
    return out


@lru_cache(maxsize=64)
def _overviews(raster_path: str) -> tuple[float, tuple[int, ...]]:
    """A COG's pixel size and overview factors (a release's COG never changes)."""
    with rasterio.open(raster_path) as src:
        return abs(src.transform.a), tuple(src.overviews(1))


def _overview_level(raster_path: str, spacing_m: float | None) -> int | None:
    """Index of the coarsest overview whose pixel is no larger than ``spacing_m`` (None: full resolution)."""
    if spacing_m is None:
        return None
    pixel, factors = _overviews(raster_path)
    chosen = None
    for index, factor in enumerate(factors):
        if pixel * factor <= spacing_m:
            chosen = index
    return chosen


def _bilinear(
    src: rasterio.io.DatasetReader, col: npt.NDArray[np.float64], row: npt.NDArray[np.float64], out: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """``out`` with the bilinear heights at fractional pixel-centre coordinates ``col``/``row`` of
    band 1 (NaN where outside the pixel centres or beside nodata); reads only their window."""
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
