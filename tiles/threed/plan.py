"""The quadtree plan of a lod1 layer in one release, and its tileset.json (docs/3d-tiles.md).

A plan is computed from the footprints alone (numpy and shapely's vectorised functions, no Python
loop per building):

- per footprint: its bounding box and centroid (storage CRS), its height by the rule
  (cim/heights.py) and its ground height ``base`` (:func:`ground_heights`, the one function the
  content uses too);
- a square covering the layer's extent in storage CRS is split as a quadtree: a cell is split while
  it holds more than :data:`MAX_LEAF` buildings (by centroid; cells are half-open, so a building is
  in exactly one leaf) and its level is below :data:`MAX_LEVEL`. Buildings are sorted by the Morton
  code of their centroid's cell at :data:`MAX_LEVEL`, so every cell is one contiguous run of them
  and a split costs two binary searches;
- regions (radians, metres) hold every block of a tile and its descendants: from the footprints'
  longitude/latitude bounds (their bbox corners and edge midpoints transformed) and base, base +
  height, padded by :data:`PAD_RAD` / :data:`PAD_M`;
- geometric error: 0 for a leaf; for an inner tile its cell's side in metres / :data:`ERROR_DIVISOR`
  (CesiumJS, at its default maximum screen-space error of 16 on a 1,000-pixel-high 60° view, refines a
  tile whose error is e from a distance of about 54 e: with e = side / 16 the leaves load when the
  camera is within ~3.4 cell sides of the tile).

``x`` grows to the east and ``y`` to the north (as the 3D Tiles implicit tiling of a region).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import shapely
from pyproj import CRS, Transformer

from cim.heights import DEFAULT_RULE, HeightRule
from tiles.terrain.sample import heights_at
from tiles.threed.model import ScenePlan, SceneTile

#: a tile is split while it holds more buildings than this (measured GLB sizes: docs/3d-tiles.md)
MAX_LEAF = 400
#: the deepest level of the quadtree (Morton codes of 2 × 20 bits)
MAX_LEVEL = 20
#: inner tiles' geometric error = cell side (m) / this
ERROR_DIVISOR = 16.0
#: points per edge when a leaf's storage box is transformed to longitude/latitude
DENSIFY = 16
#: regions are padded by this many radians (≈ 6 cm) and metres
PAD_RAD = 1e-8
PAD_M = 0.05
#: metres per degree of latitude (WGS 84 mean), for cells of a geographic storage CRS
_M_PER_DEG = 111_320.0
_RADIUS = 6_378_137.0


# -- per footprint ------------------------------------------------------------------------------
def lonlat_transformer(srid: int) -> Transformer:
    """Storage CRS → lon/lat degrees: h1's geodesy when it is there, else pyproj's (the same)."""
    try:
        from tiles.threed.geodesy import lonlat_transformer as geodesy_transformer
    except ImportError:  # pragma: no cover - before tiles/threed/geodesy.py exists
        return Transformer.from_crs(CRS.from_epsg(srid), CRS.from_epsg(4326), always_xy=True)
    return geodesy_transformer(srid)


def ground_heights(
    raster_path: str | Path | None, srid: int, bounds: npt.NDArray[np.float64], centroids: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """The ground height ``base`` of footprints: the minimum DEM height over each footprint's bbox
    corners and centroid (NaN ones left out; 0 where all are NaN, or without a DEM). ``bounds``:
    (n, 4) minx, miny, maxx, maxy; ``centroids``: (n, 2), both in storage CRS (``srid``)."""
    n = len(bounds)
    if raster_path is None or n == 0:
        return np.zeros(n)
    xs = np.stack([bounds[:, 0], bounds[:, 2], bounds[:, 2], bounds[:, 0], centroids[:, 0]], axis=1)
    ys = np.stack([bounds[:, 1], bounds[:, 1], bounds[:, 3], bounds[:, 3], centroids[:, 1]], axis=1)
    lon, lat = lonlat_transformer(srid).transform(xs.ravel(), ys.ravel())
    h = heights_at(raster_path, lon, lat).reshape(n, 5)
    finite = np.isfinite(h)
    base = np.where(finite, h, np.inf).min(axis=1)
    return np.where(finite.any(axis=1), base, 0.0)


def lonlat_bounds(srid: int, bounds: npt.NDArray[np.float64], steps: int = DENSIFY) -> npt.NDArray[np.float64]:
    """(n, 4) west, south, east, north degrees of storage-CRS boxes (n, 4): their edges, ``steps``
    points each, transformed (a projection's extremes over a box lie on its edges)."""
    if len(bounds) == 0:
        return np.empty((0, 4))
    x0, y0, x1, y1 = (bounds[:, i : i + 1] for i in range(4))
    t = np.linspace(0.0, 1.0, steps + 1)[None, :-1]
    xs = np.concatenate([x0 + (x1 - x0) * t, x1 + 0 * t, x1 - (x1 - x0) * t, x0 + 0 * t], axis=1)
    ys = np.concatenate([y0 + 0 * t, y0 + (y1 - y0) * t, y1 + 0 * t, y1 - (y1 - y0) * t], axis=1)
    lon, lat = lonlat_transformer(srid).transform(xs.ravel(), ys.ravel())
    lon = np.asarray(lon).reshape(xs.shape)
    lat = np.asarray(lat).reshape(xs.shape)
    return np.stack([lon.min(axis=1), lat.min(axis=1), lon.max(axis=1), lat.max(axis=1)], axis=1)


def footprint_frame(geometry: npt.NDArray[np.object_]) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Bounds (n, 4) and centroids (n, 2) of shapely geometries (an empty one: its bounds' NaN)."""
    bounds = shapely.bounds(geometry)
    cent = shapely.centroid(geometry)
    centroids = np.stack([shapely.get_x(cent), shapely.get_y(cent)], axis=1) if len(geometry) else np.empty((0, 2))
    return bounds, centroids


# -- the quadtree -------------------------------------------------------------------------------
def _spread(v: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Bits of ``v`` (< 2**20) spread to the even positions."""
    v = v & 0xFFFFF
    v = (v | (v << 16)) & 0x0000FFFF0000FFFF
    v = (v | (v << 8)) & 0x00FF00FF00FF00FF
    v = (v | (v << 4)) & 0x0F0F0F0F0F0F0F0F
    v = (v | (v << 2)) & 0x3333333333333333
    v = (v | (v << 1)) & 0x5555555555555555
    return v


def morton(ix: npt.NDArray[np.int64], iy: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    return _spread(ix) | (_spread(iy) << 1)


class _Builder:
    """Splits the Morton-sorted buildings into cells (pass 1: ranges only), then makes the tiles
    with their regions from all leaves' extents at once (pass 2)."""

    def __init__(self, codes: npt.NDArray[np.int64], max_leaf: int, max_level: int) -> None:
        self.codes, self.max_leaf, self.max_level = codes, max_leaf, max_level
        #: (start, stop) of every leaf, in preorder (= ascending start)
        self.leaves: list[tuple[int, int]] = []

    def split(self, level: int, x: int, y: int, start: int, stop: int) -> tuple:
        """``(level, x, y, children)`` of an inner cell, ``(level, x, y, leaf number)`` of a leaf."""
        if stop - start > self.max_leaf and level < self.max_level:
            children = []
            shift = 2 * (MAX_LEVEL - level - 1)
            prefix = int(morton(np.array([x]), np.array([y]))[0]) << 2
            codes = self.codes[start:stop]
            for q in range(4):
                a = start + int(np.searchsorted(codes, (prefix | q) << shift, side="left"))
                b = start + int(np.searchsorted(codes, ((prefix | q) + 1) << shift, side="left"))
                if b > a:
                    children.append(self.split(level + 1, 2 * x + (q & 1), 2 * y + (q >> 1), a, b))
            return (level, x, y, children)
        self.leaves.append((start, stop))
        return (level, x, y, len(self.leaves) - 1)


def _union(regions: Iterable[tuple[float, ...]]) -> tuple[float, float, float, float, float, float]:
    r = np.array(list(regions), dtype=np.float64)
    return (float(r[:, 0].min()), float(r[:, 1].min()), float(r[:, 2].max()), float(r[:, 3].max()),
            float(r[:, 4].min()), float(r[:, 5].max()))


def plan_arrays(
    layer: str, release: int, srid: int, fids: npt.NDArray[np.int64], geometry: npt.NDArray[np.object_],
    heights: npt.NDArray[np.float64], raster_path: str | None = None, dem: str | None = None,
    max_leaf: int = MAX_LEAF, max_level: int = MAX_LEVEL,
) -> ScenePlan:
    """The plan of footprints ``geometry`` (shapely, storage CRS) with ``fids`` and extruded ``heights``."""
    keep = ~(shapely.is_missing(geometry) | shapely.is_empty(geometry)) if len(geometry) else np.zeros(0, bool)
    fids, geometry, heights = fids[keep], geometry[keep], heights[keep]
    bounds, centroids = footprint_frame(geometry)
    n = len(fids)
    if n == 0:
        root = SceneTile(0, 0, 0, (0.0, 0.0, 0.0, 0.0, 0.0, 0.0), 0.0)
        return ScenePlan(layer, release, srid, root, 0, (0.0, 0.0, 0.0, 0.0, 0.0, 0.0), dem)
    base = ground_heights(raster_path, srid, bounds, centroids)
    x0, y0 = bounds[:, 0].min(), bounds[:, 1].min()
    side = max(bounds[:, 2].max() - x0, bounds[:, 3].max() - y0) * (1 + 1e-9) or 1.0
    cells = 2**MAX_LEVEL
    ix = np.clip(np.floor((centroids[:, 0] - x0) / side * cells), 0, cells - 1).astype(np.int64)
    iy = np.clip(np.floor((centroids[:, 1] - y0) / side * cells), 0, cells - 1).astype(np.int64)
    codes = morton(ix, iy)
    order = np.argsort(codes, kind="stable")
    builder = _Builder(codes[order], max_leaf, max_level)
    tree = builder.split(0, 0, 0, 0, n)
    # every leaf's extent at once: storage bbox, then its lon/lat bounds and heights
    starts = np.array([s for s, _ in builder.leaves], dtype=np.int64)
    sb = bounds[order]
    leaf_bbox = np.stack([
        np.minimum.reduceat(sb[:, 0], starts), np.minimum.reduceat(sb[:, 1], starts),
        np.maximum.reduceat(sb[:, 2], starts), np.maximum.reduceat(sb[:, 3], starts),
    ], axis=1)
    ll = np.radians(lonlat_bounds(srid, leaf_bbox))
    low = np.minimum.reduceat(base[order], starts) - PAD_M
    high = np.maximum.reduceat((base + heights)[order], starts) + PAD_M
    sorted_fids = fids[order]
    side_m = _metres(srid, side, ll)

    def make(node: tuple) -> SceneTile:
        level, x, y, rest = node
        if isinstance(rest, list):
            children = tuple(make(c) for c in rest)
            return SceneTile(level, x, y, _union(c.region for c in children), side_m / 2**level / ERROR_DIVISOR,
                             children=children)
        start, stop = builder.leaves[rest]
        w, s, e, nn = ll[rest]
        region = (float(w) - PAD_RAD, float(s) - PAD_RAD, float(e) + PAD_RAD, float(nn) + PAD_RAD,
                  float(low[rest]), float(high[rest]))
        return SceneTile(level, x, y, region, 0.0, fids=np.sort(sorted_fids[start:stop]),
                         bbox=tuple(float(v) for v in leaf_bbox[rest]))  # type: ignore[arg-type]

    root = make(tree)
    w, s, e, nn, lo, hi = root.region
    bbox3d = (float(np.degrees(w)), float(np.degrees(s)), lo, float(np.degrees(e)), float(np.degrees(nn)), hi)
    return ScenePlan(layer, release, srid, root, n, bbox3d, dem)


def _metres(srid: int, side: float, ll_rad: npt.NDArray[np.float64]) -> float:
    """The quadtree square's side in metres (degrees of a geographic CRS at its mid latitude)."""
    crs = CRS.from_epsg(srid)
    if crs.is_geographic:
        mid = (ll_rad[:, 1].min() + ll_rad[:, 3].max()) / 2
        return float(side * _M_PER_DEG * max(np.cos(mid), 0.01))
    return float(side * crs.axis_info[0].unit_conversion_factor)


def plan_batches(
    layer: str, release: int, srid: int, batches: Iterable[pa.RecordBatch], rule: HeightRule = DEFAULT_RULE,
    raster_path: str | None = None, dem: str | None = None, max_leaf: int = MAX_LEAF,
) -> ScenePlan:
    """The plan from a layer's Arrow batches (Store.layer_batches: fid, fields, WKB ``geometry``)."""
    fids: list[npt.NDArray[np.int64]] = []
    geoms: list[npt.NDArray[np.object_]] = []
    heights: list[npt.NDArray[np.float64]] = []
    for batch in batches:
        names = batch.schema.names
        fids.append(batch.column(names.index("fid")).to_numpy(zero_copy_only=False).astype(np.int64))
        wkb = batch.column(names.index("geometry")).to_numpy(zero_copy_only=False)
        geoms.append(shapely.from_wkb(wkb))
        hm = batch.column(names.index("height_m")).to_numpy(zero_copy_only=False) if "height_m" in names else None
        fl = batch.column(names.index("floors")).to_numpy(zero_copy_only=False) if "floors" in names else None
        heights.append(rule.resolve(_floats(hm), _floats(fl), size=batch.num_rows)[0])
    cat: Callable[[list, str], npt.NDArray] = lambda parts, dt: np.concatenate(parts) if parts else np.empty(0, dt)  # noqa: E731
    return plan_arrays(
        layer, release, srid, cat(fids, "int64"), cat(geoms, "object"), cat(heights, "float64"),
        raster_path, dem, max_leaf,
    )


def _floats(values: npt.NDArray | None) -> pd.Series | None:
    """Arrow → numpy: nullable columns come as float (NaN) or object (None); both as a float64
    Series (which the height rule takes as it is, without a look at every value)."""
    if values is None:
        return None
    if values.dtype == object:
        values = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
    return pd.Series(values.astype(np.float64, copy=False))


# -- tileset.json -------------------------------------------------------------------------------
def _region_size(region: tuple[float, ...]) -> float:
    """The diagonal of a 3D Tiles region (radians, radians, ..., metres) in metres (spherical)."""
    west, south, east, north, low, high = region[:6]
    across = 6_378_137.0 * math.hypot((east - west) * math.cos((south + north) / 2), north - south)
    return float(math.hypot(across, high - low))


def tileset_json(
    plan: ScenePlan, content_uri: Callable[[int, int, int, int], str],
    transform: Callable[[tuple[float, ...]], list[float]],
) -> dict:
    """The tileset.json of ``plan``: 3D Tiles 1.1, refine ADD, leaves with content and a transform
    (``transform(region)``: translation to the leaf's origin)."""

    def node(tile: SceneTile) -> dict:
        out: dict = {
            "boundingVolume": {"region": list(tile.region)},
            "geometricError": tile.geometric_error,
        }
        if tile.has_content:
            out["transform"] = transform(tile.region)
            out["content"] = {"uri": content_uri(plan.release, tile.level, tile.x, tile.y)}
        if tile.children:
            out["children"] = [node(c) for c in tile.children]
        return out

    root = node(plan.root)
    root["refine"] = "ADD"
    return {
        "asset": {"version": "1.1", "tilesetVersion": str(plan.release), "generator": "cim-basemap"},
        # the error of drawing nothing: CesiumJS draws no tile of a tileset whose own geometricError
        # is 0 (a one-leaf plan's root), so at least the size of the root's region
        "geometricError": max(plan.root.geometric_error, _region_size(plan.root.region)),
        "root": root,
        "extras": {"layer": plan.layer, "release": plan.release, "count": plan.count, "dem": plan.dem},
    }
